#include "json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser { const char *p; char *err; size_t errlen; };

static void *xalloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p) { perror("kiln-sandbox: calloc"); exit(125); }
  return p;
}

static void skip_ws(struct parser *ps) {
  while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++;
}

static struct json *fail(struct parser *ps, const char *what) {
  if (!ps->err[0]) snprintf(ps->err, ps->errlen, "invalid run spec JSON: %s", what);
  return NULL;
}

static void put_utf8(char **out, unsigned cp) {
  char *o = *out;
  if (cp < 0x80) *o++ = (char)cp;
  else if (cp < 0x800) { *o++ = (char)(0xC0 | cp >> 6); *o++ = (char)(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) {
    *o++ = (char)(0xE0 | cp >> 12); *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *o++ = (char)(0xF0 | cp >> 18); *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F));
  }
  *out = o;
}

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

/* Decoded strings are never longer than their escaped form, so one allocation of that size suffices. */
static char *parse_string(struct parser *ps) {
  const char *start = ++ps->p;
  const char *end = start;
  while (*end && *end != '"') end += (*end == '\\' && end[1]) ? 2 : 1;
  if (*end != '"') { fail(ps, "unterminated string"); return NULL; }
  char *out = xalloc((size_t)(end - start) + 1), *o = out;
  const char *s = start;
  while (s < end) {
    if (*s != '\\') { *o++ = *s++; continue; }
    s++;
    switch (*s++) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u': {
        unsigned cp, lo;
        if (end - s < 4 || hex4(s, &cp)) { free(out); fail(ps, "bad \\u escape"); return NULL; }
        s += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && end - s >= 6 && s[0] == '\\' && s[1] == 'u' && !hex4(s + 2, &lo) &&
            lo >= 0xDC00 && lo < 0xE000) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          s += 6;
        }
        put_utf8(&o, cp);
        break;
      }
      default: free(out); fail(ps, "bad escape"); return NULL;
    }
  }
  *o = 0;
  ps->p = end + 1;
  return out;
}

static struct json *parse_value(struct parser *ps, int depth);

static struct json *parse_container(struct parser *ps, int depth, bool object) {
  struct json *j = xalloc(sizeof *j);
  j->type = object ? JSON_OBJECT : JSON_ARRAY;
  size_t cap = 0;
  char close = object ? '}' : ']';
  ps->p++;
  skip_ws(ps);
  if (*ps->p == close) { ps->p++; return j; }
  for (;;) {
    char *key = NULL;
    if (object) {
      skip_ws(ps);
      if (*ps->p != '"') return fail(ps, "expected object key");
      if (!(key = parse_string(ps))) return NULL;
      skip_ws(ps);
      if (*ps->p++ != ':') return fail(ps, "expected ':'");
    }
    struct json *v = parse_value(ps, depth + 1);
    if (!v) return NULL;
    if (j->len == cap) {
      cap = cap ? cap * 2 : 8;
      j->items = realloc(j->items, cap * sizeof *j->items);
      if (object) j->keys = realloc(j->keys, cap * sizeof *j->keys);
      if (!j->items || (object && !j->keys)) { perror("kiln-sandbox: realloc"); exit(125); }
    }
    if (object) j->keys[j->len] = key;
    j->items[j->len++] = v;
    skip_ws(ps);
    if (*ps->p == ',') { ps->p++; continue; }
    if (*ps->p == close) { ps->p++; return j; }
    return fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static struct json *parse_value(struct parser *ps, int depth) {
  if (depth > 64) return fail(ps, "nested too deeply");
  skip_ws(ps);
  char c = *ps->p;
  if (c == '{' || c == '[') return parse_container(ps, depth, c == '{');
  if (c == '"') {
    char *s = parse_string(ps);
    if (!s) return NULL;
    struct json *j = xalloc(sizeof *j);
    j->type = JSON_STRING;
    j->string = s;
    return j;
  }
  struct json *j = xalloc(sizeof *j);
  if (!strncmp(ps->p, "true", 4)) { j->type = JSON_BOOL; j->boolean = true; ps->p += 4; return j; }
  if (!strncmp(ps->p, "false", 5)) { j->type = JSON_BOOL; ps->p += 5; return j; }
  if (!strncmp(ps->p, "null", 4)) { j->type = JSON_NULL; ps->p += 4; return j; }
  char *end;
  j->number = strtod(ps->p, &end);
  if (end == ps->p) { free(j); return fail(ps, "unexpected character"); }
  j->type = JSON_NUMBER;
  ps->p = end;
  return j;
}

struct json *json_parse(const char *text, char *err, size_t errlen) {
  struct parser ps = { text, err, errlen };
  err[0] = 0;
  struct json *j = parse_value(&ps, 0);
  if (!j) return NULL;
  skip_ws(&ps);
  if (*ps.p) return fail(&ps, "trailing characters");
  return j;
}

const struct json *json_get(const struct json *obj, const char *key) {
  if (!obj || obj->type != JSON_OBJECT) return NULL;
  for (size_t i = 0; i < obj->len; i++)
    if (!strcmp(obj->keys[i], key)) return obj->items[i];
  return NULL;
}
