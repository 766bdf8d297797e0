#!/usr/bin/python3
"""Three-way conflict cases for zeolite's BTrees resolvers, answered by BTrees.

For every class zeolite resolves (the bucket, set, tree and tree-set classes
of the families of Debian's BTrees 4.3.1, and BTrees.Length) this builds
random cases: an old state, then two independent sets of inserts, deletes and
changes giving the committed and the new state. Each state is pickled as ZODB
stores a record: the class pickle then the state pickle, one pickler (so one
memo), protocol 3, persistent ids for the persistent objects a state refers
to, in every form ZODB writes them.

BTrees then answers each case as ZODB's conflict resolution would ask it:
the three records are loaded with one persistent-reference object per
spelling of a persistent id, shared by the three loads (new, old, committed,
in that order), and _p_resolveConflict(old, committed, new) is called. The
answer is recorded: the resolved record as ZODB writes it (the class pickle
then the resolved state, protocol 3, one memo), or the refusal (BTrees'
reason number, or the exception's name).

Only Debian's python3-btrees and python3-persistent are needed; no ZODB.

Usage: gen_cases.py --out FILE [--seed N] [--per-class N] [--time-limit S]
                    [--only SUBSTRING]
The seed is --seed, else $ZEOLITE_RESOLVE_SEED, else random; it is printed.

Output (all integers little-endian):
  b"ZRCASES1", u32 seed, u32 number of cases, then per case:
  u8 len + class ("BTrees.OOBTree.OOBucket"), u8 len + kind, u32 index,
  three times u32 len + record (old, committed, new),
  u8 answer: 0 resolved (u32 len + record), 1 BTrees conflict (u8 reason),
             2 other exception (u8 len + its class name).
The kind names the keys' type ("int", "str", "bytes", "tuple", "float",
"mixed", "ref", "none") or "odd" for a case built to be malformed or unusual.
"""

import argparse
import io
import os
import pickle
import random
import struct
import sys
import time
import types

os.environ.pop('PURE_PYTHON', None)
os.environ.pop('BTREES_PURE_PYTHON', None)

from BTrees.Length import Length  # noqa: E402
from BTrees.Interfaces import BTreesConflictError  # noqa: E402

FAMILIES = {  # prefix: (key kind, value kind)
    'IO': ('i32', 'obj'), 'II': ('i32', 'i32'), 'IF': ('i32', 'f32'),
    'LO': ('i64', 'obj'), 'LL': ('i64', 'i64'), 'LF': ('i64', 'f32'),
    'OO': ('obj', 'obj'), 'OI': ('obj', 'i32'), 'OL': ('obj', 'i64'),
}
SHAPES = ('Bucket', 'Set', 'BTree', 'TreeSet')

I32 = (-2**31, 2**31 - 1)
I64 = (-2**63, 2**63 - 1)


def class_table():
    table = []
    for fam in FAMILIES:
        mod = __import__('BTrees.%sBTree' % fam, fromlist=['x'])
        cext = __import__('BTrees._%sBTree' % fam, fromlist=['x'])
        for shape in SHAPES:
            cls = getattr(mod, fam + shape)
            # The C implementation is the one the Python server runs.
            assert cls is getattr(cext, fam + shape), cls
            table.append((cls, fam, shape))
    table.append((Length, None, 'Length'))
    return table


# ---- the application's persistent classes -------------------------------
# Persistent references name their object's class; these stand for an
# application's classes. They live in a module of their own so that the
# pickler writes them by name and the unpickler finds them again, as a
# Python server finds an application's classes when it can import them.

APP_MODULE = 'zeolite_app.models'
_app = types.ModuleType(APP_MODULE)
sys.modules[APP_MODULE] = _app
sys.modules['zeolite_app'] = types.ModuleType('zeolite_app')
sys.modules['zeolite_app'].models = _app
APP_CLASSES = []
for _name in ('Document', 'Folder', 'Image'):
    _cls = type(_name, (), {'__module__': APP_MODULE})
    setattr(_app, _name, _cls)
    APP_CLASSES.append(_cls)

REF_FORMS = ('oid', 'cls', 'cls', 'cls', 'n', 'm', 'w', 'wdb', 'legacy')


class Obj:
    """A persistent object as a client's state holds it: written as a
    persistent id of the chosen form."""

    def __init__(self, oid, form, klass, db):
        self.oid, self.form, self.klass, self.db = oid, form, klass, db

    def pid(self):
        f, oid = self.form, self.oid
        if f == 'oid':
            return oid
        if f == 'cls':
            return (oid, self.klass)
        if f == 'n':
            return ['n', (self.db, oid)]
        if f == 'm':
            return ['m', (self.db, oid, self.klass)]
        if f == 'w':
            return ['w', (oid,)]
        if f == 'wdb':
            return ['w', (oid, self.db)]
        return [oid]  # legacy weak reference


class Ref:
    """Stand-in for what ZODB's conflict resolution loads a persistent id
    as. Two are equal when they are one object, or when both are strong and
    name the same oid in the same database; comparing anything else raises
    ValueError, so that BTrees cannot order two different objects."""

    weak = False
    database_name = None

    def __init__(self, data):
        self.data = data
        if isinstance(data, tuple):
            self.oid = data[0]
        elif isinstance(data, (bytes, str)):
            self.oid = data
        elif data[0] == 'm':
            self.database_name, self.oid = data[1][0], data[1][1]
        elif data[0] == 'n':
            self.database_name, self.oid = data[1]
        elif data[0] == 'w':
            self.weak = True
            if len(data[1]) == 1:
                self.oid = data[1][0]
            else:
                self.oid, self.database_name = data[1]
        else:
            assert len(data) == 1, 'unknown reference format'
            self.weak = True
            self.oid = data[0]
        if isinstance(self.oid, str):
            self.oid = self.oid.encode('ascii')

    def _same(self, other):
        if self is other:
            return True
        if (isinstance(other, Ref) and not self.weak and not other.weak
                and self.oid == other.oid
                and self.database_name == other.database_name):
            return True
        raise ValueError('different persistent references do not compare')

    def __eq__(self, other):
        return self._same(other)

    def __ne__(self, other):
        return not self._same(other)

    def __lt__(self, other):
        return not self._same(other)

    def __gt__(self, other):
        return not self._same(other)

    def __le__(self, other):
        return self._same(other)

    def __ge__(self, other):
        return self._same(other)

    __hash__ = None


class RefTable:
    """One Ref per spelling of a persistent id, for all three loads."""

    def __init__(self):
        self.refs = {}

    def load(self, pid):
        key = tuple(pid)
        ref = self.refs.get(key)
        if ref is None:
            ref = self.refs[key] = Ref(pid)
        return ref


class Loader(pickle.Unpickler):
    def __init__(self, data, table):
        super().__init__(io.BytesIO(data))  # encoding ASCII, errors strict
        self.table = table

    def persistent_load(self, pid):
        return self.table.load(pid)


def zodbpickle_singletons(v, seen):
    """The server's unpickler (zodbpickle's) returns one shared object for
    each 1-byte bytes value, as CPython does for 1-character str; the
    standard library's does not. Give the loaded states the server's
    object identities, which decide where its pickler writes memo gets."""
    if type(v) is bytes and len(v) == 1:
        return seen.setdefault(('b', v), v)
    if type(v) not in (tuple, list):
        return v
    if id(v) in seen:
        return seen[id(v)][1]
    items = [zodbpickle_singletons(x, seen) for x in v]
    if type(v) is list:
        v[:] = items
        out = v
    elif all(a is b for a, b in zip(items, v)):
        out = v
    else:
        out = tuple(items)
    seen[id(v)] = (v, out)  # keep v alive so its id stays unique
    return out


class Writer(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid() if isinstance(obj, Obj) else None


class Py2Writer(pickle._Pickler):
    """A writer that spells some ASCII str as Python 2 strings
    (SHORT_BINSTRING/BINSTRING), as records written by Python 2 hold them."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, f, rng):
        super().__init__(f, 3)
        self.rng = rng

    def persistent_id(self, obj):
        return obj.pid() if isinstance(obj, Obj) else None

    def save_str(self, obj):
        if obj.isascii() and self.rng.random() < 0.7:
            data = obj.encode('ascii')
            if len(data) < 256:
                self.write(b'U' + bytes([len(data)]) + data)
            else:
                self.write(b'T' + struct.pack('<i', len(data)) + data)
            self.memoize(obj)
        else:
            pickle._Pickler.save_str(self, obj)

    dispatch[str] = save_str


class RawState:
    """A state pickled from ready-made pickle bytes (for states Python
    cannot build, such as Python 2 strings that are not ASCII)."""

    def __init__(self, data):
        self.data = data


def record(klass, state, rng, py2=False):
    f = io.BytesIO()
    if isinstance(state, RawState):
        Writer(f, 3).dump(klass)
        return f.getvalue() + state.data
    w = Py2Writer(f, rng) if py2 else Writer(f, 3)
    w.dump(klass)
    w.dump(state)
    return f.getvalue()


def answer(new, old, committed):
    """BTrees' answer, asked as ZODB's tryToResolveConflict asks it."""
    try:
        table = RefTable()
        seen = {}
        u = Loader(new, table)
        meta = u.load()
        newstate = zodbpickle_singletons(u.load(), seen)
        states = []
        for data in (old, committed):
            u = Loader(data, table)
            u.load()
            states.append(zodbpickle_singletons(u.load(), seen))
        klass = meta[0] if isinstance(meta, tuple) else meta
        inst = klass.__new__(klass)
        resolved = inst._p_resolveConflict(states[0], states[1], newstate)
        f = io.BytesIO()
        p = pickle.Pickler(f, 3)
        p.persistent_id = lambda o: o.data if isinstance(o, Ref) else None
        p.dump(meta)
        p.dump(resolved)
        return 0, f.getvalue()
    except BTreesConflictError as e:
        return 1, e.args[-1]
    except Exception as e:  # the server turns any error into a conflict
        return 2, type(e).__name__


# ---- random values ---------------------------------------------------------

class Gen:
    def __init__(self, rng):
        self.rng = rng
        self.objs = []

    def chance(self, p):
        return self.rng.random() < p

    def int_in(self, lo, hi):
        r = self.rng
        x = r.random()
        if x < 0.55:
            v = r.randint(-50, 300)
        elif x < 0.8:
            v = r.randint(-100000, 100000)
        elif x < 0.9:
            v = r.randint(lo, hi)
        else:
            v = r.choice((lo, hi, lo + 1, hi - 1, 0, -1, 255, 256, 65535, 65536,
                          2**31 - 1, -2**31))
        return max(lo, min(hi, v))

    def big_int(self):
        r = self.rng
        e = r.choice((31, 32, 63, 64, 65, 100, 300))
        return r.choice((1, -1)) * (r.randrange(2**e) + r.choice((0, 2**e)))

    def any_int(self):
        return self.big_int() if self.chance(0.15) else self.int_in(*I64)

    def text(self):
        r = self.rng
        x = r.random()
        if x < 0.15:
            return r.choice(('', 'a', 'b', 'z', '\xe9', '\xff', '\u0100', '\u20ac'))
        alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 _-' if x < 0.8 else \
            'abc\xe9\xff\u0100\u20ac\U0001f600\ud800'
        return ''.join(r.choice(alphabet) for _ in range(r.randint(1, 12)))

    def blob(self):
        r = self.rng
        if self.chance(0.15):
            return r.choice((b'', b'a', b'\x00', b'\xff', b'z'))
        return bytes(r.randrange(256) if self.chance(0.3) else r.randrange(97, 123)
                     for _ in range(r.randint(1, 12)))

    def float_any(self):
        r = self.rng
        x = r.random()
        if x < 0.3:
            return float(r.randint(-1000, 1000))
        if x < 0.5:
            return r.choice((0.0, -0.0, 0.5, 1e300, -1e-300, 2.0**63, -2.0**63, 2.0**64,
                             1e20, 0.1))
        return r.uniform(-1e6, 1e6)

    def obj(self):
        r = self.rng
        if self.objs and self.chance(0.3):
            return r.choice(self.objs)  # one object referred to twice
        oid = struct.pack('>Q', r.randrange(1, 5000))
        o = Obj(oid, r.choice(REF_FORMS), r.choice(APP_CLASSES), r.choice(('other', 'cat')))
        self.objs.append(o)
        return o

    def scalar(self):
        r = self.rng
        x = r.random()
        if x < 0.2:
            return self.any_int()
        if x < 0.4:
            return self.text()
        if x < 0.5:
            return self.blob()
        if x < 0.6:
            return self.float_any()
        if x < 0.65:
            return None
        if x < 0.7:
            return r.choice((True, False))
        return self.obj()

    def obj_value(self):
        r = self.rng
        x = r.random()
        if x < 0.75:
            return self.scalar()
        if x < 0.9:
            return tuple(self.scalar() for _ in range(r.randint(0, 4)))
        return [self.scalar() for _ in range(r.randint(0, 4))]

    def f32_value(self):
        r = self.rng
        x = r.random()
        if x < 0.3:
            return struct.unpack('f', struct.pack('f', r.uniform(-1e4, 1e4)))[0]
        if x < 0.6:
            return r.uniform(-1e6, 1e6)  # BTrees rounds it to a C float
        if x < 0.85:
            return self.int_in(-2**40, 2**40)
        if x < 0.9:
            return r.choice((True, False))
        return r.choice((0.0, -0.0, 3.4e38, -3.4e38, 1e-45, 1e-40, 0.1))


# ---- keys of each kind -----------------------------------------------------

def key_maker(g, keyk, kind):
    r = g.rng
    if keyk != 'obj':
        lo, hi = I32 if keyk == 'i32' else I64
        if kind == 'odd':
            return lambda: r.choice((lo - 1, hi + 1, 2**70, 1.5, 'x', None, g.int_in(lo, hi)))
        return lambda: True if g.chance(0.01) else g.int_in(lo, hi)
    if kind == 'int':
        return g.any_int
    if kind == 'str':
        return g.text
    if kind == 'bytes':
        return g.blob
    if kind == 'tuple':
        shapes = [r.choice(('i', 's', 'b')) for _ in range(r.randint(1, 3))]

        def tup():
            n = len(shapes) if g.chance(0.8) else r.randint(0, len(shapes))
            make = {'i': lambda: g.int_in(-20, 20), 's': g.text, 'b': g.blob}
            return tuple(make[s]() for s in shapes[:n])
        return tup
    if kind == 'float':
        return lambda: g.float_any() if g.chance(0.7) else g.int_in(-1000, 1000)
    if kind == 'mixed':
        return lambda: g.text() if g.chance(0.5) else g.int_in(-1000, 1000)
    if kind == 'ref':
        return lambda: Obj(struct.pack('>Q', r.randrange(1, 40)), 'cls', APP_CLASSES[0], None)
    if kind == 'none':
        return lambda: None if g.chance(0.2) else g.text()
    return lambda: r.choice((g.text(), g.any_int(), g.blob(), None, float('nan'),
                             (1, 'a'), ('a', 1)))


def sort_key(k):
    return k.oid if isinstance(k, Obj) else k


def place(pairs, key, value, kind, rng):
    """Insert (key, value) where Python's ordering puts it; keys that do not
    order (mixed kinds, odd cases) go anywhere."""
    try:
        i = 0
        while i < len(pairs) and sort_key(pairs[i][0]) < sort_key(key):
            i += 1
    except TypeError:
        i = rng.randrange(len(pairs) + 1)
    pairs.insert(i, (key, value))


def value_maker(g, valk, kind):
    r = g.rng
    if valk == 'obj':
        if kind == 'odd':
            return lambda: r.choice((float('nan'), {'a': 1}, {1, 2}, g.obj_value()))
        return g.obj_value
    if valk == 'f32':
        if kind == 'odd':
            return lambda: r.choice((float('nan'), float('inf'), 1e39, 2**70, 'x',
                                     g.f32_value()))
        return g.f32_value
    lo, hi = I32 if valk == 'i32' else I64
    if kind == 'odd':
        return lambda: r.choice((lo - 1, hi + 1, 1.0, None, g.int_in(lo, hi)))
    return lambda: True if g.chance(0.01) else g.int_in(lo, hi)


def key_kind(g, keyk):
    if keyk != 'obj':
        return 'odd' if g.chance(0.06) else 'int'
    return g.rng.choices(('str', 'bytes', 'int', 'tuple', 'float', 'mixed', 'ref', 'none',
                          'odd'), (26, 14, 20, 16, 8, 3, 3, 3, 7))[0]


def same_key(a, b):
    if isinstance(a, Obj) or isinstance(b, Obj):
        return isinstance(a, Obj) and isinstance(b, Obj) and a.oid == b.oid
    try:
        return a == b and (type(a) is type(b) or isinstance(a, (int, float)))
    except Exception:
        return False


def has(pairs, k):
    return any(same_key(k, x) for x, _ in pairs)


def edit(g, base, kind, mk_key, mk_val, pool, mapping):
    """Apply a random batch of inserts, deletes and changes to a copy."""
    r = g.rng
    out = list(base)
    for _ in range(r.choices((0, 1, 2, 3, 5, 8), (8, 30, 25, 17, 12, 8))[0]):
        op = r.random()
        if op < 0.45 or not out:
            k = r.choice(pool) if g.chance(0.12) else mk_key()
            if not has(out, k):
                place(out, k, mk_val() if mapping else None, kind, r)
        elif op < 0.75 or not mapping:
            del out[0 if g.chance(0.1) else r.randrange(len(out))]
        else:
            i = r.randrange(len(out))
            old = out[i][1]
            v = mk_val()
            for _ in range(8):  # mostly a new value of the same type
                if type(v) is type(old) or g.chance(0.3):
                    break
                v = mk_val()
            if g.chance(0.1):
                v = old  # "changed" to the value it had
            out[i] = (out[i][0], v)
    return out


def items_tuple(pairs, mapping):
    if not mapping:
        return tuple(k for k, _ in pairs)
    return tuple(x for kv in pairs for x in kv)


def odd_state(g, state, shape, mapping):
    """Damage a state the way a hostile or broken client might."""
    r = g.rng
    x = r.random()
    items = state[0] if shape in ('Bucket', 'Set') and isinstance(state, tuple) and state else ()
    if x < 0.2 and shape in ('Bucket', 'Set'):
        return (items + (1,),)  # an odd number of items
    if x < 0.35 and shape in ('Bucket', 'Set'):
        return (list(items),)
    if x < 0.45:
        return (tuple(reversed(items)),)
    if x < 0.55 and shape in ('BTree', 'TreeSet'):
        return ((g.obj(), 1, g.obj()), g.obj())  # two buckets
    if x < 0.65 and shape in ('BTree', 'TreeSet'):
        return (((items,),), 1, 2)
    if x < 0.75:
        return RawState(b'\x80\x03(U\x02\xc3\xa9q\x01K\x01tq\x02\x85q\x03.')
    return state


def make_states(g, cls, fam, shape):
    keyk, valk = FAMILIES[fam]
    mapping = shape in ('Bucket', 'BTree')
    kind = key_kind(g, keyk)
    mk_key = key_maker(g, keyk, kind)
    mk_val = value_maker(g, valk if mapping else 'i32', kind)
    r = g.rng
    n = r.choices((0, 1, 2, 4, 8, 16, 30, 60, 130), (6, 10, 10, 14, 18, 18, 14, 6, 4))[0]
    if shape in ('BTree', 'TreeSet'):
        n = min(n, 30)
    base = []
    for _ in range(n * 2):
        if len(base) >= n:
            break
        k = mk_key()
        if not has(base, k):
            place(base, k, mk_val() if mapping else None, kind, r)
    pool = [mk_key() for _ in range(3)]
    sides = [edit(g, base, kind, mk_key, mk_val, pool, mapping) for _ in range(2)]
    nxt = None
    if shape in ('Bucket', 'Set') and g.chance(0.3):
        # A bucket of a bigger tree links to the next bucket, a persistent
        # object of its own class.
        nxt = Obj(struct.pack('>Q', r.randrange(1, 5000)),
                  r.choice(('cls', 'cls', 'cls', 'oid', 'n', 'm')), cls, 'other')
    states = []
    for items in [base] + sides:
        t = items_tuple(items, mapping)
        if shape in ('Bucket', 'Set'):
            states.append((t, nxt) if nxt is not None else (t,))
        else:
            states.append((((t,),),) if t else None)
    if nxt is not None and g.chance(0.05):
        i = r.randrange(3)  # one side links elsewhere, or spells the link otherwise
        other = Obj(nxt.oid, r.choice(('cls', 'oid', 'n')), cls, 'other')
        states[i] = (states[i][0], other if g.chance(0.5) else g.obj())
    if kind == 'odd' and g.chance(0.5):
        i = r.randrange(3)
        states[i] = odd_state(g, states[i], shape, mapping)
    return kind, states


def length_states(g):
    r = g.rng
    kind = 'odd' if g.chance(0.05) else 'int'
    old = g.any_int() if g.chance(0.7) else r.choice((2**63 - 1, -2**63, 2**64, -2**64 - 5))
    deltas = []
    for _ in range(2):
        x = r.random()
        if x < 0.6:
            deltas.append(r.randint(-5, 5))
        elif x < 0.85:
            deltas.append(g.any_int())
        else:
            deltas.append(r.choice((2**63, -2**63, 2**64 + 7, -(2**100))))
    states = [old, old + deltas[0], old + deltas[1]]
    if g.chance(0.03):
        states = [r.choice((True, False)) for _ in range(3)]
    if kind == 'odd':
        i = r.randrange(3)
        states[i] = r.choice((1.5, 'x', None, (1,), float('nan')))
    return kind, states


def make_case(g, cls, fam, shape):
    if shape == 'Length':
        kind, states = length_states(g)
    else:
        kind, states = make_states(g, cls, fam, shape)
    py2 = kind in ('str', 'tuple', 'mixed', 'none', 'odd') and g.chance(0.2)
    recs = [record(cls, s, g.rng, py2 and g.chance(0.7)) for s in states]
    return kind, recs


def class_name(cls):
    return '%s.%s' % (cls.__module__, cls.__name__)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', required=True)
    ap.add_argument('--seed', type=int)
    ap.add_argument('--per-class', type=int, default=2000)
    ap.add_argument('--time-limit', type=float, default=60.0)
    ap.add_argument('--only', default='')
    args = ap.parse_args()
    seed = args.seed
    if seed is None and os.environ.get('ZEOLITE_RESOLVE_SEED'):
        seed = int(os.environ['ZEOLITE_RESOLVE_SEED'])
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    print('gen_cases: seed %d (repeat with --seed %d)' % (seed, seed), flush=True)
    table = [c for c in class_table() if args.only in class_name(c[0])]
    deadline = time.monotonic() + args.time_limit
    out = []
    done = 0
    for i in range(args.per_class):
        if time.monotonic() > deadline:
            break
        for k, (cls, fam, shape) in enumerate(table):
            # One generator per case, so that a case does not depend on the
            # cases before it.
            g = Gen(random.Random('%d/%s/%d' % (seed, class_name(cls), i)))
            kind, (old, committed, new) = make_case(g, cls, fam, shape)
            out.append((class_name(cls), kind, i, old, committed, new,
                        answer(new, old, committed)))
        done = i + 1
    with open(args.out + '.tmp', 'wb') as f:
        f.write(b'ZRCASES1' + struct.pack('<II', seed, len(out)))
        for name, kind, i, old, committed, new, (how, what) in out:
            f.write(bytes([len(name)]) + name.encode() + bytes([len(kind)]) + kind.encode())
            f.write(struct.pack('<I', i))
            for rec in (old, committed, new):
                f.write(struct.pack('<I', len(rec)) + rec)
            f.write(bytes([how]))
            if how == 0:
                f.write(struct.pack('<I', len(what)) + what)
            elif how == 1:
                f.write(bytes([what & 0xff]))
            else:
                f.write(bytes([len(what)]) + what.encode())
    os.replace(args.out + '.tmp', args.out)
    print('gen_cases: %d cases, %d per class, %d classes' % (len(out), done, len(table)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
