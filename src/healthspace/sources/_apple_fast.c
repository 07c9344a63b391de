/* Native scanner for runs of plain <Record> elements of an Apple Health export.
 *
 * The pure-Python scanner (_apple_scan.py) stays the reference: this module reads
 * exactly what its fast path reads, only without creating a Python object per
 * attribute. scan(data, pos) reads top-level <Record> elements from ``pos`` on, with
 * the GIL released, and stops at the first thing it does not handle (any other
 * element, a comment, a Record with children other than self-closing
 * <MetadataEntry/>, anything malformed); the caller reads that piece with the
 * element reader and calls scan again after it.
 *
 * A Record whose dates are not Apple's fixed 25-byte layout or whose value is not a
 * plain decimal number is returned "odd", as its raw attribute bytes, so the
 * Python column code decides about it exactly as it does for the element reader.
 *
 * Returns (stop, records, keys, key_idx, ordinal, start_ms, end_ms, offset_min,
 * values, odd): keys are (type, source, device name, unit) as raw (still escaped)
 * bytes; the columns are bytes holding int32, int32, int64, int64, int16 and
 * float64 arrays (native byte order) for the plain records; odd is a list of
 * (ordinal, type, source, device name, unit, start, end, value).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__APPLE__)
#include <xlocale.h>
#endif

typedef struct {
    const char *p;
    Py_ssize_t n;
} span;

enum { A_TYPE, A_SOURCE_NAME, A_SOURCE, A_DEVICE, A_UNIT, A_START, A_END, A_VALUE, A_COUNT };

typedef struct {
    span type, source, device, unit;
    uint64_t hash;
    int used;
} key_slot;

typedef struct {
    /* plain rows */
    int32_t *key_idx;
    int32_t *ordinal;
    int64_t *start_ms;
    int64_t *end_ms;
    int16_t *offset_min;
    double *value;
    Py_ssize_t rows, cap;
    /* odd rows: ordinal + 7 spans */
    int32_t *odd_ordinal;
    span *odd_spans;
    Py_ssize_t odd_rows, odd_cap;
    /* keys: an open-addressing table, and the keys in order of first use */
    key_slot *table;
    Py_ssize_t table_cap, n_keys;
    int32_t *table_ids;
    key_slot *keys;
    Py_ssize_t keys_cap;
    int nomem;
} result;

static locale_t c_locale;

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && is_ws(*p)) p++;
    return p;
}

static int starts(const char *p, const char *end, const char *lit, size_t n) {
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

/* True when ``<name`` at p is followed by whitespace, '/' or '>'. */
static int tag_is(const char *p, const char *end, const char *name, size_t n) {
    if (!starts(p, end, name, n)) return 0;
    if (p + n >= end) return 0;
    char c = p[n];
    return is_ws(c) || c == '/' || c == '>';
}

/* Reads attributes from p (just after the tag name) to the end of the start tag.
 * Known Record attributes go to ``out`` (may be NULL). Returns the position past
 * the tag, or NULL if malformed; *closed says whether it ended with "/>". */
static const char *read_attrs(const char *p, const char *end, span *out, int *closed) {
    for (;;) {
        const char *q = skip_ws(p, end);
        if (q >= end) return NULL;
        if (*q == '/') {
            if (q + 1 < end && q[1] == '>') {
                *closed = 1;
                return q + 2;
            }
            return NULL;
        }
        if (*q == '>') {
            *closed = 0;
            return q + 1;
        }
        if (q == p) return NULL; /* attributes must be separated by whitespace */
        const char *name = q;
        while (q < end && !is_ws(*q) && *q != '=' && *q != '/' && *q != '>' && *q != '<'
               && *q != '"' && *q != '\'')
            q++;
        Py_ssize_t name_n = q - name;
        if (name_n == 0) return NULL;
        q = skip_ws(q, end);
        if (q >= end || *q != '=') return NULL;
        q = skip_ws(q + 1, end);
        if (q >= end || (*q != '"' && *q != '\'')) return NULL;
        char quote = *q++;
        const char *close = memchr(q, quote, (size_t)(end - q));
        if (close == NULL) return NULL;
        if (memchr(q, '<', (size_t)(close - q)) != NULL) return NULL;
        if (out != NULL) {
            int which = -1;
#define NAME_IS(lit) (name_n == (Py_ssize_t)sizeof(lit) - 1 && memcmp(name, lit, sizeof(lit) - 1) == 0)
            if (NAME_IS("type")) which = A_TYPE;
            else if (NAME_IS("sourceName")) which = A_SOURCE_NAME;
            else if (NAME_IS("source")) which = A_SOURCE;
            else if (NAME_IS("device")) which = A_DEVICE;
            else if (NAME_IS("unit")) which = A_UNIT;
            else if (NAME_IS("startDate")) which = A_START;
            else if (NAME_IS("endDate")) which = A_END;
            else if (NAME_IS("value")) which = A_VALUE;
#undef NAME_IS
            if (which >= 0) {
                if (out[which].p != NULL) return NULL; /* a repeated attribute */
                out[which].p = q;
                out[which].n = close - q;
            }
        }
        p = close + 1;
    }
}

/* "<<HKDevice: 0x..>, name:Apple Watch, manufacturer:..>" -> "Apple Watch": from
 * "name:" to the next ',' or '>' (also escaped as "&gt;"), ASCII whitespace stripped. */
static span device_name(span device) {
    span out = {device.p, 0};
    if (device.p == NULL) return out;
    const char *end = device.p + device.n;
    const char *at = NULL;
    for (const char *p = device.p; p + 5 <= end; p++) {
        if (memcmp(p, "name:", 5) == 0) {
            at = p + 5;
            break;
        }
    }
    if (at == NULL) return out;
    const char *stop = at;
    while (stop < end && *stop != ',' && *stop != '>' && !starts(stop, end, "&gt;", 4)) stop++;
    while (at < stop && (is_ws(*at) || *at == '\x0b' || *at == '\x0c')) at++;
    while (stop > at && (is_ws(stop[-1]) || stop[-1] == '\x0b' || stop[-1] == '\x0c')) stop--;
    out.p = at;
    out.n = stop - at;
    return out;
}

static const int month_days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (m + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Apple's "2023-11-05 08:10:00 -0800", exactly 25 bytes; 0 if it is anything else. */
static int parse_date(span s, int64_t *ms, int16_t *offset) {
    static const int digits[] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 21, 22, 23, 24};
    if (s.p == NULL || s.n != 25) return 0;
    const unsigned char *a = (const unsigned char *)s.p;
    if (a[4] != '-' || a[7] != '-' || a[10] != ' ' || a[13] != ':' || a[16] != ':' || a[19] != ' ')
        return 0;
    if (a[20] != '+' && a[20] != '-') return 0;
    for (size_t i = 0; i < sizeof(digits) / sizeof(digits[0]); i++)
        if ((unsigned)(a[digits[i]] - '0') > 9) return 0;
#define D(i) ((int64_t)(a[i] - '0'))
    int64_t year = D(0) * 1000 + D(1) * 100 + D(2) * 10 + D(3);
    int64_t month = D(5) * 10 + D(6);
    int64_t day = D(8) * 10 + D(9);
    int64_t hour = D(11) * 10 + D(12);
    int64_t minute = D(14) * 10 + D(15);
    int64_t second = D(17) * 10 + D(18);
    int64_t off_h = D(21) * 10 + D(22);
    int64_t off_m = D(23) * 10 + D(24);
#undef D
    if (month < 1 || month > 12 || year < 1) return 0;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    int64_t limit = month_days[month] + (month == 2 && leap);
    if (day < 1 || day > limit) return 0;
    if (hour > 23 || minute > 59 || second > 59 || off_m > 59) return 0;
    int64_t off = off_h * 60 + off_m;
    if (off >= 24 * 60) return 0;
    if (a[20] == '-') off = -off;
    int64_t days = days_from_civil(year, month, day);
    *ms = (days * 86400 + hour * 3600 + minute * 60 + second - off * 60) * 1000;
    *offset = (int16_t)off;
    return 1;
}

/* A plain decimal ("-12", "0.5", ".5", "5.", "1e-3"); 0 for anything else. */
static int parse_value(span s, double *out) {
    char buf[64];
    if (s.p == NULL || s.n == 0 || s.n >= (Py_ssize_t)sizeof(buf)) return 0;
    const char *p = s.p, *end = s.p + s.n;
    if (*p == '-' || *p == '+') p++;
    Py_ssize_t int_digits = 0, frac_digits = 0;
    while (p < end && (unsigned)(*p - '0') <= 9) p++, int_digits++;
    if (p < end && *p == '.') {
        p++;
        while (p < end && (unsigned)(*p - '0') <= 9) p++, frac_digits++;
    }
    if (int_digits + frac_digits == 0) return 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '-' || *p == '+')) p++;
        Py_ssize_t exp_digits = 0;
        while (p < end && (unsigned)(*p - '0') <= 9) p++, exp_digits++;
        if (exp_digits == 0) return 0;
    }
    if (p != end) return 0;
    memcpy(buf, s.p, (size_t)s.n);
    buf[s.n] = '\0';
    char *stop = NULL;
    *out = strtod_l(buf, &stop, c_locale);
    return stop == buf + s.n;
}

static uint64_t fnv(uint64_t h, span s) {
    for (Py_ssize_t i = 0; i < s.n; i++) {
        h ^= (unsigned char)s.p[i];
        h *= 1099511628211ULL;
    }
    h ^= 0xff; /* a separator: ("ab", "c") differs from ("a", "bc") */
    h *= 1099511628211ULL;
    return h;
}

static int span_eq(span a, span b) { return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, (size_t)a.n) == 0); }

/* Double the capacity of a set of columns that grow together; 0 when out of memory
 * (arrays already moved stay valid and are freed by release()). */
#define GROW(field, cap) \
    do { \
        void *moved_ = realloc(r->field, (size_t)(cap) * sizeof(*r->field)); \
        if (moved_ == NULL) return 0; \
        r->field = moved_; \
    } while (0)

static int grow_rows(result *r) {
    Py_ssize_t cap = r->cap ? r->cap * 2 : 1024;
    GROW(key_idx, cap);
    GROW(ordinal, cap);
    GROW(start_ms, cap);
    GROW(end_ms, cap);
    GROW(offset_min, cap);
    GROW(value, cap);
    r->cap = cap;
    return 1;
}

static int grow_keys(result *r) {
    Py_ssize_t cap = r->keys_cap ? r->keys_cap * 2 : 64;
    GROW(keys, cap);
    r->keys_cap = cap;
    return 1;
}

static int grow_odd(result *r) {
    Py_ssize_t cap = r->odd_cap ? r->odd_cap * 2 : 64;
    GROW(odd_ordinal, cap);
    GROW(odd_spans, cap * 7);
    r->odd_cap = cap;
    return 1;
}

static int32_t key_id(result *r, span type, span source, span device, span unit) {
    if (r->n_keys * 2 >= r->table_cap) {
        Py_ssize_t cap = r->table_cap ? r->table_cap * 2 : 64;
        key_slot *table = calloc((size_t)cap, sizeof(key_slot));
        int32_t *ids = calloc((size_t)cap, sizeof(int32_t));
        if (table == NULL || ids == NULL) {
            free(table);
            free(ids);
            r->nomem = 1;
            return -1;
        }
        for (Py_ssize_t i = 0; i < r->table_cap; i++) {
            if (!r->table[i].used) continue;
            Py_ssize_t j = (Py_ssize_t)(r->table[i].hash & (uint64_t)(cap - 1));
            while (table[j].used) j = (j + 1) & (cap - 1);
            table[j] = r->table[i];
            ids[j] = r->table_ids[i];
        }
        free(r->table);
        free(r->table_ids);
        r->table = table;
        r->table_ids = ids;
        r->table_cap = cap;
    }
    uint64_t h = fnv(fnv(fnv(fnv(14695981039346656037ULL, type), source), device), unit);
    Py_ssize_t j = (Py_ssize_t)(h & (uint64_t)(r->table_cap - 1));
    while (r->table[j].used) {
        key_slot *k = &r->table[j];
        if (k->hash == h && span_eq(k->type, type) && span_eq(k->source, source)
            && span_eq(k->device, device) && span_eq(k->unit, unit))
            return r->table_ids[j];
        j = (j + 1) & (r->table_cap - 1);
    }
    if (r->n_keys == r->keys_cap && !grow_keys(r)) {
        r->nomem = 1;
        return -1;
    }
    key_slot k = {type, source, device, unit, h, 1};
    r->table[j] = k;
    r->table_ids[j] = (int32_t)r->n_keys;
    r->keys[r->n_keys] = k;
    return (int32_t)r->n_keys++;
}

/* One Record starting at p ("<Record" already checked). Returns the position past
 * it, or NULL when the scanner does not handle it (the caller stops there). */
static const char *record(result *r, const char *p, const char *end, int32_t ordinal) {
    span a[A_COUNT];
    memset(a, 0, sizeof(a));
    int closed = 0;
    const char *q = read_attrs(p + 7, end, a, &closed);
    if (q == NULL) return NULL;
    if (!closed) {
        for (;;) {
            q = memchr(q, '<', (size_t)(end - q));
            if (q == NULL) return NULL;
            if (starts(q, end, "</Record", 8)) {
                q = skip_ws(q + 8, end);
                if (q >= end || *q != '>') return NULL;
                q++;
                break;
            }
            if (!tag_is(q, end, "<MetadataEntry", 14)) return NULL;
            int child_closed = 0;
            q = read_attrs(q + 14, end, NULL, &child_closed);
            if (q == NULL || !child_closed) return NULL;
        }
    }
    span source = a[A_SOURCE_NAME].n > 0 ? a[A_SOURCE_NAME] : a[A_SOURCE];
    span device = device_name(a[A_DEVICE]);
    span end_date = a[A_END].p != NULL ? a[A_END] : a[A_START];
    int64_t start_ms = 0, end_ms = 0;
    int16_t offset = 0, end_offset = 0;
    double value = 0.0;
    if (parse_date(a[A_START], &start_ms, &offset) && parse_date(end_date, &end_ms, &end_offset)
        && parse_value(a[A_VALUE], &value)) {
        int32_t id = key_id(r, a[A_TYPE], source, device, a[A_UNIT]);
        if (id < 0) return NULL;
        if (r->rows == r->cap && !grow_rows(r)) {
            r->nomem = 1;
            return NULL;
        }
        Py_ssize_t i = r->rows++;
        r->key_idx[i] = id;
        r->ordinal[i] = ordinal;
        r->start_ms[i] = start_ms;
        r->end_ms[i] = end_ms;
        r->offset_min[i] = offset;
        r->value[i] = value;
    } else {
        if (r->odd_rows == r->odd_cap && !grow_odd(r)) {
            r->nomem = 1;
            return NULL;
        }
        span *s = &r->odd_spans[r->odd_rows * 7];
        s[0] = a[A_TYPE];
        s[1] = source;
        s[2] = device;
        s[3] = a[A_UNIT];
        s[4] = a[A_START];
        s[5] = end_date;
        s[6] = a[A_VALUE];
        r->odd_ordinal[r->odd_rows++] = ordinal;
    }
    return q;
}

static void release(result *r) {
    free(r->key_idx);
    free(r->ordinal);
    free(r->start_ms);
    free(r->end_ms);
    free(r->offset_min);
    free(r->value);
    free(r->odd_ordinal);
    free(r->odd_spans);
    free(r->table);
    free(r->table_ids);
    free(r->keys);
}

static PyObject *span_bytes(span s) {
    return PyBytes_FromStringAndSize(s.p != NULL ? s.p : "", s.p != NULL ? s.n : 0);
}

static PyObject *column(const void *data, Py_ssize_t n, size_t size) {
    return PyBytes_FromStringAndSize(n ? (const char *)data : "", n * (Py_ssize_t)size);
}

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*n", &view, &pos)) return NULL;
    if (pos < 0 || pos > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "position outside the data");
        return NULL;
    }
    result r;
    memset(&r, 0, sizeof(r));
    const char *base = view.buf;
    const char *end = base + view.len;
    const char *p = base + pos;
    int32_t count = 0;
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        p = memchr(p, '<', (size_t)(end - p));
        if (p == NULL) {
            p = end;
            break;
        }
        if (!tag_is(p, end, "<Record", 7) || count == INT32_MAX) break;
        const char *next = record(&r, p, end, count);
        if (next == NULL) break;
        count++;
        p = next;
    }
    Py_END_ALLOW_THREADS
    PyObject *out = NULL, *keys = NULL, *odd = NULL;
    if (r.nomem) {
        PyErr_NoMemory();
        goto done;
    }
    keys = PyList_New(r.n_keys);
    odd = PyList_New(r.odd_rows);
    if (keys == NULL || odd == NULL) goto done;
    for (Py_ssize_t i = 0; i < r.n_keys; i++) {
        key_slot *k = &r.keys[i];
        PyObject *key = Py_BuildValue("(NNNN)", span_bytes(k->type), span_bytes(k->source),
                                      span_bytes(k->device), span_bytes(k->unit));
        if (key == NULL) goto done;
        PyList_SET_ITEM(keys, i, key);
    }
    for (Py_ssize_t i = 0; i < r.odd_rows; i++) {
        span *s = &r.odd_spans[i * 7];
        PyObject *row = Py_BuildValue("(iNNNNNNN)", r.odd_ordinal[i], span_bytes(s[0]),
                                      span_bytes(s[1]), span_bytes(s[2]), span_bytes(s[3]),
                                      span_bytes(s[4]), span_bytes(s[5]), span_bytes(s[6]));
        if (row == NULL) goto done;
        PyList_SET_ITEM(odd, i, row);
    }
    out = Py_BuildValue("(niONNNNNNO)", (Py_ssize_t)(p - base), count, keys,
                        column(r.key_idx, r.rows, sizeof(int32_t)),
                        column(r.ordinal, r.rows, sizeof(int32_t)),
                        column(r.start_ms, r.rows, sizeof(int64_t)),
                        column(r.end_ms, r.rows, sizeof(int64_t)),
                        column(r.offset_min, r.rows, sizeof(int16_t)),
                        column(r.value, r.rows, sizeof(double)), odd);
done:
    Py_XDECREF(keys);
    Py_XDECREF(odd);
    release(&r);
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(data, pos) -> (stop, records, keys, key_idx, ordinal, start_ms, end_ms, "
     "offset_min, values, odd): plain <Record>s from pos on; see the module source."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_apple_fast",
    "Native scanner for runs of plain <Record> elements (see _apple_scan.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__apple_fast(void) {
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0) return PyErr_NoMemory();
    return PyModule_Create(&module);
}
