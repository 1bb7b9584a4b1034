/* arena.h - per-request scratch memory, freed all at once. */
#ifndef CRENEAU_ARENA_H
#define CRENEAU_ARENA_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

struct arena;

/*
 * arena_new - a new arena whose blocks grow from block_size bytes (0 picks a
 * default). Returns NULL when out of memory. Not thread-safe: one owner.
 */
struct arena *arena_new(size_t block_size);

/* arena_free - releases the arena and all it handed out; NULL is a no-op. */
void arena_free(struct arena *a);

/* arena_reset - forgets every allocation but keeps the first block. */
void arena_reset(struct arena *a);

/* arena_alloc - n zeroed bytes aligned for any type, or NULL. */
void *arena_alloc(struct arena *a, size_t n);

/* arena_strdup / arena_strndup - copies into the arena; NULL on failure. */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);

/* arena_printf - formats into the arena; NULL on failure. */
char *arena_printf(struct arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * arena_protobuf_allocator - a protobuf-c allocator drawing from a: messages
 * unpacked with it live until the arena is reset or freed, and their
 * __free_unpacked is a no-op. The struct is filled in *out (borrowed a).
 */
void arena_protobuf_allocator(struct arena *a, ProtobufCAllocator *out);

#endif
