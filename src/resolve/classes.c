/* classes.c: the classes resolved, as their records name them.
 *
 * The families of Debian's BTrees 4.3.1 (no U or Q: those came with 4.7)
 * and Length. Each class is written by its module's name, "BTrees.OOBTree",
 * as ZODB pickles it (the C types say so in their tp_name); another
 * spelling of the same class falls back.
 */
#include "resolve/resolve_int.h"

#include <string.h>

#define FAMILY(mod, p, k, v)                                                                       \
    {"BTrees." mod "BTree", p "Bucket", RS_BUCKET, k, v},                                          \
        {"BTrees." mod "BTree", p "Set", RS_SET, k, v},                                            \
        {"BTrees." mod "BTree", p "BTree", RS_BTREE, k, v},                                        \
        {"BTrees." mod "BTree", p "TreeSet", RS_TREESET, k, v}

static const rs_class classes[] = {
    {"BTrees.Length", "Length", RS_LENGTH, RS_OBJ, RS_OBJ},
    FAMILY("IO", "IO", RS_I32, RS_OBJ),
    FAMILY("II", "II", RS_I32, RS_I32),
    FAMILY("IF", "IF", RS_I32, RS_F32),
    FAMILY("LO", "LO", RS_I64, RS_OBJ),
    FAMILY("LL", "LL", RS_I64, RS_I64),
    FAMILY("LF", "LF", RS_I64, RS_F32),
    FAMILY("OO", "OO", RS_OBJ, RS_OBJ),
    FAMILY("OI", "OI", RS_OBJ, RS_I32),
    FAMILY("OL", "OL", RS_OBJ, RS_I64),
};

const rs_class *rs__class_find(const char *module, const char *name)
{
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (!strcmp(classes[i].module, module) && !strcmp(classes[i].name, name))
            return &classes[i];
    return NULL;
}

/* ZODB writes a class as the bare global, or (class, None) / (class, args)
 * when it has __getnewargs__; tryToResolveConflict then makes the instance
 * with klass.__new__(klass, *(args or ())), which these classes accept only
 * without arguments. */
const rs_class *rs__class_of_meta(const zv *meta)
{
    const zv *g = meta;
    if (meta->type == ZV_TUPLE) {
        if (meta->u.seq.n != 2)
            return NULL;
        const zv *args = meta->u.seq.items[1];
        if (args->type != ZV_NONE && !(args->type == ZV_TUPLE && args->u.seq.n == 0))
            return NULL;
        g = meta->u.seq.items[0];
    }
    if (g->type != ZV_GLOBAL)
        return NULL;
    return rs__class_find(g->u.global.module, g->u.global.name);
}
