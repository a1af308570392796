/* The relay's optional native row codec: a pgoutput TupleData to the JSON of the row
 * (the envelope's "after") and of its key, byte for byte as the pure-Python fast path
 * (fast_encoder.py) and the reference (envelope.py + orjson) write them.
 *
 * Built by `python3 bootstrap.py setup` when a C compiler and the Python headers exist
 * (ingestion/cdc/rowcodec_build.py); without it the relay uses the pure-Python fast path.
 *
 * encode(spec, data, pos, value_pieces, key_pieces, lsn, now_us) -> (key, value) | None
 *
 * The value is the transaction's envelope template, value_pieces (7 bytes, made by
 * fast_encoder from the reference envelope), around: the row, the LSN, the LSN, ts_ms, ts_us,
 * ts_ns. The key is the key columns' JSON object, between key_pieces (2 bytes: the
 * schemas.enable wrapper) when there are any, or None for a table without a key.
 *
 * spec, made once per table shape by fast_encoder.native_spec():
 *   (kinds, prefixes, nulls, converters, key_index, key_prefixes, dumps)
 *   kinds        bytes, one per column: 'i' integer, 's' text kept as is, 'b' boolean,
 *                'z' timestamptz (ZonedTimestamp), 'p' any other (Python converter)
 *   prefixes     tuple of bytes: '{"name":' for the first column, ',"name":' for the others
 *   nulls        tuple of bytes: the JSON of the value for NULL (the NOT NULL fallback or null)
 *   converters   tuple: the column's Python converter (or None for text)
 *   key_index    tuple of int: the key's columns
 *   key_prefixes tuple of bytes, as prefixes, for the key's columns
 *   dumps        orjson.dumps
 *
 * None means "take the reference path": an unchanged TOAST value, a column count or kind the
 * shape does not expect, text that is not UTF-8, or a converter that refuses the value
 * (typemap.CONVERSION_ERRORS, as the Python fast path). Columns whose conversion
 * has no C path here call their Python converter and dumps, so the output stays exact.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <string.h>

#ifndef ROWCODEC_SOURCE_HASH
#define ROWCODEC_SOURCE_HASH "unknown"
#endif

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
    char inline_buf[2048];
} Buf;

static void buf_init(Buf *b) {
    b->data = b->inline_buf;
    b->len = 0;
    b->cap = sizeof(b->inline_buf);
}

static void buf_free(Buf *b) {
    if (b->data != b->inline_buf) PyMem_Free(b->data);
}

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap * 2;
    while (cap < b->len + extra) cap *= 2;
    char *data;
    if (b->data == b->inline_buf) {
        data = PyMem_Malloc(cap);
        if (data) memcpy(data, b->inline_buf, b->len);
    } else {
        data = PyMem_Realloc(b->data, cap);
    }
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const char *s, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static int buf_put_bytes(Buf *b, PyObject *bytes) {
    return buf_put(b, PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
}

/* UTF-8 as CPython's strict decoder accepts it (no overlong forms, no surrogates, nothing
 * above U+10FFFF): 0 when all of s[0:n] is well formed, -1 otherwise. */
static int utf8_check(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return -1;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            unsigned char lo = 0x80, hi = 0xBF;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F; /* no surrogates */
            if (i + 2 >= n || s[i + 1] < lo || s[i + 1] > hi || (s[i + 2] & 0xC0) != 0x80)
                return -1;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            unsigned char lo = 0x80, hi = 0xBF;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
            if (i + 3 >= n || s[i + 1] < lo || s[i + 1] > hi || (s[i + 2] & 0xC0) != 0x80 ||
                (s[i + 3] & 0xC0) != 0x80)
                return -1;
            i += 4;
        } else {
            return -1;
        }
    }
    return 0;
}

static const char HEX[] = "0123456789abcdef";

/* A JSON string as orjson writes it: '"' and '\' escaped, \b \t \n \f \r short, the other
 * control characters as \u00xx, everything else (DEL and non-ASCII included) as is. The
 * caller has checked that s is UTF-8. */
static int put_json_string(Buf *b, const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t extra = 0; /* what the escapes add: 1 for a short one, 5 for \u00xx */
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c < 0x20)
            extra += (c == '\b' || c == '\t' || c == '\n' || c == '\f' || c == '\r') ? 1 : 5;
        else if (c == '"' || c == '\\')
            extra += 1;
    }
    if (buf_reserve(b, n + extra + 2) < 0) return -1;
    char *out = b->data + b->len;
    *out++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\t': *out++ = 't'; break;
        case '\n': *out++ = 'n'; break;
        case '\f': *out++ = 'f'; break;
        case '\r': *out++ = 'r'; break;
        default:
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = HEX[c >> 4];
            *out++ = HEX[c & 15];
        }
    }
    *out++ = '"';
    b->len = out - b->data;
    return 0;
}

/* PostgreSQL's canonical integer text, which int() then orjson write unchanged. */
static int canonical_int(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    if (n > 0 && s[0] == '-') i = 1;
    Py_ssize_t digits = n - i;
    if (digits < 1 || digits > 19) return 0;
    if (s[i] == '0' && (digits > 1 || i == 1)) return 0; /* leading zero, "-0" */
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* _zoned_timestamp's fast path ('2026-11-22 00:35:09.1230+00' -> '2026-11-22T00:35:09.123Z')
 * into out (at least n bytes); returns the length, or -1 when the text needs the converter. */
static Py_ssize_t zoned_fast(const unsigned char *s, Py_ssize_t n, char *out) {
    if (n < 22 || s[10] != ' ' || s[n - 3] != '+' || s[n - 2] != '0' || s[n - 1] != '0')
        return -1;
    for (Py_ssize_t i = 0; i < n; i++)
        if (s[i] >= 0x80) return -1;
    Py_ssize_t body = n - 3;
    if (memchr(s, '.', body)) {
        while (body > 0 && s[body - 1] == '0') body--; /* rstrip("0") */
        while (body > 0 && s[body - 1] == '.') body--; /* rstrip(".") */
    }
    if (body < 11) return -1; /* body[:10] + 'T' + body[11:] would differ; let Python do it */
    memcpy(out, s, 10);
    out[10] = 'T';
    memcpy(out + 11, s + 11, body - 11);
    out[body] = 'Z';
    return body + 1;
}

/* The converter's value through dumps, appended; 1 = appended, 0 = fall back, -1 = error. */
static int put_converted(Buf *b, PyObject *convert, PyObject *dumps, const char *s,
                         Py_ssize_t n) {
    PyObject *text = PyUnicode_DecodeUTF8(s, n, NULL);
    PyObject *value = NULL, *json = NULL;
    int result = -1;
    if (!text) goto done;
    if (convert == Py_None) {
        value = text;
        Py_INCREF(value);
    } else {
        value = PyObject_CallOneArg(convert, text);
        if (!value) goto done;
    }
    json = PyObject_CallOneArg(dumps, value);
    if (!json) goto done;
    if (!PyBytes_Check(json)) {
        PyErr_SetString(PyExc_TypeError, "dumps must return bytes");
        goto done;
    }
    result = buf_put_bytes(b, json) < 0 ? -1 : 1;
done:
    Py_XDECREF(text);
    Py_XDECREF(value);
    Py_XDECREF(json);
    if (result < 0 && (PyErr_ExceptionMatches(PyExc_ValueError) || /* CONVERSION_ERRORS */
                       PyErr_ExceptionMatches(PyExc_TypeError) ||
                       PyErr_ExceptionMatches(PyExc_OverflowError) ||
                       PyErr_ExceptionMatches(PyExc_IndexError))) {
        PyErr_Clear();
        return 0;
    }
    return result;
}

static Py_ssize_t put_u64(char *out, unsigned long long v) {
    char tmp[24];
    Py_ssize_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (Py_ssize_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

static inline uint32_t read_u32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

#define MAX_COLUMNS 1664 /* PostgreSQL's own limit is 1664 target columns */

static PyObject *encode(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 7 || !PyTuple_Check(args[0]) || PyTuple_GET_SIZE(args[0]) != 7 ||
        !PyBytes_Check(args[1]) || !PyTuple_Check(args[3]) || PyTuple_GET_SIZE(args[3]) != 7 ||
        (args[4] != Py_None && (!PyTuple_Check(args[4]) || PyTuple_GET_SIZE(args[4]) != 2))) {
        PyErr_SetString(PyExc_TypeError, "encode(spec: tuple, data: bytes, pos: int, "
                        "value_pieces: 7 bytes, key_pieces: 2 bytes | None, lsn: int, "
                        "now_us: int)");
        return NULL;
    }
    PyObject *value_pieces = args[3], *key_pieces = args[4];
    for (int p = 0; p < 7; p++)
        if (!PyBytes_Check(PyTuple_GET_ITEM(value_pieces, p))) {
            PyErr_SetString(PyExc_TypeError, "value_pieces must be bytes");
            return NULL;
        }
    if (key_pieces != Py_None && (!PyBytes_Check(PyTuple_GET_ITEM(key_pieces, 0)) ||
                                  !PyBytes_Check(PyTuple_GET_ITEM(key_pieces, 1)))) {
        PyErr_SetString(PyExc_TypeError, "key_pieces must be bytes");
        return NULL;
    }
    unsigned long long lsn = PyLong_AsUnsignedLongLong(args[5]);
    if (lsn == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    long long now_us = PyLong_AsLongLong(args[6]);
    if (now_us == -1 && PyErr_Occurred()) return NULL;
    if (now_us < 0 || now_us > LLONG_MAX / 1000) {
        PyErr_SetString(PyExc_OverflowError, "now_us out of range");
        return NULL;
    }
    PyObject *spec = args[0];
    PyObject *kinds = PyTuple_GET_ITEM(spec, 0), *prefixes = PyTuple_GET_ITEM(spec, 1);
    PyObject *nulls = PyTuple_GET_ITEM(spec, 2), *converters = PyTuple_GET_ITEM(spec, 3);
    PyObject *key_index = PyTuple_GET_ITEM(spec, 4), *key_prefixes = PyTuple_GET_ITEM(spec, 5);
    PyObject *dumps = PyTuple_GET_ITEM(spec, 6);
    Py_ssize_t pos = PyLong_AsSsize_t(args[2]);
    if (pos == -1 && PyErr_Occurred()) return NULL;
    if (!PyBytes_Check(kinds) || !PyTuple_Check(prefixes) || !PyTuple_Check(nulls) ||
        !PyTuple_Check(converters) || !PyTuple_Check(key_index) ||
        !PyTuple_Check(key_prefixes)) {
        PyErr_SetString(PyExc_TypeError, "malformed row codec spec");
        return NULL;
    }
    Py_ssize_t count = PyBytes_GET_SIZE(kinds);
    if (count > MAX_COLUMNS || PyTuple_GET_SIZE(prefixes) != count ||
        PyTuple_GET_SIZE(nulls) != count || PyTuple_GET_SIZE(converters) != count) {
        PyErr_SetString(PyExc_ValueError, "row codec spec: columns do not match");
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[1]);
    const char *kind = PyBytes_AS_STRING(kinds);
    if (pos < 0 || pos + 2 > size || ((data[pos] << 8) | data[pos + 1]) != count)
        Py_RETURN_NONE;
    pos += 2;

    Py_ssize_t starts[MAX_COLUMNS], ends[MAX_COLUMNS];
    Buf row;
    buf_init(&row);
    PyObject *result = NULL;
    char zoned[64];
    for (Py_ssize_t i = 0; i < count; i++) {
        if (buf_put_bytes(&row, PyTuple_GET_ITEM(prefixes, i)) < 0) goto error;
        starts[i] = row.len;
        if (pos >= size) goto fallback;
        unsigned char tag = data[pos];
        if (tag == 'n') {
            if (buf_put_bytes(&row, PyTuple_GET_ITEM(nulls, i)) < 0) goto error;
            pos += 1;
            ends[i] = row.len;
            continue;
        }
        if (tag != 't' || pos + 5 > size) goto fallback; /* 'u' unchanged TOAST, 'b' binary */
        Py_ssize_t n = read_u32(data + pos + 1);
        const unsigned char *s = data + pos + 5;
        if (pos + 5 + n > size) goto fallback;
        pos += 5 + n;
        int done = 0;
        switch (kind[i]) {
        case 'i':
            if (canonical_int(s, n)) {
                if (buf_put(&row, (const char *)s, n) < 0) goto error;
                done = 1;
            }
            break;
        case 's':
            if (utf8_check(s, n) < 0) goto fallback;
            if (put_json_string(&row, s, n) < 0) goto error;
            done = 1;
            break;
        case 'b':
            if (n == 1 && s[0] == 't') {
                if (buf_put(&row, "true", 4) < 0) goto error;
                done = 1;
            } else if (n == 1 && s[0] == 'f') {
                if (buf_put(&row, "false", 5) < 0) goto error;
                done = 1;
            }
            break;
        case 'z':
            if (n < (Py_ssize_t)sizeof(zoned)) {
                Py_ssize_t m = zoned_fast(s, n, zoned);
                if (m >= 0) {
                    if (put_json_string(&row, (const unsigned char *)zoned, m) < 0) goto error;
                    done = 1;
                }
            }
            break;
        default:
            break;
        }
        if (!done) {
            int put = put_converted(&row, PyTuple_GET_ITEM(converters, i), dumps,
                                    (const char *)s, n);
            if (put < 0) goto error;
            if (put == 0) goto fallback;
        }
        ends[i] = row.len;
    }
    if (buf_put(&row, count ? "}" : "{}", count ? 1 : 2) < 0) goto error;

    /* the key: its columns' JSON, in its template when there is one */
    Buf kb;
    buf_init(&kb);
    Py_ssize_t key_count = PyTuple_GET_SIZE(key_index);
    if (key_count) {
        if (key_pieces != Py_None && buf_put_bytes(&kb, PyTuple_GET_ITEM(key_pieces, 0)) < 0)
            goto error_key;
        for (Py_ssize_t k = 0; k < key_count; k++) {
            Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(key_index, k));
            if (i < 0 || i >= count) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_ValueError, "row codec spec: key column out of range");
                goto error_key;
            }
            if (buf_put_bytes(&kb, PyTuple_GET_ITEM(key_prefixes, k)) < 0 ||
                buf_put(&kb, row.data + starts[i], ends[i] - starts[i]) < 0)
                goto error_key;
        }
        if (buf_put(&kb, "}", 1) < 0) goto error_key;
        if (key_pieces != Py_None && buf_put_bytes(&kb, PyTuple_GET_ITEM(key_pieces, 1)) < 0)
            goto error_key;
    }
    /* the value: the transaction's template pieces around the row, LSN, LSN, ms, us, ns */
    char numbers[5][24];
    Py_ssize_t number_len[5];
    number_len[0] = number_len[1] = put_u64(numbers[0], lsn);
    memcpy(numbers[1], numbers[0], number_len[0]);
    number_len[2] = put_u64(numbers[2], (unsigned long long)now_us / 1000); /* now_us >= 0 */
    number_len[3] = put_u64(numbers[3], (unsigned long long)now_us);
    number_len[4] = put_u64(numbers[4], (unsigned long long)now_us * 1000);
    Py_ssize_t total = row.len;
    for (int p = 0; p < 7; p++) total += PyBytes_GET_SIZE(PyTuple_GET_ITEM(value_pieces, p));
    for (int p = 0; p < 5; p++) total += number_len[p];
    PyObject *value = PyBytes_FromStringAndSize(NULL, total);
    if (!value) goto error_key;
    char *out = PyBytes_AS_STRING(value);
    for (int p = 0; p < 7; p++) {
        PyObject *piece = PyTuple_GET_ITEM(value_pieces, p);
        memcpy(out, PyBytes_AS_STRING(piece), PyBytes_GET_SIZE(piece));
        out += PyBytes_GET_SIZE(piece);
        if (p == 0) {
            memcpy(out, row.data, row.len);
            out += row.len;
        } else if (p < 6) {
            memcpy(out, numbers[p - 1], number_len[p - 1]);
            out += number_len[p - 1];
        }
    }
    PyObject *key = Py_None;
    if (key_count) {
        key = PyBytes_FromStringAndSize(kb.data, kb.len);
        if (!key) {
            Py_DECREF(value);
            goto error_key;
        }
    } else {
        Py_INCREF(key);
    }
    result = PyTuple_Pack(2, key, value);
    Py_DECREF(key);
    Py_DECREF(value);
    buf_free(&kb);
    buf_free(&row);
    return result;

error_key:
    buf_free(&kb);
    goto error;
fallback:
    buf_free(&row);
    Py_RETURN_NONE;
error:
    buf_free(&row);
    return NULL;
}

static PyMethodDef methods[] = {
    {"encode", (PyCFunction)(void (*)(void))encode, METH_FASTCALL,
     "encode(spec, data, pos, value_pieces, key_pieces, lsn, now_us) -> (key, value) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_rowcodec",
    .m_doc = "Native row codec of the CDC relay's fast path (see rowcodec.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__rowcodec(void) {
    PyObject *module = PyModule_Create(&module_def);
    if (module && PyModule_AddStringConstant(module, "SOURCE_HASH", ROWCODEC_SOURCE_HASH) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
