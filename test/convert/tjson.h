/* tjson.h: the convert tests' view of the fixture manifests: a JSON tree of
 * malloc'd nodes (parsed by common/zjson.h). */
#ifndef ZEOLITE_TJSON_H
#define ZEOLITE_TJSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TJ_NULL, TJ_BOOL, TJ_NUM, TJ_STR, TJ_ARR, TJ_OBJ } tj_type;

typedef struct tj {
    tj_type type;
    double num;          /* TJ_NUM, TJ_BOOL */
    char *str;           /* TJ_STR; object member names in key */
    char *key;           /* name when the node is an object member */
    struct tj **items;   /* TJ_ARR, TJ_OBJ */
    size_t n;
} tj;

/* Parse a whole file; NULL on error. Free with tj_free. */
tj *tj_parse_file(const char *path);
void tj_free(tj *v);
/* Member of an object, or NULL. */
tj *tj_get(const tj *obj, const char *key);
/* Convenience: string member or NULL; number member or 0. */
const char *tj_gets(const tj *obj, const char *key);
double tj_getn(const tj *obj, const char *key);
/* A 16-hex-digit id as a number (oids, tids). */
uint64_t tj_hex64(const char *s);
/* Decode hex into a malloc'd buffer; *len set. NULL on bad hex. */
uint8_t *tj_unhex(const char *s, size_t *len);

#endif
