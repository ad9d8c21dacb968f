/* gw_json: JSON text written straight into one growing buffer.
 *
 * For the documents loket writes on its hot paths (the neutral reply
 * payload, the providers' request bodies): a couple of allocations per
 * document instead of a jansson tree of a few dozen nodes and its dump.
 * Strings are escaped as jansson writes them (quotes, backslashes, control
 * characters), everything else is copied. The caller writes the structure
 * ({, ", :, ...) with gw_json_lit. Any failure (out of memory, a string that
 * is not UTF-8 in strict mode) sticks: later calls do nothing and
 * gw_json_take returns NULL. */
#ifndef LOKET_GW_JSON_H
#define LOKET_GW_JSON_H

#include <stddef.h>

typedef struct gw_json {
	char *p; /* NUL-terminated text so far */
	size_t len, cap;
	int failed;   /* out of memory, or bad UTF-8 in a strict string */
	int bad_utf8; /* the failure was a strict string that is not UTF-8 */
} gw_json;

/* Appends n bytes as they are. */
void gw_json_raw(gw_json *b, const char *s, size_t n);
/* Appends a NUL-terminated piece of structure as it is. */
void gw_json_lit(gw_json *b, const char *s);
/* Appends the first n bytes of s as a JSON string. Strict: invalid UTF-8
 * fails the document (bad_utf8). */
void gw_json_str(gw_json *b, const char *s, size_t n);
/* The same, but each byte that is not part of valid UTF-8 becomes U+FFFD. */
void gw_json_str_lossy(gw_json *b, const char *s, size_t n);
/* ,"key":"value" (no comma when first); value NULL writes "". Strict. */
void gw_json_kv(gw_json *b, int first, const char *key, const char *value);
/* The text (the caller frees it), or NULL when anything failed. b is empty
 * afterwards. */
char *gw_json_take(gw_json *b);
/* Frees whatever b holds. */
void gw_json_free(gw_json *b);

#endif
