/* A tiny JSON reader for the run spec: parses a whole document into a tree. The spec is small and
 * trusted (it comes from kiln's own Node process), so the parser favours brevity over speed. */
#ifndef KILN_JSON_H
#define KILN_JSON_H
#include <stddef.h>
#include <stdbool.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
  enum json_type type;
  bool boolean;
  double number;
  char *string;          /* JSON_STRING: NUL-terminated, decoded */
  size_t len;            /* number of items (array) or members (object) */
  struct json **items;   /* array items or object values */
  char **keys;           /* object keys, parallel to items */
};

/* Returns NULL and fills err (one line) when text is not valid JSON. */
struct json *json_parse(const char *text, char *err, size_t errlen);
const struct json *json_get(const struct json *obj, const char *key);
#endif
