/* pbjson.h - JSON <-> protobuf-c messages, driven by their descriptors. */
#ifndef CRENEAU_PBJSON_H
#define CRENEAU_PBJSON_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>
#include "error.h"

struct arena;

/*
 * The mapping, the same both ways (docs/openapi.json relies on it):
 *
 * - A field is the JSON key of its .proto name (snake_case). Unknown keys
 *   are ignored; a key given twice, or two members of one oneof, are
 *   errors. null is the same as an absent key.
 * - string: a JSON string, valid UTF-8. bool: true or false.
 * - int32, sint32, sfixed32, uint32, fixed32: an integral JSON number in
 *   the type's range, or a string of decimal digits ("42").
 * - 64-bit integers: read from a JSON number only up to 2^53 (what a JSON
 *   number holds exactly), else from a decimal string; written as a number
 *   when |v| <= 2^53, as a decimal string beyond.
 * - float, double: a JSON number; "NaN", "Infinity", "-Infinity" (and
 *   numeric strings) also read, and written for the non-finite values.
 * - enum: the value's name lowercased without the prefix made from the
 *   enum's type name: Role.ROLE_CLIENT is "client", Status.STATUS_OK is
 *   "ok". The full .proto name ("ROLE_CLIENT") is also read. A number the
 *   descriptor does not know is written as the number.
 * - bytes: base64 (standard, with padding, when written; standard or
 *   URL-safe, padded or not, when read).
 * - message: a JSON object, nested at most PBJSON_MAX_DEPTH deep.
 * - repeated: a JSON array (written even when empty). Map fields are not
 *   special: they read and write as arrays of {"key","value"} objects.
 * - Written output has every field of the message, defaults included
 *   (false, 0, "", the zero enum), so a client sees a stable shape; only
 *   unset message fields, unset proto3 `optional` fields and the unselected
 *   members of a oneof are left out.
 */

#define PBJSON_MAX_DEPTH 32

/*
 * pbjson_json_to_message - builds a message of type desc from the JSON
 * object obj (NULL reads as {}). The message and everything it points to
 * are allocated in arena (*out lives until the arena is reset or freed;
 * nothing needs freeing). obj is borrowed and may be freed afterwards.
 * Returns 0; ERR_INVALID when obj is not an object or a field has a wrong
 * type, is out of range, is not valid UTF-8 or nests too deep: then
 * *bad_field_out (if not NULL) names it as a path such as "weekly[1].start"
 * (NULL when obj itself is not an object) and *reason_out (if not NULL) is a
 * short English reason, both valid as long as the arena; ERR_NOMEM.
 * Thread-safe (no shared state).
 */
int pbjson_json_to_message(const ProtobufCMessageDescriptor *desc,
			   const cJSON *obj, struct arena *arena,
			   ProtobufCMessage **out, const char **bad_field_out,
			   const char **reason_out) WARN_UNUSED;

/*
 * pbjson_message_to_json - msg (borrowed) as a new JSON object, which the
 * caller frees with cJSON_Delete. NULL when out of memory or when messages
 * nest deeper than 2 * PBJSON_MAX_DEPTH. Strings that are not valid UTF-8
 * are written with U+FFFD in place of the bad bytes, so the output is
 * always valid JSON. Thread-safe.
 */
cJSON *pbjson_message_to_json(const ProtobufCMessage *msg);

/*
 * pbjson_text_value - the JSON value to give pbjson_json_to_message for a
 * field whose value arrived as text (an HTTP path or query parameter): a
 * bool field gets true for "true"/"1" and false for "false"/"0", every
 * other field the string itself (numbers and enum names are read from
 * strings). The caller frees it with cJSON_Delete; NULL when out of memory.
 */
cJSON *pbjson_text_value(const ProtobufCFieldDescriptor *field,
			 const char *text);

/*
 * pbjson_enum_json_name - writes the JSON name of an enum value (see above)
 * into out (size n, always NUL-terminated, truncated if needed).
 */
void pbjson_enum_json_name(const ProtobufCEnumDescriptor *e,
			   const ProtobufCEnumValue *v, char *out, size_t n);

#endif
