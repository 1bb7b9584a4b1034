/* pbjson.c - JSON <-> protobuf-c messages through their descriptors; the mapping is in pbjson.h. */
#include "pbjson.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "arena.h"

#define JSON_SAFE_INT  9007199254740992.0 /* 2^53 */
#define PATH_MAX_BYTES 256
#define ENUM_NAME_MAX  128

/* ---- shared helpers ---- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates, beyond Unicode */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

static bool is_utf8(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text);

	for (size_t i = 0; i < n;) {
		size_t len = utf8_sequence(s + i, n - i);

		if (len == 0)
			return false;
		i += len;
	}
	return true;
}

/* "LocationMode" -> "LOCATION_MODE_"; "HTTPStatus" -> "HTTP_STATUS_". */
static void enum_prefix(const char *type_name, char *out, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; type_name[i] && o + 3 < n; i++) {
		unsigned char c = (unsigned char)type_name[i];
		unsigned char prev = i ? (unsigned char)type_name[i - 1] : 0;
		unsigned char next = (unsigned char)type_name[i + 1];

		if (i && isupper(c) &&
		    (islower(prev) || isdigit(prev) ||
		     (isupper(prev) && islower(next))))
			out[o++] = '_';
		out[o++] = (char)toupper(c);
	}
	out[o++] = '_';
	out[o] = '\0';
}

void pbjson_enum_json_name(const ProtobufCEnumDescriptor *e,
			   const ProtobufCEnumValue *v, char *out, size_t n)
{
	char prefix[ENUM_NAME_MAX];
	const char *name = v->name;
	size_t plen, o = 0;

	if (n == 0)
		return;
	enum_prefix(e->short_name, prefix, sizeof(prefix));
	plen = strlen(prefix);
	if (strncmp(name, prefix, plen) == 0 && name[plen] != '\0')
		name += plen;
	for (; name[o] && o + 1 < n; o++)
		out[o] = (char)tolower((unsigned char)name[o]);
	out[o] = '\0';
}

/* Size of one element of a repeated field of type t, as protobuf-c lays it
 * out. */
static size_t element_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

/* Whether an optional field of this type has a has_ member (protobuf-c
 * marks presence of strings and messages by a NULL pointer instead). */
static bool has_presence_flag(const ProtobufCFieldDescriptor *f)
{
	return f->label == PROTOBUF_C_LABEL_OPTIONAL &&
	       !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
	       f->type != PROTOBUF_C_TYPE_STRING &&
	       f->type != PROTOBUF_C_TYPE_MESSAGE;
}

/* ---- JSON -> message ---- */

struct reader {
	struct arena *arena;
	char path[PATH_MAX_BYTES];
	size_t path_len;
	const char *reason;
	int depth;
};

/* Appends ".name" (or "name" at the top) or "[i]" to the path; returns the
 * old length for path_pop. A path too long for the buffer is cut. */
static size_t path_push(struct reader *r, const char *name, long index)
{
	size_t old = r->path_len;
	int n;

	if (name)
		n = snprintf(r->path + old, sizeof(r->path) - old, "%s%s",
			     old ? "." : "", name);
	else
		n = snprintf(r->path + old, sizeof(r->path) - old, "[%ld]",
			     index);
	if (n > 0)
		r->path_len = old + (size_t)n < sizeof(r->path)
				  ? old + (size_t)n
				  : sizeof(r->path) - 1;
	return old;
}

static void path_pop(struct reader *r, size_t old)
{
	r->path_len = old;
	r->path[old] = '\0';
}

static int fail(struct reader *r, const char *reason)
{
	r->reason = reason;
	return ERR_INVALID;
}

/* Strict decimal: optional '-' (if allowed), then digits only. */
static bool is_decimal(const char *s, bool allow_minus)
{
	if (allow_minus && *s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static int read_signed(struct reader *r, const cJSON *item, int64_t min,
		       int64_t max, int64_t *out)
{
	if (cJSON_IsNumber(item)) {
		double v = item->valuedouble;

		if (!isfinite(v) || v != floor(v))
			return fail(r, "must be an integer");
		if (fabs(v) > JSON_SAFE_INT)
			return fail(r, "too large for a JSON number: send it "
				       "as a decimal string");
		if (v < (double)min || v > (double)max)
			return fail(r, "out of range");
		*out = (int64_t)v;
		return 0;
	}
	if (cJSON_IsString(item)) {
		long long v;
		char *end;

		if (!is_decimal(item->valuestring, true))
			return fail(r, "must be an integer");
		errno = 0;
		v = strtoll(item->valuestring, &end, 10);
		if (errno == ERANGE || v < min || v > max)
			return fail(r, "out of range");
		*out = v;
		return 0;
	}
	return fail(r, "must be an integer");
}

static int read_unsigned(struct reader *r, const cJSON *item, uint64_t max,
			 uint64_t *out)
{
	if (cJSON_IsNumber(item)) {
		double v = item->valuedouble;

		if (!isfinite(v) || v != floor(v))
			return fail(r, "must be an integer");
		if (v < 0)
			return fail(r, "out of range");
		if (v > JSON_SAFE_INT)
			return fail(r, "too large for a JSON number: send it "
				       "as a decimal string");
		if (v > (double)max)
			return fail(r, "out of range");
		*out = (uint64_t)v;
		return 0;
	}
	if (cJSON_IsString(item)) {
		unsigned long long v;
		char *end;

		if (item->valuestring[0] == '-' &&
		    is_decimal(item->valuestring, true))
			return fail(r, "out of range");
		if (!is_decimal(item->valuestring, false))
			return fail(r, "must be an integer");
		errno = 0;
		v = strtoull(item->valuestring, &end, 10);
		if (errno == ERANGE || v > max)
			return fail(r, "out of range");
		*out = v;
		return 0;
	}
	return fail(r, "must be an integer");
}

static int read_real(struct reader *r, const cJSON *item, double *out)
{
	const char *s;
	char *end;

	if (cJSON_IsNumber(item)) {
		if (!isfinite(item->valuedouble))
			return fail(r, "out of range");
		*out = item->valuedouble;
		return 0;
	}
	if (!cJSON_IsString(item))
		return fail(r, "must be a number");
	s = item->valuestring;
	if (strcmp(s, "NaN") == 0) {
		*out = NAN;
		return 0;
	}
	if (strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0) {
		*out = s[0] == '-' ? -INFINITY : INFINITY;
		return 0;
	}
	/* a numeric string: no spaces, hex, or words strtod would take */
	if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
		return fail(r, "must be a number");
	errno = 0;
	*out = strtod(s, &end);
	if (*end || errno == ERANGE || !isfinite(*out))
		return fail(r, *end ? "must be a number" : "out of range");
	return 0;
}

static int read_enum(struct reader *r, const ProtobufCEnumDescriptor *e,
		     const cJSON *item, int *out)
{
	char name[ENUM_NAME_MAX];

	if (!cJSON_IsString(item))
		return fail(r, "must be one of the allowed names");
	for (unsigned i = 0; i < e->n_values; i++) {
		const ProtobufCEnumValue *v = &e->values[i];

		pbjson_enum_json_name(e, v, name, sizeof(name));
		if (strcmp(item->valuestring, name) == 0 ||
		    strcmp(item->valuestring, v->name) == 0) {
			*out = v->value;
			return 0;
		}
	}
	return fail(r, "must be one of the allowed names");
}

static int read_bytes(struct reader *r, const cJSON *item,
		      ProtobufCBinaryData *out)
{
	static const int variants[] = {
	    sodium_base64_VARIANT_ORIGINAL,
	    sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
	    sodium_base64_VARIANT_URLSAFE,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING,
	};
	const char *s;
	size_t n, cap, len;
	uint8_t *buf;

	if (!cJSON_IsString(item))
		return fail(r, "must be a base64 string");
	s = item->valuestring;
	n = strlen(s);
	cap = n / 4 * 3 + 3;
	buf = arena_alloc(r->arena, cap);
	if (!buf)
		return ERR_NOMEM;
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		const char *end = NULL;

		if (sodium_base642bin(buf, cap, s, n, NULL, &len, &end,
				      variants[i]) == 0 &&
		    end == s + n) {
			out->data = buf;
			out->len = len;
			return 0;
		}
	}
	return fail(r, "must be a base64 string");
}

static int read_message(struct reader *r, const ProtobufCMessageDescriptor *d,
			const cJSON *obj, ProtobufCMessage **out);

/* Converts item into the value of field f stored at dst. */
static int read_value(struct reader *r, const ProtobufCFieldDescriptor *f,
		      const cJSON *item, void *dst)
{
	int64_t s;
	uint64_t u;
	double d;
	int rc;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		rc = read_signed(r, item, INT32_MIN, INT32_MAX, &s);
		if (!rc)
			*(int32_t *)dst = (int32_t)s;
		return rc;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		rc = read_signed(r, item, INT64_MIN, INT64_MAX, &s);
		if (!rc)
			*(int64_t *)dst = s;
		return rc;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		rc = read_unsigned(r, item, UINT32_MAX, &u);
		if (!rc)
			*(uint32_t *)dst = (uint32_t)u;
		return rc;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		rc = read_unsigned(r, item, UINT64_MAX, &u);
		if (!rc)
			*(uint64_t *)dst = u;
		return rc;
	case PROTOBUF_C_TYPE_FLOAT:
		rc = read_real(r, item, &d);
		if (!rc && isfinite(d) && fabs(d) > FLT_MAX)
			rc = fail(r, "out of range");
		if (!rc)
			*(float *)dst = (float)d;
		return rc;
	case PROTOBUF_C_TYPE_DOUBLE:
		rc = read_real(r, item, &d);
		if (!rc)
			*(double *)dst = d;
		return rc;
	case PROTOBUF_C_TYPE_BOOL:
		if (!cJSON_IsBool(item))
			return fail(r, "must be true or false");
		*(protobuf_c_boolean *)dst = cJSON_IsTrue(item) ? 1 : 0;
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		return read_enum(r, f->descriptor, item, (int *)dst);
	case PROTOBUF_C_TYPE_STRING:
		if (!cJSON_IsString(item))
			return fail(r, "must be a string");
		if (!is_utf8(item->valuestring))
			return fail(r, "must be valid UTF-8");
		*(char **)dst = arena_strdup(r->arena, item->valuestring);
		return *(char **)dst ? 0 : ERR_NOMEM;
	case PROTOBUF_C_TYPE_BYTES:
		return read_bytes(r, item, dst);
	case PROTOBUF_C_TYPE_MESSAGE:
		if (!cJSON_IsObject(item))
			return fail(r, "must be an object");
		return read_message(r, f->descriptor, item,
				    (ProtobufCMessage **)dst);
	}
	return fail(r, "has a type this server cannot read");
}

static int read_repeated(struct reader *r, ProtobufCMessage *msg,
			 const ProtobufCFieldDescriptor *f, const cJSON *item)
{
	size_t size = element_size(f->type);
	size_t count = 0, i = 0;
	unsigned char *array = NULL;
	const cJSON *el;
	int rc;

	if (!cJSON_IsArray(item))
		return fail(r, "must be an array");
	count = (size_t)cJSON_GetArraySize(item);
	if (count) {
		array = arena_alloc(r->arena, count * size);
		if (!array)
			return ERR_NOMEM;
	}
	cJSON_ArrayForEach(el, item)
	{
		size_t old = path_push(r, NULL, (long)i);

		if (cJSON_IsNull(el))
			return fail(r, "must not be null");
		rc = read_value(r, f, el, array + i * size);
		if (rc)
			return rc;
		path_pop(r, old);
		i++;
	}
	*(size_t *)((char *)msg + f->quantifier_offset) = count;
	*(void **)((char *)msg + f->offset) = array;
	return 0;
}

/* Sets the field from item, with its has_ flag or oneof case. */
static int read_field(struct reader *r, ProtobufCMessage *msg,
		      const ProtobufCFieldDescriptor *f, const cJSON *item)
{
	char *base = (char *)msg;
	int rc;

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return read_repeated(r, msg, f, item);
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *which = (uint32_t *)(base + f->quantifier_offset);

		if (*which != 0 && *which != f->id)
			return fail(r, "conflicts with another field of the "
				       "same group (set only one)");
		rc = read_value(r, f, item, base + f->offset);
		if (!rc)
			*which = f->id;
		return rc;
	}
	rc = read_value(r, f, item, base + f->offset);
	if (!rc && has_presence_flag(f))
		*(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
	return rc;
}

static int read_message(struct reader *r, const ProtobufCMessageDescriptor *d,
			const cJSON *obj, ProtobufCMessage **out)
{
	ProtobufCMessage *msg;
	bool *seen;
	const cJSON *item;
	int rc;

	if (r->depth >= PBJSON_MAX_DEPTH)
		return fail(r, "nests too deeply");
	msg = arena_alloc(r->arena, d->sizeof_message);
	seen = arena_alloc(r->arena, d->n_fields ? d->n_fields : 1);
	if (!msg || !seen)
		return ERR_NOMEM;
	protobuf_c_message_init(d, msg);
	r->depth++;
	cJSON_ArrayForEach(item, obj)
	{
		const ProtobufCFieldDescriptor *f;
		size_t old;

		if (!item->string)
			continue;
		f = protobuf_c_message_descriptor_get_field_by_name(
		    d, item->string);
		if (!f)
			continue; /* unknown keys are ignored */
		old = path_push(r, f->name, 0);
		if (seen[f - d->fields])
			return fail(r, "is given twice");
		seen[f - d->fields] = true;
		if (!cJSON_IsNull(item)) {
			rc = read_field(r, msg, f, item);
			if (rc)
				return rc;
		}
		path_pop(r, old);
	}
	r->depth--;
	*out = msg;
	return 0;
}

int pbjson_json_to_message(const ProtobufCMessageDescriptor *desc,
			   const cJSON *obj, struct arena *arena,
			   ProtobufCMessage **out, const char **bad_field_out,
			   const char **reason_out)
{
	struct reader r = {.arena = arena};
	static const cJSON empty = {.type = cJSON_Object};
	int rc;

	if (bad_field_out)
		*bad_field_out = NULL;
	if (reason_out)
		*reason_out = NULL;
	if (!obj)
		obj = &empty;
	if (!cJSON_IsObject(obj)) {
		rc = fail(&r, "the body must be a JSON object");
		goto out_fail;
	}
	rc = read_message(&r, desc, obj, out);
	if (rc == ERR_INVALID && bad_field_out && r.path_len) {
		*bad_field_out = arena_strdup(arena, r.path);
		if (!*bad_field_out)
			rc = ERR_NOMEM;
	}
out_fail:
	if (rc == ERR_INVALID && reason_out)
		*reason_out = r.reason;
	return rc;
}

/* ---- message -> JSON ---- */

/* A copy of s with each byte that is not part of valid UTF-8 replaced by
 * U+FFFD; malloc'd, NULL when out of memory. */
static char *utf8_repair(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text), o = 0;
	char *out;

	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	out = malloc(n * 3 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t len = utf8_sequence(s + i, n - i);

		if (len == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(out + o, s + i, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
	return out;
}

static cJSON *string_json(const char *s)
{
	char *fixed;
	cJSON *j;

	if (!s)
		s = "";
	if (is_utf8(s))
		return cJSON_CreateString(s);
	fixed = utf8_repair(s);
	if (!fixed)
		return NULL;
	j = cJSON_CreateString(fixed);
	free(fixed);
	return j;
}

static cJSON *real_json(double v, bool is_float)
{
	char text[40];

	if (isnan(v))
		return cJSON_CreateString("NaN");
	if (isinf(v))
		return cJSON_CreateString(v < 0 ? "-Infinity" : "Infinity");
	if (is_float) {
		/* the shortest decimal that reads back as the same float, so
		 * 0.1f is written 0.1 rather than 0.100000001490116 */
		for (int p = 1; p <= 9; p++) {
			snprintf(text, sizeof(text), "%.*g", p, v);
			if (strtof(text, NULL) == (float)v)
				break;
		}
		v = strtod(text, NULL);
	}
	return cJSON_CreateNumber(v);
}

static cJSON *int_json(int64_t v)
{
	char text[24];

	if (v >= -(int64_t)JSON_SAFE_INT && v <= (int64_t)JSON_SAFE_INT)
		return cJSON_CreateNumber((double)v);
	snprintf(text, sizeof(text), "%lld", (long long)v);
	return cJSON_CreateString(text);
}

static cJSON *uint_json(uint64_t v)
{
	char text[24];

	if (v <= (uint64_t)JSON_SAFE_INT)
		return cJSON_CreateNumber((double)v);
	snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
	return cJSON_CreateString(text);
}

static cJSON *enum_json(const ProtobufCEnumDescriptor *e, int value)
{
	const ProtobufCEnumValue *v;
	char name[ENUM_NAME_MAX];

	v = protobuf_c_enum_descriptor_get_value(e, value);
	if (!v)
		return cJSON_CreateNumber(value);
	pbjson_enum_json_name(e, v, name, sizeof(name));
	return cJSON_CreateString(name);
}

static cJSON *bytes_json(const ProtobufCBinaryData *b)
{
	size_t cap =
	    sodium_base64_encoded_len(b->len, sodium_base64_VARIANT_ORIGINAL);
	char *text = malloc(cap);
	cJSON *j;

	if (!text)
		return NULL;
	sodium_bin2base64(text, cap, b->data ? b->data : (const uint8_t *)"",
			  b->len, sodium_base64_VARIANT_ORIGINAL);
	j = cJSON_CreateString(text);
	free(text);
	return j;
}

static cJSON *write_message(const ProtobufCMessage *msg, int depth);

/* The JSON of the value of field f stored at src. */
static cJSON *write_value(const ProtobufCFieldDescriptor *f, const void *src,
			  int depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return cJSON_CreateNumber(*(const int32_t *)src);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return cJSON_CreateNumber(*(const uint32_t *)src);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return int_json(*(const int64_t *)src);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return uint_json(*(const uint64_t *)src);
	case PROTOBUF_C_TYPE_FLOAT:
		return real_json(*(const float *)src, true);
	case PROTOBUF_C_TYPE_DOUBLE:
		return real_json(*(const double *)src, false);
	case PROTOBUF_C_TYPE_BOOL:
		return cJSON_CreateBool(*(const protobuf_c_boolean *)src);
	case PROTOBUF_C_TYPE_ENUM:
		return enum_json(f->descriptor, *(const int *)src);
	case PROTOBUF_C_TYPE_STRING:
		return string_json(*(char *const *)src);
	case PROTOBUF_C_TYPE_BYTES:
		return bytes_json(src);
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)src;

		return sub ? write_message(sub, depth + 1) : cJSON_CreateNull();
	}
	}
	return NULL;
}

static cJSON *write_repeated(const ProtobufCFieldDescriptor *f,
			     const ProtobufCMessage *msg, int depth)
{
	const char *base = (const char *)msg;
	size_t count = *(const size_t *)(base + f->quantifier_offset);
	const char *array = *(char *const *)(base + f->offset);
	size_t size = element_size(f->type);
	cJSON *out = cJSON_CreateArray();

	if (!out)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		cJSON *v = write_value(f, array + i * size, depth);

		if (!v || !cJSON_AddItemToArray(out, v)) {
			cJSON_Delete(v);
			cJSON_Delete(out);
			return NULL;
		}
	}
	return out;
}

/* Whether field f of msg is written (see the mapping in pbjson.h). */
static bool is_written(const ProtobufCFieldDescriptor *f,
		       const ProtobufCMessage *msg)
{
	const char *base = (const char *)msg;

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return true;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + f->quantifier_offset) ==
		       f->id;
	if (has_presence_flag(f))
		return *(const protobuf_c_boolean *)(base +
						     f->quantifier_offset);
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(void *const *)(base + f->offset) != NULL;
	if (f->type == PROTOBUF_C_TYPE_STRING &&
	    f->label == PROTOBUF_C_LABEL_OPTIONAL)
		return *(void *const *)(base + f->offset) != NULL;
	return true;
}

static cJSON *write_message(const ProtobufCMessage *msg, int depth)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	cJSON *out;

	if (depth > 2 * PBJSON_MAX_DEPTH)
		return NULL;
	out = cJSON_CreateObject();
	if (!out)
		return NULL;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		cJSON *v;

		if (!is_written(f, msg))
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED)
			v = write_repeated(f, msg, depth);
		else
			v = write_value(f, (const char *)msg + f->offset,
					depth);
		if (!v || !cJSON_AddItemToObjectCS(out, f->name, v)) {
			cJSON_Delete(v);
			cJSON_Delete(out);
			return NULL;
		}
	}
	return out;
}

cJSON *pbjson_message_to_json(const ProtobufCMessage *msg)
{
	return write_message(msg, 0);
}

cJSON *pbjson_text_value(const ProtobufCFieldDescriptor *field,
			 const char *text)
{
	if (field->type == PROTOBUF_C_TYPE_BOOL) {
		if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
			return cJSON_CreateTrue();
		if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
			return cJSON_CreateFalse();
	}
	return cJSON_CreateString(text);
}
