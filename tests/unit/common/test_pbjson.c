/* test_pbjson.c - JSON <-> protobuf conversion: every type, every limit, hostile input. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arena.h"
#include "pbjson.h"
#include "creneau/v1/envelope.pb-c.h"
#include "creneau/v1/events.pb-c.h"
#include "creneau/v1/service.pb-c.h"

/*
 * A test message with a field of every kind, described by hand the way
 * protoc-c would (the project's own .proto files do not use them all):
 *
 *   enum LocationMode { LOCATION_MODE_UNSPECIFIED = 0; ..._OFFICE = 1;
 *                       ..._HOME = 2; }
 *   message Inner { string name = 1; int32 n = 2; Inner child = 3; }
 *   message All { int32 i32 = 1; sint32 s32 = 2; uint32 u32 = 3;
 *     int64 i64 = 4; uint64 u64 = 5; sint64 s64 = 6; double d = 7;
 *     float f = 8; bool b = 9; string s = 10; bytes by = 11;
 *     LocationMode mode = 12; Inner inner = 13; repeated int32 ri = 14;
 *     repeated string rs = 15; repeated Inner rm = 16;
 *     optional int32 oi = 17 (proto2-style, with has_oi);
 *     oneof pick { string pa = 18; int32 pb = 19; }
 *     fixed32 fx32 = 20; sfixed64 sfx64 = 21;
 *     repeated LocationMode rmode = 22; repeated bool rb = 23; }
 */
struct test_inner {
	ProtobufCMessage base;
	char *name;
	int32_t n;
	struct test_inner *child;
};

struct test_all {
	ProtobufCMessage base;
	int32_t i32;
	int32_t s32;
	uint32_t u32;
	int64_t i64;
	uint64_t u64;
	int64_t s64;
	double d;
	float f;
	protobuf_c_boolean b;
	char *s;
	ProtobufCBinaryData by;
	int mode;
	struct test_inner *inner;
	size_t n_ri;
	int32_t *ri;
	size_t n_rs;
	char **rs;
	size_t n_rm;
	struct test_inner **rm;
	protobuf_c_boolean has_oi;
	int32_t oi;
	uint32_t pick_case;
	union {
		char *pa;
		int32_t pb;
	};
	uint32_t fx32;
	int64_t sfx64;
	size_t n_rmode;
	int *rmode;
	size_t n_rb;
	protobuf_c_boolean *rb;
};

static const ProtobufCEnumValue mode_values[] = {
    {"LOCATION_MODE_UNSPECIFIED", "LOCATION_MODE_UNSPECIFIED", 0},
    {"LOCATION_MODE_OFFICE", "LOCATION_MODE_OFFICE", 1},
    {"LOCATION_MODE_HOME", "LOCATION_MODE_HOME", 2},
};
static const ProtobufCEnumValueIndex mode_by_name[] = {
    {"LOCATION_MODE_HOME", 2},
    {"LOCATION_MODE_OFFICE", 1},
    {"LOCATION_MODE_UNSPECIFIED", 0},
};
static const ProtobufCIntRange mode_ranges[] = {{0, 0}, {0, 3}};
static const ProtobufCEnumDescriptor mode_desc = {
    PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC,
    "t.LocationMode",
    "LocationMode",
    "LocationMode",
    "t",
    3,
    mode_values,
    3,
    mode_by_name,
    1,
    mode_ranges,
    NULL,
    NULL,
    NULL,
    NULL,
};

extern const ProtobufCMessageDescriptor inner_desc;
extern const ProtobufCMessageDescriptor all_desc;

#define F(msg, name, id, label, type, member, qoff, desc, flags)               \
	{                                                                      \
#name, id, PROTOBUF_C_LABEL_##label, PROTOBUF_C_TYPE_##type,   \
		    qoff, offsetof(struct msg, member), desc,                  \
		    PROTOBUF_C_TYPE_##type == PROTOBUF_C_TYPE_STRING           \
		    ? protobuf_c_empty_string : NULL,                          \
		    flags, 0, NULL, NULL                                       \
	}
#define SCALAR(name, id, type)                                                 \
	F(test_all, name, id, NONE, type, name, 0, NULL, 0)
#define REPEATED(name, id, type, desc)                                         \
	F(test_all, name, id, REPEATED, type, name,                            \
	  offsetof(struct test_all, n_##name), desc, 0)
#define ONEOF(name, id, type)                                                  \
	F(test_all, name, id, NONE, type, name,                                \
	  offsetof(struct test_all, pick_case), NULL,                          \
	  PROTOBUF_C_FIELD_FLAG_ONEOF)

static const ProtobufCFieldDescriptor inner_fields[] = {
    F(test_inner, name, 1, NONE, STRING, name, 0, NULL, 0),
    F(test_inner, n, 2, NONE, INT32, n, 0, NULL, 0),
    F(test_inner, child, 3, NONE, MESSAGE, child, 0, &inner_desc, 0),
};

static const ProtobufCFieldDescriptor all_fields[] = {
    SCALAR(i32, 1, INT32),
    SCALAR(s32, 2, SINT32),
    SCALAR(u32, 3, UINT32),
    SCALAR(i64, 4, INT64),
    SCALAR(u64, 5, UINT64),
    SCALAR(s64, 6, SINT64),
    SCALAR(d, 7, DOUBLE),
    SCALAR(f, 8, FLOAT),
    SCALAR(b, 9, BOOL),
    SCALAR(s, 10, STRING),
    SCALAR(by, 11, BYTES),
    F(test_all, mode, 12, NONE, ENUM, mode, 0, &mode_desc, 0),
    F(test_all, inner, 13, NONE, MESSAGE, inner, 0, &inner_desc, 0),
    REPEATED(ri, 14, INT32, NULL),
    REPEATED(rs, 15, STRING, NULL),
    REPEATED(rm, 16, MESSAGE, &inner_desc),
    F(test_all, oi, 17, OPTIONAL, INT32, oi, offsetof(struct test_all, has_oi),
      NULL, 0),
    ONEOF(pa, 18, STRING),
    ONEOF(pb, 19, INT32),
    SCALAR(fx32, 20, FIXED32),
    SCALAR(sfx64, 21, SFIXED64),
    REPEATED(rmode, 22, ENUM, &mode_desc),
    REPEATED(rb, 23, BOOL, NULL),
};

#define N_ALL	(sizeof(all_fields) / sizeof(all_fields[0]))
#define N_INNER (sizeof(inner_fields) / sizeof(inner_fields[0]))

/* filled by sort_names() before any test: protoc-c writes these sorted */
static unsigned inner_by_name[N_INNER];
static unsigned all_by_name[N_ALL];
static const ProtobufCIntRange inner_ranges[] = {{1, 0}, {0, N_INNER}};
static const ProtobufCIntRange all_ranges[] = {{1, 0}, {0, N_ALL}};

static void inner_init(ProtobufCMessage *m)
{
	struct test_inner *in = (struct test_inner *)m;

	memset(in, 0, sizeof(*in));
	in->base.descriptor = &inner_desc;
	in->name = (char *)protobuf_c_empty_string;
}

static void all_init(ProtobufCMessage *m)
{
	struct test_all *a = (struct test_all *)m;

	memset(a, 0, sizeof(*a));
	a->base.descriptor = &all_desc;
	a->s = (char *)protobuf_c_empty_string;
}

const ProtobufCMessageDescriptor inner_desc = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "t.Inner",
    "Inner",
    "Inner",
    "t",
    sizeof(struct test_inner),
    N_INNER,
    inner_fields,
    inner_by_name,
    1,
    inner_ranges,
    inner_init,
    NULL,
    NULL,
    NULL,
};

const ProtobufCMessageDescriptor all_desc = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "t.All",
    "All",
    "All",
    "t",
    sizeof(struct test_all),
    N_ALL,
    all_fields,
    all_by_name,
    1,
    all_ranges,
    all_init,
    NULL,
    NULL,
    NULL,
};

static const ProtobufCFieldDescriptor *sort_fields;

static int by_name(const void *a, const void *b)
{
	return strcmp(sort_fields[*(const unsigned *)a].name,
		      sort_fields[*(const unsigned *)b].name);
}

static void sort_names(const ProtobufCFieldDescriptor *fields, unsigned *idx,
		       size_t n)
{
	for (size_t i = 0; i < n; i++)
		idx[i] = (unsigned)i;
	sort_fields = fields;
	qsort(idx, n, sizeof(*idx), by_name);
}

/* ---- helpers ---- */

struct fixture {
	struct arena *arena;
	const char *field;
	const char *reason;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	fx->arena = arena_new(0);
	*state = fx;
	return fx->arena ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	arena_free(fx->arena);
	free(fx);
	return 0;
}

/* Parses json and converts it as desc; returns the code. */
static int convert(struct fixture *fx, const ProtobufCMessageDescriptor *desc,
		   const char *json, ProtobufCMessage **out)
{
	cJSON *obj = cJSON_Parse(json);
	ProtobufCMessage *msg = NULL;
	int rc;

	assert_non_null(obj);
	rc = pbjson_json_to_message(desc, obj, fx->arena, &msg, &fx->field,
				    &fx->reason);
	cJSON_Delete(obj);
	if (out)
		*out = msg;
	return rc;
}

static struct test_all *all_ok(struct fixture *fx, const char *json)
{
	ProtobufCMessage *msg = NULL;
	int rc = convert(fx, &all_desc, json, &msg);

	if (rc)
		fprintf(stderr, "unexpected failure on %s: %s %s\n", json,
			fx->field ? fx->field : "-",
			fx->reason ? fx->reason : "-");
	assert_int_equal(rc, 0);
	assert_non_null(msg);
	return (struct test_all *)msg;
}

/* Asserts that json is refused, naming field. */
static void all_bad(struct fixture *fx, const char *json, const char *field)
{
	assert_int_equal(convert(fx, &all_desc, json, NULL), ERR_INVALID);
	if (field) {
		assert_non_null(fx->field);
		assert_string_equal(fx->field, field);
	} else {
		assert_null(fx->field);
	}
	assert_non_null(fx->reason);
}

/* The compact JSON text of msg (malloc'd). */
static char *to_text(const ProtobufCMessage *msg)
{
	cJSON *j = pbjson_message_to_json(msg);
	char *text;

	assert_non_null(j);
	text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	assert_non_null(text);
	return text;
}

static void assert_json_has(const ProtobufCMessage *msg, const char *needle)
{
	char *text = to_text(msg);

	if (!strstr(text, needle))
		fail_msg("%s not in %s", needle, text);
	free(text);
}

static void assert_json_lacks(const ProtobufCMessage *msg, const char *needle)
{
	char *text = to_text(msg);

	if (strstr(text, needle))
		fail_msg("%s unexpectedly in %s", needle, text);
	free(text);
}

/* ---- reading: every type ---- */

static void test_every_type(void **state)
{
	struct fixture *fx = *state;
	struct test_all *a =
	    all_ok(fx, "{\"i32\":-5,\"s32\":-7,\"u32\":4000000000,"
		       "\"i64\":\"-9223372036854775808\",\"u64\":12,"
		       "\"s64\":-9007199254740992,\"d\":2.5,\"f\":0.1,"
		       "\"b\":true,\"s\":\"caf\\u00e9\",\"by\":\"aGVsbG8=\","
		       "\"mode\":\"office\",\"inner\":{\"name\":\"x\",\"n\":3},"
		       "\"ri\":[1,2,3],\"rs\":[\"a\",\"b\"],"
		       "\"rm\":[{\"n\":1},{\"name\":\"y\"}],\"oi\":0,\"pb\":9,"
		       "\"fx32\":7,\"sfx64\":\"-1\",\"rmode\":[\"home\","
		       "\"LOCATION_MODE_OFFICE\"],\"rb\":[false,true]}");

	assert_int_equal(a->i32, -5);
	assert_int_equal(a->s32, -7);
	assert_true(a->u32 == 4000000000u);
	assert_true(a->i64 == INT64_MIN);
	assert_true(a->u64 == 12);
	assert_true(a->s64 == -9007199254740992LL);
	assert_true(a->d == 2.5);
	assert_true(a->f == 0.1f);
	assert_true(a->b);
	assert_string_equal(a->s, "caf\xc3\xa9");
	assert_int_equal(a->by.len, 5);
	assert_memory_equal(a->by.data, "hello", 5);
	assert_int_equal(a->mode, 1);
	assert_non_null(a->inner);
	assert_string_equal(a->inner->name, "x");
	assert_int_equal(a->inner->n, 3);
	assert_int_equal(a->n_ri, 3);
	assert_int_equal(a->ri[2], 3);
	assert_int_equal(a->n_rs, 2);
	assert_string_equal(a->rs[1], "b");
	assert_int_equal(a->n_rm, 2);
	assert_int_equal(a->rm[0]->n, 1);
	assert_string_equal(a->rm[0]->name, "");
	assert_string_equal(a->rm[1]->name, "y");
	assert_true(a->has_oi);
	assert_int_equal(a->oi, 0);
	assert_int_equal(a->pick_case, 19);
	assert_int_equal(a->pb, 9);
	assert_int_equal(a->fx32, 7);
	assert_true(a->sfx64 == -1);
	assert_int_equal(a->n_rmode, 2);
	assert_int_equal(a->rmode[0], 2);
	assert_int_equal(a->rmode[1], 1);
	assert_int_equal(a->n_rb, 2);
	assert_false(a->rb[0]);
	assert_true(a->rb[1]);
	assert_true(protobuf_c_message_check(&a->base));
}

static void test_empty_and_null_read_as_defaults(void **state)
{
	struct fixture *fx = *state;
	struct test_all *a = all_ok(fx, "{}");
	ProtobufCMessage *msg = NULL;

	assert_int_equal(a->i32, 0);
	assert_string_equal(a->s, "");
	assert_null(a->inner);
	assert_int_equal(a->n_ri, 0);
	assert_false(a->has_oi);
	assert_int_equal(a->pick_case, 0);

	a = all_ok(fx, "{\"i32\":null,\"s\":null,\"inner\":null,\"ri\":null,"
		       "\"oi\":null,\"pa\":null}");
	assert_int_equal(a->i32, 0);
	assert_string_equal(a->s, "");
	assert_null(a->inner);
	assert_false(a->has_oi);
	assert_int_equal(a->pick_case, 0);

	/* NULL reads as {} */
	assert_int_equal(pbjson_json_to_message(&all_desc, NULL, fx->arena,
						&msg, NULL, NULL),
			 0);
	assert_non_null(msg);
	assert_string_equal(((struct test_all *)msg)->s, "");
}

static void test_unknown_keys_ignored(void **state)
{
	struct fixture *fx = *state;
	struct test_all *a =
	    all_ok(fx, "{\"nope\":[1,{\"x\":[[[]]]}],\"i32\":4,\"I32\":\"bad\","
		       "\"inner\":{\"other\":true,\"n\":2}}");

	assert_int_equal(a->i32, 4);
	assert_int_equal(a->inner->n, 2);
}

static void test_int32_limits(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(all_ok(fx, "{\"i32\":2147483647}")->i32, INT32_MAX);
	assert_int_equal(all_ok(fx, "{\"i32\":-2147483648}")->i32, INT32_MIN);
	assert_int_equal(all_ok(fx, "{\"i32\":\"-12\"}")->i32, -12);
	assert_int_equal(all_ok(fx, "{\"i32\":1e3}")->i32, 1000);
	assert_int_equal(all_ok(fx, "{\"i32\":-0}")->i32, 0);
	all_bad(fx, "{\"i32\":2147483648}", "i32");
	all_bad(fx, "{\"i32\":-2147483649}", "i32");
	all_bad(fx, "{\"i32\":1.5}", "i32");
	all_bad(fx, "{\"i32\":1e400}", "i32");
	all_bad(fx, "{\"i32\":-1e400}", "i32");
	all_bad(fx, "{\"i32\":\"2147483648\"}", "i32");
	all_bad(fx, "{\"i32\":\" 12\"}", "i32");
	all_bad(fx, "{\"i32\":\"+12\"}", "i32");
	all_bad(fx, "{\"i32\":\"12abc\"}", "i32");
	all_bad(fx, "{\"i32\":\"\"}", "i32");
	all_bad(fx, "{\"i32\":\"-\"}", "i32");
	all_bad(fx, "{\"i32\":\"0x10\"}", "i32");
	all_bad(fx, "{\"i32\":true}", "i32");
	all_bad(fx, "{\"i32\":[1]}", "i32");
	all_bad(fx, "{\"i32\":{}}", "i32");
	all_bad(fx, "{\"s32\":99999999999}", "s32");
	assert_true(all_ok(fx, "{\"u32\":4294967295}")->u32 == UINT32_MAX);
	all_bad(fx, "{\"u32\":4294967296}", "u32");
	all_bad(fx, "{\"u32\":-1}", "u32");
	all_bad(fx, "{\"u32\":\"-1\"}", "u32");
	all_bad(fx, "{\"fx32\":-3}", "fx32");
}

static void test_int64_limits(void **state)
{
	struct fixture *fx = *state;

	assert_true(all_ok(fx, "{\"i64\":\"9223372036854775807\"}")->i64 ==
		    INT64_MAX);
	assert_true(all_ok(fx, "{\"i64\":9007199254740992}")->i64 ==
		    9007199254740992LL);
	/* beyond 2^53 a JSON number is not exact: refuse it */
	all_bad(fx, "{\"i64\":9007199254740994}", "i64");
	all_bad(fx, "{\"i64\":\"9223372036854775808\"}", "i64");
	all_bad(fx, "{\"i64\":\"-9223372036854775809\"}", "i64");
	all_bad(fx, "{\"i64\":\"99999999999999999999999999999\"}", "i64");
	all_bad(fx, "{\"i64\":1e300}", "i64");
	assert_true(all_ok(fx, "{\"u64\":\"18446744073709551615\"}")->u64 ==
		    UINT64_MAX);
	all_bad(fx, "{\"u64\":\"18446744073709551616\"}", "u64");
	all_bad(fx, "{\"u64\":\"-1\"}", "u64");
	all_bad(fx, "{\"u64\":-1}", "u64");
	all_bad(fx, "{\"sfx64\":0.5}", "sfx64");
}

static void test_reals(void **state)
{
	struct fixture *fx = *state;
	struct test_all *a;

	assert_true(all_ok(fx, "{\"d\":1e308}")->d == 1e308);
	assert_true(all_ok(fx, "{\"d\":\"-2.5e3\"}")->d == -2500.0);
	assert_true(isnan(all_ok(fx, "{\"d\":\"NaN\"}")->d));
	a = all_ok(fx, "{\"d\":\"-Infinity\",\"f\":\"Infinity\"}");
	assert_true(isinf(a->d) && a->d < 0);
	assert_true(isinf(a->f) && a->f > 0);
	all_bad(fx, "{\"d\":1e400}", "d");
	all_bad(fx, "{\"d\":\"1e400\"}", "d");
	all_bad(fx, "{\"d\":\"nan\"}", "d");
	all_bad(fx, "{\"d\":\"0x1p3\"}", "d");
	all_bad(fx, "{\"d\":\" 1\"}", "d");
	all_bad(fx, "{\"d\":\"\"}", "d");
	all_bad(fx, "{\"d\":false}", "d");
	all_bad(fx, "{\"f\":1e39}", "f");
	assert_true(all_ok(fx, "{\"f\":-3.4e38}")->f == -3.4e38f);
}

static void test_bool_string_bytes(void **state)
{
	struct fixture *fx = *state;
	struct test_all *a;

	assert_false(all_ok(fx, "{\"b\":false}")->b);
	all_bad(fx, "{\"b\":\"true\"}", "b");
	all_bad(fx, "{\"b\":1}", "b");
	all_bad(fx, "{\"s\":5}", "s");
	all_bad(fx, "{\"s\":[\"a\"]}", "s");
	all_bad(fx, "{\"s\":\"\xff\xfe\"}", "s");
	all_bad(fx, "{\"s\":\"\xc0\xaf\"}", "s");     /* overlong '/' */
	all_bad(fx, "{\"s\":\"\xed\xa0\x80\"}", "s"); /* a surrogate */
	all_bad(fx, "{\"s\":\"\xf4\x90\x80\x80\"}", "s");
	assert_string_equal(all_ok(fx, "{\"s\":\"\xf0\x9f\x98\x80\"}")->s,
			    "\xf0\x9f\x98\x80");
	a = all_ok(fx, "{\"by\":\"-_8\"}");
	assert_int_equal(a->by.len, 2);
	assert_int_equal(a->by.data[0], 0xfb);
	assert_int_equal(a->by.data[1], 0xff);
	assert_int_equal(all_ok(fx, "{\"by\":\"aGVsbG8\"}")->by.len, 5);
	assert_int_equal(all_ok(fx, "{\"by\":\"\"}")->by.len, 0);
	all_bad(fx, "{\"by\":\"!!!!\"}", "by");
	all_bad(fx, "{\"by\":\"aGVsbG8=x\"}", "by");
	all_bad(fx, "{\"by\":12}", "by");
}

static void test_enums(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(all_ok(fx, "{\"mode\":\"home\"}")->mode, 2);
	assert_int_equal(all_ok(fx, "{\"mode\":\"unspecified\"}")->mode, 0);
	assert_int_equal(all_ok(fx, "{\"mode\":\"LOCATION_MODE_HOME\"}")->mode,
			 2);
	all_bad(fx, "{\"mode\":\"Home\"}", "mode");
	all_bad(fx, "{\"mode\":\"location_mode_home\"}", "mode");
	all_bad(fx, "{\"mode\":\"video\"}", "mode");
	all_bad(fx, "{\"mode\":1}", "mode");
	all_bad(fx, "{\"rmode\":[\"home\",\"nope\"]}", "rmode[1]");
}

static void test_wrong_shapes_name_the_field(void **state)
{
	struct fixture *fx = *state;

	all_bad(fx, "{\"inner\":\"x\"}", "inner");
	all_bad(fx, "{\"inner\":[]}", "inner");
	all_bad(fx, "{\"inner\":{\"n\":\"x\"}}", "inner.n");
	all_bad(fx, "{\"ri\":{}}", "ri");
	all_bad(fx, "{\"ri\":5}", "ri");
	all_bad(fx, "{\"ri\":[1,2,\"x\"]}", "ri[2]");
	all_bad(fx, "{\"ri\":[1,null]}", "ri[1]");
	all_bad(fx, "{\"rs\":[\"a\",1]}", "rs[1]");
	all_bad(fx, "{\"rm\":[{\"n\":1},{\"n\":\"y\"}]}", "rm[1].n");
	all_bad(fx, "{\"rm\":[{},{\"child\":{\"child\":{\"name\":7}}}]}",
		"rm[1].child.child.name");
	all_bad(fx, "{\"rm\":[3]}", "rm[0]");
	all_bad(fx, "{\"rb\":[true,0]}", "rb[1]");
	/* the top level must be an object */
	all_bad(fx, "[]", NULL);
	all_bad(fx, "\"x\"", NULL);
	all_bad(fx, "3", NULL);
	all_bad(fx, "null", NULL);
}

static void test_duplicates_and_oneof(void **state)
{
	struct fixture *fx = *state;
	struct test_all *a;

	all_bad(fx, "{\"i32\":1,\"i32\":2}", "i32");
	all_bad(fx, "{\"inner\":{\"n\":1,\"n\":1}}", "inner.n");
	all_bad(fx, "{\"pa\":\"x\",\"pb\":1}", "pb");
	all_bad(fx, "{\"pb\":1,\"pa\":\"x\"}", "pa");
	a = all_ok(fx, "{\"pa\":\"x\",\"pb\":null}");
	assert_int_equal(a->pick_case, 18);
	assert_string_equal(a->pa, "x");
	all_bad(fx, "{\"pa\":3}", "pa");
}

/* Builds {"inner":{"child":{"child":...}}} with depth objects. */
static char *nested(int depth)
{
	size_t cap = (size_t)depth * 16 + 64, o = 0;
	char *s = malloc(cap);

	assert_non_null(s);
	o += (size_t)snprintf(s + o, cap - o, "{\"inner\":");
	for (int i = 1; i < depth; i++)
		o += (size_t)snprintf(s + o, cap - o, "{\"child\":");
	o += (size_t)snprintf(s + o, cap - o, "{\"n\":1}");
	for (int i = 1; i < depth; i++)
		s[o++] = '}';
	s[o++] = '}';
	s[o] = '\0';
	return s;
}

static void test_deep_nesting(void **state)
{
	struct fixture *fx = *state;
	char *ok = nested(PBJSON_MAX_DEPTH - 1);
	char *deep = nested(PBJSON_MAX_DEPTH + 10);
	struct test_all *a = all_ok(fx, ok);
	struct test_inner *in = a->inner;
	int levels = 0;

	while (in->child) {
		in = in->child;
		levels++;
	}
	assert_int_equal(levels, PBJSON_MAX_DEPTH - 2);
	assert_int_equal(in->n, 1);
	assert_int_equal(convert(fx, &all_desc, deep, NULL), ERR_INVALID);
	assert_non_null(fx->field);
	assert_true(strncmp(fx->field, "inner.child.child", 17) == 0);
	assert_string_equal(fx->reason, "nests too deeply");
	free(ok);
	free(deep);
}

static void test_hostile_json_text(void **state)
{
	struct fixture *fx = *state;
	size_t n = 200000;
	char *s = malloc(n + 1);

	/* cJSON refuses nesting past its limit rather than recurse */
	memset(s, '[', n);
	s[n] = '\0';
	assert_null(cJSON_Parse(s));
	memset(s, '{', n);
	assert_null(cJSON_Parse(s));
	free(s);
	/* a big array of wrong things fails at the first */
	all_bad(fx, "{\"ri\":[1,2,3,4,5,6,7,8,9,{\"a\":[[[[[[]]]]]]}]}",
		"ri[9]");
}

static void test_long_path_is_cut_not_overflowed(void **state)
{
	struct fixture *fx = *state;
	char *deep = nested(PBJSON_MAX_DEPTH + 200);

	assert_int_equal(convert(fx, &all_desc, deep, NULL), ERR_INVALID);
	assert_true(strlen(fx->field) < 256);
	free(deep);
}

/* ---- writing ---- */

static void test_write_every_type(void **state)
{
	struct fixture *fx = *state;
	struct test_all *a = all_ok(
	    fx, "{\"i32\":-5,\"u32\":4000000000,\"i64\":-12,"
		"\"u64\":\"18446744073709551615\","
		"\"s64\":\"9007199254740993\",\"d\":2.5,\"f\":0.1,"
		"\"b\":true,\"s\":\"q\\\"uote\",\"by\":\"aGVsbG8\","
		"\"mode\":\"home\",\"inner\":{\"name\":\"x\"},"
		"\"rm\":[{\"n\":1}],\"pa\":\"z\",\"rmode\":[\"office\"]}");
	char *text = to_text(&a->base);

	assert_string_equal(
	    text,
	    "{\"i32\":-5,\"s32\":0,\"u32\":4000000000,\"i64\":-12,"
	    "\"u64\":\"18446744073709551615\",\"s64\":\"9007199254740993\","
	    "\"d\":2.5,\"f\":0.1,\"b\":true,\"s\":\"q\\\"uote\","
	    "\"by\":\"aGVsbG8=\",\"mode\":\"home\","
	    "\"inner\":{\"name\":\"x\",\"n\":0},\"ri\":[],\"rs\":[],"
	    "\"rm\":[{\"name\":\"\",\"n\":1}],\"pa\":\"z\",\"fx32\":0,"
	    "\"sfx64\":0,\"rmode\":[\"office\"],\"rb\":[]}");
	free(text);
}

static void test_write_presence(void **state)
{
	struct fixture *fx = *state;
	struct test_all *a = all_ok(fx, "{}");

	/* unset optional, oneof and message fields are left out */
	assert_json_lacks(&a->base, "\"oi\"");
	assert_json_lacks(&a->base, "\"pa\"");
	assert_json_lacks(&a->base, "\"pb\"");
	assert_json_lacks(&a->base, "\"inner\"");
	a = all_ok(fx, "{\"oi\":0,\"pb\":0}");
	assert_json_has(&a->base, "\"oi\":0");
	assert_json_has(&a->base, "\"pb\":0");
	assert_json_lacks(&a->base, "\"pa\"");
}

static void test_write_special_values(void **state)
{
	struct fixture *fx = *state;
	struct test_all *a = all_ok(fx, "{}");

	a->d = NAN;
	a->f = -INFINITY;
	a->mode = 42; /* unknown to the descriptor */
	a->s = "a\xff"
	       "b\xc3"; /* invalid UTF-8 from a service */
	a->i64 = -9007199254740993LL;
	assert_json_has(&a->base, "\"d\":\"NaN\"");
	assert_json_has(&a->base, "\"f\":\"-Infinity\"");
	assert_json_has(&a->base, "\"mode\":42");
	assert_json_has(&a->base, "\"s\":\"a\xef\xbf\xbd"
				  "b\xef\xbf\xbd\"");
	assert_json_has(&a->base, "\"i64\":\"-9007199254740993\"");
}

static void test_round_trip_through_the_wire(void **state)
{
	struct fixture *fx = *state;
	const char *json =
	    "{\"i32\":-5,\"s32\":-6,\"u32\":7,\"i64\":-8,\"u64\":9,"
	    "\"s64\":-10,\"d\":0.25,\"f\":1.5,\"b\":true,\"s\":\"s\","
	    "\"by\":\"AAE=\",\"mode\":\"office\",\"inner\":{\"name\":"
	    "\"i\",\"n\":1,\"child\":{\"name\":\"\",\"n\":2}},\"ri\":[1,-1],"
	    "\"rs\":[\"x\"],\"rm\":[{\"name\":\"m\",\"n\":0}],\"oi\":3,"
	    "\"pb\":4,\"fx32\":5,\"sfx64\":-6,\"rmode\":[\"home\"],"
	    "\"rb\":[true]}";
	struct test_all *a = all_ok(fx, json);
	size_t len = protobuf_c_message_get_packed_size(&a->base);
	uint8_t *wire = malloc(len);
	ProtobufCMessage *back;
	char *text;

	assert_int_equal(protobuf_c_message_pack(&a->base, wire), len);
	back = protobuf_c_message_unpack(&all_desc, NULL, len, wire);
	assert_non_null(back);
	text = to_text(back);
	assert_string_equal(text, json);
	free(text);
	protobuf_c_message_free_unpacked(back, NULL);
	free(wire);
}

/* ---- the project's own messages ---- */

static void test_envelope_enums(void **state)
{
	struct fixture *fx = *state;
	ProtobufCMessage *msg;
	Creneau__V1__Principal *p;
	Creneau__V1__Reply reply = CRENEAU__V1__REPLY__INIT;

	assert_int_equal(convert(fx, &creneau__v1__principal__descriptor,
				 "{\"account_id\":\"a1\",\"role\":"
				 "\"practitioner\"}",
				 &msg),
			 0);
	p = (Creneau__V1__Principal *)msg;
	assert_string_equal(p->account_id, "a1");
	assert_int_equal(p->role, CRENEAU__V1__ROLE__ROLE_PRACTITIONER);
	assert_json_has(msg, "\"role\":\"practitioner\"");
	p->role = CRENEAU__V1__ROLE__ROLE_NONE;
	assert_json_has(msg, "\"role\":\"none\"");

	reply.status = CRENEAU__V1__STATUS__STATUS_RATE_LIMITED;
	reply.retry_after_s = 30;
	assert_json_has(&reply.base, "\"status\":\"rate_limited\"");
	assert_json_has(&reply.base, "\"retry_after_s\":30");
	assert_json_has(&reply.base, "\"payload\":\"\"");
}

static void test_health_reply(void **state)
{
	Creneau__V1__HealthReply h = CRENEAU__V1__HEALTH_REPLY__INIT;
	char *text;

	(void)state;
	h.service = "accounts";
	h.instance = "accounts-1";
	h.uptime_s = 12;
	text = to_text(&h.base);
	assert_string_equal(text,
			    "{\"service\":\"accounts\",\"version\":\"\","
			    "\"instance\":\"accounts-1\",\"database_ok\":false,"
			    "\"uptime_s\":12,\"events_head\":0}");
	free(text);
}

static void test_repeated_messages_with_bytes(void **state)
{
	struct fixture *fx = *state;
	ProtobufCMessage *msg;
	Creneau__V1__FetchEventsReply *r;

	assert_int_equal(
	    convert(fx, &creneau__v1__fetch_events_reply__descriptor,
		    "{\"events\":[{\"publisher\":\"booking\",\"sequence\":"
		    "\"18446744073709551615\",\"payload\":\"AP8=\"}],"
		    "\"head\":2}",
		    &msg),
	    0);
	r = (Creneau__V1__FetchEventsReply *)msg;
	assert_int_equal(r->n_events, 1);
	assert_true(r->events[0]->sequence == UINT64_MAX);
	assert_int_equal(r->events[0]->payload.len, 2);
	assert_int_equal(r->events[0]->payload.data[1], 0xff);
	assert_json_has(msg, "\"payload\":\"AP8=\"");
	assert_json_has(msg, "\"sequence\":\"18446744073709551615\"");
}

static void test_text_values(void **state)
{
	const ProtobufCFieldDescriptor *b =
	    protobuf_c_message_descriptor_get_field_by_name(&all_desc, "b");
	const ProtobufCFieldDescriptor *i =
	    protobuf_c_message_descriptor_get_field_by_name(&all_desc, "i32");
	cJSON *v;

	(void)state;
	v = pbjson_text_value(b, "true");
	assert_true(cJSON_IsTrue(v));
	cJSON_Delete(v);
	v = pbjson_text_value(b, "0");
	assert_true(cJSON_IsFalse(v));
	cJSON_Delete(v);
	v = pbjson_text_value(b, "maybe");
	assert_true(cJSON_IsString(v));
	cJSON_Delete(v);
	v = pbjson_text_value(i, "12");
	assert_string_equal(v->valuestring, "12");
	cJSON_Delete(v);
}

static void test_enum_json_names(void **state)
{
	char name[32];

	(void)state;
	pbjson_enum_json_name(&creneau__v1__status__descriptor,
			      &creneau__v1__status__descriptor.values[0], name,
			      sizeof(name));
	assert_string_equal(name, "ok");
	pbjson_enum_json_name(&mode_desc, &mode_values[1], name, 4);
	assert_string_equal(name, "off");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_every_type, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_empty_and_null_read_as_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_keys_ignored, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_int32_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_int64_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bool_string_bytes, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_enums, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_shapes_name_the_field,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicates_and_oneof, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_deep_nesting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_json_text, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_long_path_is_cut_not_overflowed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_every_type, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_write_presence, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_write_special_values, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_round_trip_through_the_wire,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_envelope_enums, setup,
					    teardown),
	    cmocka_unit_test(test_health_reply),
	    cmocka_unit_test_setup_teardown(test_repeated_messages_with_bytes,
					    setup, teardown),
	    cmocka_unit_test(test_text_values),
	    cmocka_unit_test(test_enum_json_names),
	};

	sort_names(inner_fields, inner_by_name, N_INNER);
	sort_names(all_fields, all_by_name, N_ALL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
