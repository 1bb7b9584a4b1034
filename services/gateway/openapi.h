/* openapi.h - docs/openapi.json, embedded in the binary at build time (openapi_json.c is generated). */
#ifndef GATEWAY_OPENAPI_H
#define GATEWAY_OPENAPI_H

#include <stddef.h>

/* the document's bytes (no NUL terminator counted in the length) */
extern const unsigned char openapi_json[];
extern const size_t openapi_json_len;

#endif
