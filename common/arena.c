/* arena.c - per-request scratch memory: bump allocation in growing blocks. */
#include "arena.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BLOCK	(8u * 1024)
#define MAX_GROWN_BLOCK (1024u * 1024)
#define ALIGNMENT	(alignof(max_align_t))

struct arena_block {
	struct arena_block *next;
	size_t size; /* bytes of data[] */
	size_t used;
	alignas(max_align_t) unsigned char data[];
};

struct arena {
	size_t block_size;	     /* size of the first block */
	size_t next_size;	     /* size the next new block asks for */
	struct arena_block *first;   /* kept across resets */
	struct arena_block *current; /* the block allocations come from */
};

static struct arena_block *block_new(size_t size)
{
	struct arena_block *b;

	if (size > SIZE_MAX - sizeof(*b))
		return NULL;
	b = malloc(sizeof(*b) + size);
	if (!b)
		return NULL;
	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

/* Frees b and every block after it. */
static void blocks_free(struct arena_block *b)
{
	while (b) {
		struct arena_block *next = b->next;

		free(b);
		b = next;
	}
}

struct arena *arena_new(size_t block_size)
{
	struct arena *a;

	if (block_size == 0)
		block_size = DEFAULT_BLOCK;
	a = malloc(sizeof(*a));
	if (!a)
		return NULL;
	a->first = block_new(block_size);
	if (!a->first) {
		free(a);
		return NULL;
	}
	a->block_size = block_size;
	a->next_size = block_size;
	a->current = a->first;
	return a;
}

void arena_free(struct arena *a)
{
	if (!a)
		return;
	blocks_free(a->first);
	free(a);
}

void arena_reset(struct arena *a)
{
	blocks_free(a->first->next);
	a->first->next = NULL;
	a->first->used = 0;
	a->current = a->first;
	a->next_size = a->block_size;
}

/* Appends a block able to hold n bytes; doubling sizes keep the count of
 * blocks logarithmic in what a request uses. */
static struct arena_block *grow(struct arena *a, size_t n)
{
	struct arena_block *b;
	size_t size = a->next_size;

	if (size < MAX_GROWN_BLOCK / 2)
		a->next_size = size * 2;
	if (size < n)
		size = n;
	b = block_new(size);
	if (!b)
		return NULL;
	a->current->next = b;
	a->current = b;
	return b;
}

void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_block *b = a->current;
	void *p;

	if (n == 0)
		n = 1;
	if (n > SIZE_MAX - ALIGNMENT)
		return NULL;
	n = (n + ALIGNMENT - 1) & ~(ALIGNMENT - 1);
	if (b->size - b->used < n) {
		b = grow(a, n);
		if (!b)
			return NULL;
	}
	p = b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *copy;

	if (len == SIZE_MAX)
		return NULL;
	copy = arena_alloc(a, len + 1);
	if (!copy)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, SIZE_MAX);
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap, again;
	char *out = NULL;
	int len;

	va_start(ap, fmt);
	va_copy(again, ap);
	len = vsnprintf(NULL, 0, fmt, ap);
	if (len >= 0) {
		out = arena_alloc(a, (size_t)len + 1);
		if (out)
			vsnprintf(out, (size_t)len + 1, fmt, again);
	}
	va_end(again);
	va_end(ap);
	return out;
}

static void *pb_alloc(void *data, size_t size)
{
	return arena_alloc(data, size);
}

/* Arena memory goes back all at once, on reset or free. */
static void pb_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

void arena_protobuf_allocator(struct arena *a, ProtobufCAllocator *out)
{
	out->alloc = pb_alloc;
	out->free = pb_free;
	out->allocator_data = a;
}
