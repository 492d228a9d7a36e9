/* The record walk of one decompressed ETW buffer, in C (optional: parsers/etl/scan.py holds the
 * same walk in Python and is used when this module is not built).
 *
 * scan(data, start, end, table) walks the records from `start` up to `end` and returns
 * (records, stop, stop_at, stop_size):
 *   records   bytes, one 16-byte entry per record: u32 offset, u32 size, then the record's
 *             prefix words u16 TypeMarker, u16 Word3, u16 Word0, u16 Word2 (little endian);
 *   stop      0: the walk reached the end; 1: fill (zero or 0xFF bytes) where a record should
 *             start; 2: a record whose size does not fit (stop_size) at stop_at;
 * `table` holds 65536 little-endian u32, one per TypeMarker: where the kind keeps its size
 * (bits 16-17: 0 word 0, 1 word 2, 2 no ETW marker: a raw WNODE size or fill) and the smallest
 * size a valid record of it has (bits 0-15). The table is built from headers.py's WALK, so the
 * knowledge of header kinds stays in one place.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define ENTRY 16

static inline uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer data, table;
    Py_ssize_t start, end;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*", &data, &start, &end, &table))
        return NULL;
    if (table.len != 65536 * 4) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&table);
        PyErr_SetString(PyExc_ValueError, "table must hold 65536 u32 entries");
        return NULL;
    }
    if (end > data.len) end = data.len;
    if (start < 0) start = 0;
    const uint8_t *buf = (const uint8_t *)data.buf;
    const uint8_t *tab = (const uint8_t *)table.buf;
    Py_ssize_t room = end > start ? (end - start) / 8 + 1 : 1;
    uint8_t *out = (uint8_t *)PyMem_Malloc((size_t)room * ENTRY);
    if (out == NULL) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&table);
        return PyErr_NoMemory();
    }
    Py_ssize_t n = 0, off = start, stop_at = 0;
    long long stop_size = 0;
    int stop = 0;
    while (off + 8 <= end) {
        const uint8_t *p = buf + off;
        uint16_t w0 = u16(p), tm = u16(p + 2), w2 = u16(p + 4), w3 = u16(p + 6);
        const uint8_t *e = tab + (size_t)tm * 4;
        uint32_t entry = (uint32_t)e[0] | ((uint32_t)e[1] << 8) | ((uint32_t)e[2] << 16)
                         | ((uint32_t)e[3] << 24);
        uint32_t mode = (entry >> 16) & 3, smallest = entry & 0xFFFF;
        uint64_t size;
        if (mode == 1) {
            size = w2;
        } else if (mode == 2) {
            uint32_t m = (uint32_t)w0 | ((uint32_t)tm << 16);
            if (m == 0xFFFFFFFFu || m == 0) { stop = 1; stop_at = off; break; }
            size = (tm & 0x8000) == 0 ? m : 0;
        } else {
            size = w0;
        }
        if (size < smallest || (uint64_t)off + size > (uint64_t)end) {
            stop = 2; stop_at = off; stop_size = (long long)size;
            break;
        }
        uint8_t *o = out + n * ENTRY;
        put32(o, (uint32_t)off);
        put32(o + 4, (uint32_t)size);
        put16(o + 8, tm);
        put16(o + 10, w3);
        put16(o + 12, w0);
        put16(o + 14, w2);
        n++;
        off += (Py_ssize_t)((size + 7) & ~(uint64_t)7);
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&table);
    PyObject *records = PyBytes_FromStringAndSize((const char *)out, n * ENTRY);
    PyMem_Free(out);
    if (records == NULL) return NULL;
    return Py_BuildValue("(NinL)", records, stop, stop_at, stop_size);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "Walk the records of one buffer: (records, stop, at, size)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_walkc", "The ETW record walk in C (optional).", -1, methods,
};

PyMODINIT_FUNC PyInit__walkc(void) { return PyModule_Create(&module); }
