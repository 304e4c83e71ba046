/*
 * pygwire._chotpath: the compiled twin of pygwire/_hotpath.py.
 *
 * Why C against the CPython API and not Cython:
 *
 * - Building it takes a C compiler and Python's headers, nothing else:
 *   the build stays plain setuptools (setup.py only declares the optional
 *   extension), there is no build-time dependency to pin, and no generated
 *   file to keep in step with its source.  Cython would have to be a build
 *   requirement, or its multi-thousand-line output would be committed.
 * - The extension is optional: where no compiler is found, or the build
 *   fails, the package installs without it and runs the pure-Python
 *   reference.  pygwire keeps zero runtime dependencies either way.
 * - The functions are a few hundred lines of loops over a byte buffer;
 *   what matters is exact control over every bounds check, every
 *   reference and every error raised, which is plainest in C.
 *
 * The contract: each function behaves exactly like its namesake in
 * _hotpath.py (same results, same exception types, messages, arguments
 * and offsets, same updates to the FrameBuffer) for the arguments the
 * decoders pass: a ``bytes`` buffer with 0 <= start <= end <= len(buf),
 * ``int`` limits and offsets.  Outside that domain the Python code reads
 * wrapped-around or truncated windows; here it is refused with TypeError
 * or ValueError, and nothing is ever read outside the buffer.
 * tests/test_chotpath.py runs both versions side by side.
 *
 * What runs per chunk and per message is here: FrameBufferCore (the
 * receive buffer, which decode_frames reads and updates in place),
 * MessageQueue, drain (the receive loop, which calls into Python only for
 * messages that are not "steady"), and the DataRow parser and columns
 * descriptor, which fill and read the row's slots directly.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>
#include <structmember.h>

/* -- module state --------------------------------------------------------- */

typedef struct {
    PyObject *tuple_new;      /* tuple.__new__ */
    PyObject *str_buf;
    PyObject *str_pos;
    PyObject *str_ensure;
    PyTypeObject *FrameCoreType; /* FrameBufferCore */
    PyTypeObject *QueueType;     /* MessageQueue */
    PyTypeObject *DrainType;     /* what drain() returns */
    PyTypeObject *RowParserType; /* what data_row_parser() returns */
    PyTypeObject *RowColumnsType; /* what data_row_columns() returns */
    PyTypeObject *RowEncoderType; /* what data_row_to_wire() returns */
    PyTypeObject *RowMakerType;   /* what pgoutput_row_maker() returns */
    PyTypeObject *BoundaryMakerType; /* what pgoutput_boundary_maker() returns */
    PyTypeObject *StepperType;       /* what model_steppers() returns */
    Py_ssize_t max_message_length;
} State;

static inline State *
get_state(PyObject *module)
{
    return (State *)PyModule_GetState(module);
}

/* -- helpers -------------------------------------------------------------- */

static inline uint32_t
be_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint16_t
be_u16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* Two's complement without implementation-defined conversions. */
static inline int32_t
be_i32(const unsigned char *p)
{
    uint32_t u = be_u32(p);
    return u <= 0x7FFFFFFFu ? (int32_t)u : -(int32_t)(~u) - 1;
}

static inline int16_t
be_i16(const unsigned char *p)
{
    uint16_t u = be_u16(p);
    return u <= 0x7FFFu ? (int16_t)u : (int16_t)(-(int16_t)(uint16_t)~u - 1);
}

/*
 * Arguments as the Python functions take them: positional or by keyword.
 * Fills out[0..nmax) with borrowed references (NULL for an omitted
 * optional one).  The common call, all positional, costs a copy.
 */
static int
parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
           const char *const *names, Py_ssize_t nreq, Py_ssize_t nmax, PyObject **out)
{
    Py_ssize_t i, k, nkw;

    if (nargs > nmax) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd positional arguments but %zd were given",
                     fname, nmax, nargs);
        return -1;
    }
    for (i = 0; i < nmax; i++) {
        out[i] = i < nargs ? args[i] : NULL;
    }
    nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        for (i = 0; i < nmax; i++) {
            if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0) {
                break;
            }
        }
        if (i == nmax) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname,
                         key);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                         names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (i = 0; i < nreq; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname,
                         names[i]);
            return -1;
        }
    }
    return 0;
}

static inline Py_ssize_t
as_ssize(PyObject *obj)
{
    if (PyLong_CheckExact(obj)) {
        return PyLong_AsSsize_t(obj);
    }
    return PyNumber_AsSsize_t(obj, PyExc_OverflowError);
}

/* A ``bytes`` buffer and a window 0 <= start <= end <= len(buf) in it. */
static int
get_window(PyObject *const *a, const char *fname, Py_ssize_t *start, Py_ssize_t *end)
{
    if (!PyBytes_Check(a[0])) {
        PyErr_Format(PyExc_TypeError, "%s() needs a bytes buffer, not %.100s", fname,
                     Py_TYPE(a[0])->tp_name);
        return -1;
    }
    *start = as_ssize(a[1]);
    if (*start == -1 && PyErr_Occurred()) {
        return -1;
    }
    *end = as_ssize(a[2]);
    if (*end == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (*start < 0 || *start > *end || *end > PyBytes_GET_SIZE(a[0])) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): window %zd:%zd is not inside the %zd-byte buffer", fname, *start,
                     *end, PyBytes_GET_SIZE(a[0]));
        return -1;
    }
    return 0;
}

/* seq[i] as a new reference; lists without a call. */
static inline PyObject *
seq_item(PyObject *seq, Py_ssize_t i)
{
    if (PyList_CheckExact(seq) && i < PyList_GET_SIZE(seq)) {
        return Py_NewRef(PyList_GET_ITEM(seq, i));
    }
    return PySequence_GetItem(seq, i);
}



/*
 * ``fb.pos = pos`` while an exception is pending: the Python code does it
 * in an ``except`` clause.  If the assignment itself fails, its error
 * propagates with the first one as its context, as in Python.
 */
static void
set_pos_keeping_error(State *st, PyObject *fb, Py_ssize_t pos)
{
    PyObject *pos_obj;
    int rc = -1;
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException(), *exc2;

    pos_obj = PyLong_FromSsize_t(pos);
    if (pos_obj != NULL) {
        rc = PyObject_SetAttr(fb, st->str_pos, pos_obj);
        Py_DECREF(pos_obj);
    }
    if (rc == 0) {
        PyErr_SetRaisedException(exc);
        return;
    }
    exc2 = PyErr_GetRaisedException();
    PyException_SetContext(exc2, exc); /* steals exc */
    PyErr_SetRaisedException(exc2);
#else
    PyObject *type, *value, *tb, *type2, *value2, *tb2;

    PyErr_Fetch(&type, &value, &tb);
    pos_obj = PyLong_FromSsize_t(pos);
    if (pos_obj != NULL) {
        rc = PyObject_SetAttr(fb, st->str_pos, pos_obj);
        Py_DECREF(pos_obj);
    }
    if (rc == 0) {
        PyErr_Restore(type, value, tb);
        return;
    }
    PyErr_Fetch(&type2, &value2, &tb2);
    PyErr_NormalizeException(&type, &value, &tb);
    PyErr_NormalizeException(&type2, &value2, &tb2);
    if (value != NULL && tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    if (value2 != NULL && value != NULL) {
        PyException_SetContext(value2, value); /* steals value */
        value = NULL;
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    PyErr_Restore(type2, value2, tb2);
#endif
}

/* -- FrameBufferCore -------------------------------------------------------- */

/*
 * The receive buffer's state and the operations every fed chunk and every
 * batch run (feed, len, ensure); FrameBuffer in _hotpath.py derives from
 * this type and adds the rarely used ones in Python.  ``buf`` is always a
 * bytes object, 0 <= pos <= len(buf), and ``pending`` a bytearray.
 */
typedef struct {
    PyObject_HEAD
    PyObject *buf;     /* bytes */
    Py_ssize_t pos;
    PyObject *pending; /* bytearray: fed bytes not yet joined into buf */
} FrameCore;

static PyObject *
framecore_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    FrameCore *fb;

    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "FrameBuffer() takes no arguments");
        return NULL;
    }
    fb = (FrameCore *)type->tp_alloc(type, 0);
    if (fb == NULL) {
        return NULL;
    }
    fb->buf = PyBytes_FromStringAndSize(NULL, 0);
    fb->pending = PyByteArray_FromStringAndSize(NULL, 0);
    if (fb->buf == NULL || fb->pending == NULL) {
        Py_DECREF(fb);
        return NULL;
    }
    return (PyObject *)fb;
}

static void
framecore_dealloc(FrameCore *fb)
{
    PyTypeObject *type = Py_TYPE(fb);

    Py_XDECREF(fb->buf);
    Py_XDECREF(fb->pending);
    type->tp_free(fb);
    Py_DECREF(type);
}

static inline Py_ssize_t
framecore_size(FrameCore *fb)
{
    return PyBytes_GET_SIZE(fb->buf) - fb->pos + PyByteArray_GET_SIZE(fb->pending);
}

static Py_ssize_t
framecore_len(FrameCore *fb)
{
    return framecore_size(fb);
}

static PyObject *
framecore_feed(FrameCore *fb, PyObject *data)
{
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "feed() takes bytes, not %.100s", Py_TYPE(data)->tp_name);
        return NULL;
    }
    if (PyByteArray_GET_SIZE(fb->pending) == 0 && fb->pos == PyBytes_GET_SIZE(fb->buf)) {
        /* Everything so far was consumed: adopt the chunk as is. */
        Py_SETREF(fb->buf, Py_NewRef(data));
        fb->pos = 0;
    }
    else {
        Py_ssize_t have = PyByteArray_GET_SIZE(fb->pending);
        Py_ssize_t add = PyBytes_GET_SIZE(data);

        if (add > PY_SSIZE_T_MAX - have) {
            return PyErr_NoMemory();
        }
        if (PyByteArray_Resize(fb->pending, have + add) < 0) {
            return NULL;
        }
        memcpy(PyByteArray_AS_STRING(fb->pending) + have, PyBytes_AS_STRING(data), (size_t)add);
    }
    Py_RETURN_NONE;
}

/* Reset to empty; 0 or -1 with an exception (only on allocation failure). */
static int
framecore_reset(FrameCore *fb)
{
    PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
    PyObject *pending = PyByteArray_FromStringAndSize(NULL, 0);

    if (empty == NULL || pending == NULL) {
        Py_XDECREF(empty);
        Py_XDECREF(pending);
        return -1;
    }
    Py_SETREF(fb->buf, empty);
    Py_SETREF(fb->pending, pending);
    fb->pos = 0;
    return 0;
}

static PyObject *
framecore_clear(FrameCore *fb, PyObject *Py_UNUSED(ignored))
{
    if (framecore_reset(fb) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* buf[pos:] + pending as one new bytes object. */
static PyObject *
framecore_joined(FrameCore *fb)
{
    Py_ssize_t head = PyBytes_GET_SIZE(fb->buf) - fb->pos;
    Py_ssize_t tail = PyByteArray_GET_SIZE(fb->pending);
    PyObject *out = PyBytes_FromStringAndSize(NULL, head + tail);

    if (out != NULL) {
        memcpy(PyBytes_AS_STRING(out), PyBytes_AS_STRING(fb->buf) + fb->pos, (size_t)head);
        memcpy(PyBytes_AS_STRING(out) + head, PyByteArray_AS_STRING(fb->pending), (size_t)tail);
    }
    return out;
}

static PyObject *
framecore_take(FrameCore *fb, PyObject *Py_UNUSED(ignored))
{
    PyObject *data = framecore_joined(fb);

    if (data == NULL || framecore_reset(fb) < 0) {
        Py_XDECREF(data);
        return NULL;
    }
    return data;
}

/* 1 if buf[pos:pos+n] is available (joining pending into buf if need
 * be), 0 if fewer than n bytes are buffered, -1 with an exception. */
static int
framecore_ensure_n(FrameCore *fb, long long n)
{
    Py_ssize_t avail = PyBytes_GET_SIZE(fb->buf) - fb->pos;
    PyObject *joined, *pending;

    if ((long long)avail >= n) {
        return 1;
    }
    if ((long long)avail + (long long)PyByteArray_GET_SIZE(fb->pending) < n) {
        return 0;
    }
    joined = framecore_joined(fb);
    /* A new bytearray: resizing the old one to 0 may keep its capacity. */
    pending = joined == NULL ? NULL : PyByteArray_FromStringAndSize(NULL, 0);
    if (pending == NULL) {
        Py_XDECREF(joined);
        return -1;
    }
    Py_SETREF(fb->buf, joined);
    Py_SETREF(fb->pending, pending);
    fb->pos = 0;
    return 1;
}

static PyObject *
framecore_ensure(FrameCore *fb, PyObject *arg)
{
    long long n;
    int rc;

    if (!PyLong_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "ensure() takes an int, not %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    n = PyLong_AsLongLong(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    rc = framecore_ensure_n(fb, n);
    if (rc < 0) {
        return NULL;
    }
    return PyBool_FromLong(rc);
}

static PyObject *
framecore_get_buf(FrameCore *fb, void *Py_UNUSED(closure))
{
    return Py_NewRef(fb->buf);
}

static int
framecore_set_buf(FrameCore *fb, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL || !PyBytes_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "FrameBuffer.buf must be bytes");
        return -1;
    }
    Py_SETREF(fb->buf, Py_NewRef(value));
    if (fb->pos > PyBytes_GET_SIZE(value)) {
        fb->pos = PyBytes_GET_SIZE(value);
    }
    return 0;
}

static PyObject *
framecore_get_pos(FrameCore *fb, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(fb->pos);
}

static int
framecore_set_pos(FrameCore *fb, PyObject *value, void *Py_UNUSED(closure))
{
    Py_ssize_t pos;

    if (value == NULL || !PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "FrameBuffer.pos must be an int");
        return -1;
    }
    pos = PyLong_AsSsize_t(value);
    if (pos == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (pos < 0 || pos > PyBytes_GET_SIZE(fb->buf)) {
        PyErr_Format(PyExc_ValueError, "FrameBuffer.pos %zd is outside the %zd-byte buffer", pos,
                     PyBytes_GET_SIZE(fb->buf));
        return -1;
    }
    fb->pos = pos;
    return 0;
}

static PyObject *
framecore_get_pending(FrameCore *fb, void *Py_UNUSED(closure))
{
    return Py_NewRef(fb->pending);
}

static PyMethodDef framecore_methods[] = {
    {"feed", (PyCFunction)framecore_feed, METH_O, "feed(data)\n--\n\nBuffer a fed chunk."},
    {"clear", (PyCFunction)framecore_clear, METH_NOARGS, "clear()\n--\n\nDrop every byte."},
    {"take", (PyCFunction)framecore_take, METH_NOARGS,
     "take()\n--\n\nRemove and return every buffered byte."},
    {"ensure", (PyCFunction)framecore_ensure, METH_O,
     "ensure(n)\n--\n\nMake buf[pos:pos+n] available if n bytes are buffered."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef framecore_getset[] = {
    {"buf", (getter)framecore_get_buf, (setter)framecore_set_buf, "The joined bytes.", NULL},
    {"pos", (getter)framecore_get_pos, (setter)framecore_set_pos, "The read position in buf.",
     NULL},
    {"pending", (getter)framecore_get_pending, NULL, "Fed bytes not yet joined into buf.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot framecore_slots[] = {
    {Py_tp_new, framecore_new},
    {Py_tp_dealloc, framecore_dealloc},
    {Py_tp_methods, framecore_methods},
    {Py_tp_getset, framecore_getset},
    {Py_sq_length, framecore_len},
    {Py_tp_doc, "The receive buffer's state and its per-chunk operations."},
    {0, NULL},
};

static PyType_Spec framecore_spec = {
    .name = "pygwire._chotpath.FrameBufferCore",
    .basicsize = sizeof(FrameCore),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = framecore_slots,
};

/* -- MessageQueue ---------------------------------------------------------- */

/*
 * Decoded messages and their wire sizes in two parallel arrays; items
 * [head, tail) are queued.  decode_frames pushes and drain pops without
 * a call through Python.  Emptied, the arrays are reused from the start.
 */
typedef struct {
    PyObject_HEAD
    PyObject **items;
    Py_ssize_t *sizes;
    Py_ssize_t head, tail, cap;
} Queue;

/* Append msg (a reference is stolen, also on failure). */
static int
queue_push(Queue *q, PyObject *msg, Py_ssize_t size)
{
    if (q->tail == q->cap) {
        Py_ssize_t n = q->tail - q->head;

        if (q->head > 0 && n <= q->cap / 2) {
            /* Half or more is free at the front: slide down (amortised). */
            memmove(q->items, q->items + q->head, (size_t)n * sizeof(PyObject *));
            memmove(q->sizes, q->sizes + q->head, (size_t)n * sizeof(Py_ssize_t));
            q->head = 0;
            q->tail = n;
        }
        else {
            Py_ssize_t cap = q->cap ? q->cap * 2 : 64;
            PyObject **items;
            Py_ssize_t *sizes;

            if (cap > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(PyObject *)) {
                Py_DECREF(msg);
                PyErr_NoMemory();
                return -1;
            }
            items = PyMem_Realloc(q->items, (size_t)cap * sizeof(PyObject *));
            if (items == NULL) {
                Py_DECREF(msg);
                PyErr_NoMemory();
                return -1;
            }
            q->items = items;
            sizes = PyMem_Realloc(q->sizes, (size_t)cap * sizeof(Py_ssize_t));
            if (sizes == NULL) {
                Py_DECREF(msg);
                PyErr_NoMemory();
                return -1;
            }
            q->sizes = sizes;
            q->cap = cap;
        }
    }
    q->items[q->tail] = msg;
    q->sizes[q->tail] = size;
    q->tail++;
    return 0;
}

/* The oldest message (a new reference), or NULL if the queue is empty. */
static inline PyObject *
queue_pop(Queue *q)
{
    PyObject *msg;

    if (q->head == q->tail) {
        return NULL;
    }
    msg = q->items[q->head];
    q->items[q->head++] = NULL;
    if (q->head == q->tail) {
        q->head = q->tail = 0;
        if (q->cap > 4096) {
            /* A burst is over: do not keep its arrays for ever. */
            PyMem_Free(q->items);
            PyMem_Free(q->sizes);
            q->items = NULL;
            q->sizes = NULL;
            q->cap = 0;
        }
    }
    return msg;
}

static void
queue_drop_all(Queue *q)
{
    /* Detach first: a message's finaliser may touch the queue. */
    PyObject **items = q->items;
    Py_ssize_t head = q->head, tail = q->tail;

    q->items = NULL;
    q->head = q->tail = q->cap = 0;
    PyMem_Free(q->sizes);
    q->sizes = NULL;
    for (; head < tail; head++) {
        Py_XDECREF(items[head]);
    }
    PyMem_Free(items);
}

static PyObject *
queue_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "MessageQueue() takes no arguments");
        return NULL;
    }
    return type->tp_alloc(type, 0); /* zeroed: empty, no arrays */
}

static int
queue_traverse(Queue *q, visitproc visit, void *arg)
{
    Py_ssize_t i;

    Py_VISIT(Py_TYPE(q));
    for (i = q->head; i < q->tail; i++) {
        Py_VISIT(q->items[i]);
    }
    return 0;
}

static int
queue_clear_refs(Queue *q)
{
    queue_drop_all(q);
    return 0;
}

static void
queue_dealloc(Queue *q)
{
    PyTypeObject *type = Py_TYPE(q);

    PyObject_GC_UnTrack(q);
    queue_drop_all(q);
    type->tp_free(q);
    Py_DECREF(type);
}

static PyObject *
queue_append(Queue *q, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"msg", "size"};
    PyObject *a[2];
    Py_ssize_t size;

    if (parse_args("append", args, nargs, kwnames, names, 2, 2, a) < 0) {
        return NULL;
    }
    size = as_ssize(a[1]);
    if (size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (queue_push(q, Py_NewRef(a[0]), size) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
queue_popleft(Queue *q, PyObject *Py_UNUSED(ignored))
{
    PyObject *msg = queue_pop(q);

    return msg != NULL ? msg : Py_NewRef(Py_None);
}

static PyObject *
queue_clear(Queue *q, PyObject *Py_UNUSED(ignored))
{
    queue_drop_all(q);
    Py_RETURN_NONE;
}

static PyObject *
queue_nbytes(Queue *q, void *Py_UNUSED(closure))
{
    Py_ssize_t i;
    long long total = 0;

    for (i = q->head; i < q->tail; i++) {
        total += q->sizes[i];
    }
    return PyLong_FromLongLong(total);
}

static Py_ssize_t
queue_len(Queue *q)
{
    return q->tail - q->head;
}

static PyMethodDef queue_methods[] = {
    {"append", (PyCFunction)(void (*)(void))queue_append, METH_FASTCALL | METH_KEYWORDS,
     "append(msg, size)\n--\n\nQueue msg with its wire size."},
    {"popleft", (PyCFunction)queue_popleft, METH_NOARGS,
     "popleft()\n--\n\nRemove and return the oldest message; None if there is none."},
    {"clear", (PyCFunction)queue_clear, METH_NOARGS, "clear()\n--\n\nDrop every message."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef queue_getset[] = {
    {"nbytes", (getter)queue_nbytes, NULL, "The wire size of the queued messages together.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot queue_slots[] = {
    {Py_tp_new, queue_new},
    {Py_tp_dealloc, queue_dealloc},
    {Py_tp_traverse, queue_traverse},
    {Py_tp_clear, queue_clear_refs},
    {Py_tp_methods, queue_methods},
    {Py_tp_getset, queue_getset},
    {Py_sq_length, queue_len},
    {Py_tp_doc, "Decoded messages not yet returned, oldest first, with their wire sizes."},
    {0, NULL},
};

static PyType_Spec queue_spec = {
    .name = "pygwire._chotpath.MessageQueue",
    .basicsize = sizeof(Queue),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = queue_slots,
};

/* -- drain ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *queue;    /* a Queue */
    PyObject *refill;   /* () -> bool */
    PyObject *callback; /* (msg) -> object, or NULL */
    PyObject *holder;   /* its attribute `name`: the types that skip the callback */
    PyObject *name;     /* (read at every message), or NULL: none skip it */
    int sized;          /* call callback(msg, wire size) instead of callback(msg) */
    int done;           /* raised or finished: like a spent generator */
} Drain;

static PyObject *
drain_next(Drain *d)
{
    Queue *q = (Queue *)d->queue;

    while (!d->done) {
        Py_ssize_t size = q->head < q->tail ? q->sizes[q->head] : 0;
        PyObject *msg = queue_pop(q);
        PyObject *res;
        int truth;

        if (msg != NULL) {
            if (d->callback != NULL) {
                truth = 0;
                if (d->holder != NULL) {
                    PyObject *steady = PyObject_GetAttr(d->holder, d->name);
                    if (steady == NULL) {
                        truth = -1;
                    }
                    else {
                        truth = PySet_Contains(steady, (PyObject *)Py_TYPE(msg));
                        Py_DECREF(steady);
                    }
                }
                if (truth == 0) {
                    if (d->sized) {
                        PyObject *size_obj = PyLong_FromSsize_t(size);
                        PyObject *call[3] = {NULL, msg, size_obj};

                        res = size_obj == NULL ? NULL :
                              PyObject_Vectorcall(d->callback, call + 1,
                                                  2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
                        Py_XDECREF(size_obj);
                    }
                    else {
                        res = PyObject_CallOneArg(d->callback, msg);
                    }
                    if (res == NULL) {
                        truth = -1;
                    }
                    Py_XDECREF(res);
                }
                if (truth < 0) {
                    Py_DECREF(msg);
                    d->done = 1;
                    return NULL;
                }
            }
            return msg;
        }
        res = PyObject_CallNoArgs(d->refill);
        if (res == NULL) {
            d->done = 1;
            return NULL;
        }
        truth = PyObject_IsTrue(res);
        Py_DECREF(res);
        if (truth <= 0) {
            d->done = 1; /* an error is set when truth < 0 */
            return NULL;
        }
    }
    return NULL;
}

static int
drain_traverse(Drain *d, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(d));
    Py_VISIT(d->queue);
    Py_VISIT(d->refill);
    Py_VISIT(d->callback);
    Py_VISIT(d->holder);
    Py_VISIT(d->name);
    return 0;
}

static int
drain_clear(Drain *d)
{
    Py_CLEAR(d->queue);
    Py_CLEAR(d->refill);
    Py_CLEAR(d->callback);
    Py_CLEAR(d->holder);
    Py_CLEAR(d->name);
    d->done = 1;
    return 0;
}

static void
drain_dealloc(Drain *d)
{
    PyTypeObject *type = Py_TYPE(d);

    PyObject_GC_UnTrack(d);
    drain_clear(d);
    type->tp_free(d);
    Py_DECREF(type);
}

static PyType_Slot drain_slots[] = {
    {Py_tp_dealloc, drain_dealloc},
    {Py_tp_traverse, drain_traverse},
    {Py_tp_clear, drain_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, drain_next},
    {0, NULL},
};

static PyType_Spec drain_spec = {
    .name = "pygwire._chotpath.Drain",
    .basicsize = sizeof(Drain),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = drain_slots,
};

static const char *const drain_names[] = {"queue", "refill", "callback", "holder", "name",
                                          "sized"};

static PyObject *
drain(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    State *st = get_state(module);
    PyObject *a[6];
    Drain *d;
    int sized;

    if (parse_args("drain", args, nargs, kwnames, drain_names, 6, 6, a) < 0) {
        return NULL;
    }
    if (!Py_IS_TYPE(a[0], st->QueueType)) {
        PyErr_Format(PyExc_TypeError, "drain(): queue must be a MessageQueue, not %.100s",
                     Py_TYPE(a[0])->tp_name);
        return NULL;
    }
    if (a[3] != Py_None && !PyUnicode_Check(a[4])) {
        PyErr_Format(PyExc_TypeError, "drain(): name must be a str, not %.100s",
                     Py_TYPE(a[4])->tp_name);
        return NULL;
    }
    sized = PyObject_IsTrue(a[5]);
    if (sized < 0) {
        return NULL;
    }
    d = PyObject_GC_New(Drain, st->DrainType);
    if (d == NULL) {
        return NULL;
    }
    d->sized = sized;
    d->queue = Py_NewRef(a[0]);
    d->refill = Py_NewRef(a[1]);
    d->callback = a[2] == Py_None ? NULL : Py_NewRef(a[2]);
    d->holder = a[3] == Py_None ? NULL : Py_NewRef(a[3]);
    d->name = a[3] == Py_None ? NULL : Py_NewRef(a[4]);
    d->done = 0;
    PyObject_GC_Track(d);
    return (PyObject *)d;
}

/* -- data_row_parser -------------------------------------------------------- */

/*
 * The DataRow parser, columns descriptor and to_wire method share one
 * layout: the row class and the offsets of its slots _raw and _columns,
 * read from the class's member descriptors, so that rows are made, split
 * and encoded without a call into Python.
 */
typedef struct {
    PyObject_HEAD
    PyTypeObject *cls;
    Py_ssize_t raw_offset;
    Py_ssize_t columns_offset;
    PyObject *fallback;        /* to_wire only: the validating encoder */
    vectorcallfunc vectorcall; /* the parser and to_wire */
} RowHelper;

typedef RowHelper RowParser;
typedef RowHelper RowColumns;
typedef RowHelper RowEncoder;

static int
row_helper_traverse(RowHelper *h, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(h));
    Py_VISIT(h->cls);
    Py_VISIT(h->fallback);
    return 0;
}

static int
row_helper_clear(RowHelper *h)
{
    Py_CLEAR(h->cls);
    Py_CLEAR(h->fallback);
    return 0;
}

static void
row_helper_dealloc(RowHelper *h)
{
    PyTypeObject *type = Py_TYPE(h);

    PyObject_GC_UnTrack(h);
    row_helper_clear(h);
    type->tp_free(h);
    Py_DECREF(type);
}

static PyMemberDef row_helper_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(RowHelper, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* Rows are made here: an instance from tp_alloc, the payload in _raw. */

static PyObject *
make_row(RowParser *p, const char *payload, Py_ssize_t size)
{
    PyObject *raw, *row, **slot;

    raw = PyBytes_FromStringAndSize(payload, size);
    if (raw == NULL) {
        return NULL;
    }
    row = p->cls->tp_alloc(p->cls, 0);
    if (row == NULL) {
        Py_DECREF(raw);
        return NULL;
    }
    slot = (PyObject **)((char *)row + p->raw_offset);
    Py_XSETREF(*slot, raw);
    slot = (PyObject **)((char *)row + p->columns_offset);
    Py_XSETREF(*slot, Py_NewRef(Py_None));
    return row;
}

static const char *const window_names3[] = {"buf", "start", "end"};

static PyObject *
row_parser_call(RowParser *p, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *a[3];
    Py_ssize_t start, end;

    if (parse_args("parse", args, PyVectorcall_NARGS(nargsf), kwnames, window_names3, 3, 3, a) <
            0 ||
        get_window(a, "parse", &start, &end) < 0) {
        return NULL;
    }
    return make_row(p, PyBytes_AS_STRING(a[0]) + start, end - start);
}

static PyType_Slot row_parser_slots[] = {
    {Py_tp_dealloc, row_helper_dealloc},
    {Py_tp_traverse, row_helper_traverse},
    {Py_tp_clear, row_helper_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_members, row_helper_members},
    {0, NULL},
};

static PyType_Spec row_parser_spec = {
    .name = "pygwire._chotpath.RowParser",
    .basicsize = sizeof(RowParser),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = row_parser_slots,
};

/* The offset of cls's object slot called name, or -1 with TypeError. */
static Py_ssize_t
slot_offset(const char *fname, PyTypeObject *cls, const char *name)
{
    PyObject *descr = PyObject_GetAttrString((PyObject *)cls, name);
    Py_ssize_t offset = -1;

    if (descr == NULL) {
        PyErr_Clear();
    }
    else if (Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDescrObject *member = (PyMemberDescrObject *)descr;

        if (member->d_member->type == T_OBJECT_EX && !(member->d_member->flags & READONLY) &&
            PyType_IsSubtype(cls, PyDescr_TYPE(member))) {
            offset = member->d_member->offset;
        }
    }
    Py_XDECREF(descr);
    if (offset < 0) {
        PyObject *type_name = PyType_GetName(cls);

        if (type_name != NULL) {
            PyErr_Format(PyExc_TypeError, "%s(): %U has no slot %s", fname, type_name, name);
            Py_DECREF(type_name);
        }
    }
    return offset;
}

/* A RowHelper of ``type`` for the DataRow class ``cls``. */
static PyObject *
new_row_helper(PyTypeObject *type, const char *fname, PyObject *cls, PyObject *fallback,
               vectorcallfunc call)
{
    RowHelper *h;
    Py_ssize_t raw_offset, columns_offset;

    if (!PyType_Check(cls)) {
        PyErr_Format(PyExc_TypeError, "%s() needs a class, not %.100s", fname,
                     Py_TYPE(cls)->tp_name);
        return NULL;
    }
    raw_offset = slot_offset(fname, (PyTypeObject *)cls, "_raw");
    if (raw_offset < 0) {
        return NULL;
    }
    columns_offset = slot_offset(fname, (PyTypeObject *)cls, "_columns");
    if (columns_offset < 0) {
        return NULL;
    }
    h = PyObject_GC_New(RowHelper, type);
    if (h == NULL) {
        return NULL;
    }
    h->cls = (PyTypeObject *)Py_NewRef(cls);
    h->raw_offset = raw_offset;
    h->columns_offset = columns_offset;
    h->fallback = Py_XNewRef(fallback);
    h->vectorcall = call;
    PyObject_GC_Track(h);
    return (PyObject *)h;
}

static PyObject *
data_row_parser(PyObject *module, PyObject *cls)
{
    if (PyType_Check(cls) && ((PyTypeObject *)cls)->tp_new != PyBaseObject_Type.tp_new) {
        PyObject *name = PyType_GetName((PyTypeObject *)cls);

        if (name != NULL) {
            PyErr_Format(PyExc_TypeError, "data_row_parser(): %U defines __new__", name);
            Py_DECREF(name);
        }
        return NULL;
    }
    return new_row_helper(get_state(module)->RowParserType, "data_row_parser", cls, NULL,
                          (vectorcallfunc)row_parser_call);
}

/* -- decode_frames -------------------------------------------------------- */

/* The frame at pos has a length word its limit refuses. */
#define STOP_BAD_FRAME 1

static const char *const decode_frames_names[] = {"fb", "limits", "parsers", "queue", "hold",
                                                  "count"};

/*
 * decode_frames(fb, limits, parsers, queue, hold, count): see _hotpath.py,
 * which words every error; this one only stops where Python must decide.
 */
static PyObject *
decode_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    State *st = get_state(module);
    PyObject *a[6];
    PyObject *fb, *limits, *parsers;
    Queue *queue;
    FrameCore *core;
    PyObject *buf = NULL;
    long hold, left;

    if (parse_args("decode_frames", args, nargs, kwnames, decode_frames_names, 6, 6, a) < 0) {
        return NULL;
    }
    fb = a[0];
    limits = a[1];
    parsers = a[2];
    if (!Py_IS_TYPE(a[3], st->QueueType) || !PyLong_Check(a[4]) || !PyLong_Check(a[5])) {
        PyErr_SetString(PyExc_TypeError, "decode_frames(): bad arguments");
        return NULL;
    }
    queue = (Queue *)a[3];
    /* The compiled buffer is read and updated in place; any other object
     * through its attributes and its ensure() method. */
    core = PyObject_TypeCheck(fb, st->FrameCoreType) ? (FrameCore *)fb : NULL;
    hold = PyLong_AsLong(a[4]);
    left = PyLong_AsLong(a[5]);
    if ((hold == -1 || left == -1) && PyErr_Occurred()) {
        return NULL;
    }

    for (;;) {
        const unsigned char *data;
        Py_ssize_t n, pos, end;
        long long need = 5;
        int stop = -1, truth;
        PyObject *obj;

        if (core != NULL) {
            Py_XSETREF(buf, Py_NewRef(core->buf));
            pos = core->pos;
        }
        else {
            Py_XSETREF(buf, PyObject_GetAttr(fb, st->str_buf));
            if (buf == NULL) {
                goto error;
            }
            obj = PyObject_GetAttr(fb, st->str_pos);
            if (obj == NULL) {
                goto error;
            }
            pos = as_ssize(obj);
            Py_DECREF(obj);
        }
        if (!PyBytes_Check(buf) || pos < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "decode_frames(): bad fb.buf or fb.pos");
            }
            goto error;
        }
        data = (const unsigned char *)PyBytes_AS_STRING(buf);
        n = PyBytes_GET_SIZE(buf);
        end = pos;

        while (n - pos >= 5) {
            /* pos >= 0 and pos + 5 <= n: the header is inside buf. */
            unsigned int ident = data[pos];
            uint32_t length = be_u32(data + pos + 1);
            long long limit_v, frame_end;
            PyObject *limit, *parser, *msg;

            limit = seq_item(limits, ident);
            if (limit == NULL) {
                goto error;
            }
            limit_v = PyLong_AsLongLong(limit);
            Py_DECREF(limit);
            if (limit_v == -1 && PyErr_Occurred()) {
                goto error;
            }
            if ((long long)length > limit_v || length < 4) {
                stop = STOP_BAD_FRAME; /* nothing of this frame is consumed */
                break;
            }
            /* 64-bit arithmetic: pos + 1 + length may not fit a 32-bit size. */
            frame_end = (long long)pos + 1 + (long long)length;
            if (frame_end > (long long)n) {
                need = 1 + (long long)length;
                break;
            }
            if ((long)ident == hold) {
                if (queue->tail > queue->head) {
                    stop = 0; /* decoded first in the next batch */
                    break;
                }
                left = 1; /* and alone */
            }
            end = (Py_ssize_t)frame_end;
            parser = seq_item(parsers, ident);
            if (parser == NULL) {
                goto error;
            }
            if (Py_IS_TYPE(parser, st->RowParserType)) {
                /* A DataRow: made here, without a call into Python. */
                msg = make_row((RowParser *)parser, (const char *)data + pos + 5,
                               end - pos - 5);
            }
            else {
                PyObject *start_obj = PyLong_FromSsize_t(pos + 5);
                PyObject *end_obj = start_obj == NULL ? NULL : PyLong_FromSsize_t(end);

                msg = NULL;
                if (end_obj != NULL) {
                    PyObject *call[4] = {NULL, buf, start_obj, end_obj};

                    msg = PyObject_Vectorcall(parser, call + 1,
                                              3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
                }
                Py_XDECREF(start_obj);
                Py_XDECREF(end_obj);
            }
            Py_DECREF(parser);
            if (msg == NULL || queue_push(queue, msg, end - pos) < 0) {
                /* The bad frame is consumed; the ones before it stay queued. */
                set_pos_keeping_error(st, fb, end);
                goto error;
            }
            pos = end;
            if (--left <= 0) {
                stop = 0;
                break;
            }
        }

        if (core != NULL) {
            core->pos = pos; /* a frame boundary inside core->buf */
        }
        else {
            obj = PyLong_FromSsize_t(pos);
            if (obj == NULL) {
                goto error;
            }
            truth = PyObject_SetAttr(fb, st->str_pos, obj);
            Py_DECREF(obj);
            if (truth < 0) {
                goto error;
            }
        }
        if (stop >= 0) {
            Py_DECREF(buf);
            return PyLong_FromLong(stop);
        }
        if (core != NULL) {
            truth = framecore_ensure_n(core, need);
            if (truth <= 0) {
                if (truth < 0) {
                    goto error;
                }
                Py_DECREF(buf);
                return PyLong_FromLong(0);
            }
            continue;
        }
        {
            PyObject *need_obj = PyLong_FromLongLong(need);

            if (need_obj == NULL) {
                goto error;
            }
            obj = PyObject_CallMethodOneArg(fb, st->str_ensure, need_obj);
            Py_DECREF(need_obj);
        }
        if (obj == NULL) {
            goto error;
        }
        truth = PyObject_IsTrue(obj);
        Py_DECREF(obj);
        if (truth <= 0) {
            if (truth < 0) {
                goto error;
            }
            Py_DECREF(buf);
            return PyLong_FromLong(0);
        }
    }

error:
    Py_XDECREF(buf);
    return NULL;
}

/* -- split_data_row ------------------------------------------------------- */

static const char *const window_names[] = {"buf", "start", "end", "make"};

/*
 * A row split_row refused: the strict Python walk (split_data_row_strict in
 * _hotpath.py) finds the fault and words it; there is one text per error.
 */
static PyObject *
split_row_error(PyObject *buf, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *mod, *strict, *result;

    mod = PyImport_ImportModule("pygwire._hotpath");
    if (mod == NULL) {
        return NULL;
    }
    strict = PyObject_GetAttrString(mod, "split_data_row_strict");
    Py_DECREF(mod);
    if (strict == NULL) {
        return NULL;
    }
    result = PyObject_CallFunction(strict, "Onn", buf, start, end);
    Py_DECREF(strict);
    if (result != NULL) {
        Py_DECREF(result);
        PyErr_SetString(PyExc_SystemError, "split_data_row_strict() found no fault");
    }
    return NULL;
}

/*
 * One pass that builds the list; at the first doubt the list is dropped
 * and the strict walk raises the exact error.  A count that cannot fit the
 * payload is refused before anything is allocated for it.
 */
static PyObject *
split_row(PyObject *buf, Py_ssize_t start, Py_ssize_t end)
{
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(buf);
    Py_ssize_t pos, i, count;
    PyObject *cols;

    if (end - start < 2) {
        return split_row_error(buf, start, end);
    }
    count = be_u16(data + start);
    pos = start + 2;
    if (count > (end - pos) / 4) {
        return split_row_error(buf, start, end);
    }
    cols = PyList_New(count);
    if (cols == NULL) {
        return NULL;
    }
    for (i = 0; i < count; i++) {
        int32_t len;
        PyObject *v;

        if (end - pos < 4) {
            break;
        }
        len = be_i32(data + pos);
        pos += 4;
        if (len < 0) {
            if (len != -1) {
                break;
            }
            v = Py_NewRef(Py_None);
        }
        else {
            if (len > end - pos) {
                break;
            }
            v = PyBytes_FromStringAndSize((const char *)data + pos, len);
            if (v == NULL) {
                Py_DECREF(cols);
                return NULL;
            }
            pos += len;
        }
        PyList_SET_ITEM(cols, i, v);
    }
    if (i == count && pos == end) {
        return cols;
    }
    Py_DECREF(cols); /* unset items are NULL, which list_dealloc skips */
    return split_row_error(buf, start, end);
}

static PyObject *
split_data_row(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[3];
    Py_ssize_t start, end;

    if (parse_args("split_data_row", args, nargs, kwnames, window_names, 3, 3, a) < 0 ||
        get_window(a, "split_data_row", &start, &end) < 0) {
        return NULL;
    }
    return split_row(a[0], start, end);
}

/* -- data_row_columns ----------------------------------------------------- */

/*
 * DataRow.columns as a data descriptor: the list once split, else the
 * payload in _raw split now (and kept; _raw is then dropped).  Setting it
 * stores the list and drops the payload.  A row that cannot be split
 * raises its DecodingError at every read and keeps its payload.
 */
static inline PyObject **
row_slot(PyObject *row, Py_ssize_t offset)
{
    return (PyObject **)((char *)row + offset);
}

static int
check_row(RowColumns *d, PyObject *row)
{
    if (PyObject_TypeCheck(row, d->cls)) {
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "columns: %.100s is not a %.100s", Py_TYPE(row)->tp_name,
                 d->cls->tp_name);
    return -1;
}

static PyObject *
row_columns_get(RowColumns *d, PyObject *row, PyObject *Py_UNUSED(type))
{
    PyObject *cols, *raw;

    if (row == NULL || row == Py_None) {
        return Py_NewRef(d);
    }
    if (check_row(d, row) < 0) {
        return NULL;
    }
    /* A row still holding its payload is split now; otherwise its columns
     * are whatever was set (checked when it is encoded). */
    raw = *row_slot(row, d->raw_offset);
    cols = *row_slot(row, d->columns_offset);
    if (cols == NULL || raw == NULL) {
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%s'",
                     Py_TYPE(row)->tp_name, cols == NULL ? "_columns" : "_raw");
        return NULL;
    }
    if (raw == Py_None) {
        return Py_NewRef(cols);
    }
    if (!PyBytes_Check(raw)) {
        PyErr_Format(PyExc_TypeError, "split_data_row() needs a bytes buffer, not %.100s",
                     Py_TYPE(raw)->tp_name);
        return NULL;
    }
    Py_INCREF(raw); /* held while splitting, whatever happens to the row */
    cols = split_row(raw, 0, PyBytes_GET_SIZE(raw));
    Py_DECREF(raw);
    if (cols == NULL) {
        return NULL;
    }
    Py_XSETREF(*row_slot(row, d->columns_offset), Py_NewRef(cols));
    Py_XSETREF(*row_slot(row, d->raw_offset), Py_NewRef(Py_None));
    return cols;
}

static int
row_columns_set(RowColumns *d, PyObject *row, PyObject *value)
{
    if (check_row(d, row) < 0) {
        return -1;
    }
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "property of '%.100s' object has no deleter",
                     Py_TYPE(row)->tp_name);
        return -1;
    }
    Py_XSETREF(*row_slot(row, d->columns_offset), Py_NewRef(value));
    Py_XSETREF(*row_slot(row, d->raw_offset), Py_NewRef(Py_None));
    return 0;
}

static PyType_Slot row_columns_slots[] = {
    {Py_tp_dealloc, row_helper_dealloc},
    {Py_tp_traverse, row_helper_traverse},
    {Py_tp_clear, row_helper_clear},
    {Py_tp_descr_get, row_columns_get},
    {Py_tp_descr_set, row_columns_set},
    {Py_tp_doc, "The row's values; None stands for SQL NULL."},
    {0, NULL},
};

static PyType_Spec row_columns_spec = {
    .name = "pygwire._chotpath.RowColumns",
    .basicsize = sizeof(RowColumns),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = row_columns_slots,
};

static PyObject *
data_row_columns(PyObject *module, PyObject *cls)
{
    return new_row_helper(get_state(module)->RowColumnsType, "data_row_columns", cls, NULL,
                          NULL);
}

/* -- encoding rows --------------------------------------------------------- */

static inline unsigned char *
put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

/* 'D', the length word and the column count, then the body. */
static PyObject *
new_data_row(Py_ssize_t count, Py_ssize_t body_size, unsigned char **body)
{
    PyObject *wire = PyBytes_FromStringAndSize(NULL, 7 + body_size);
    unsigned char *p;

    if (wire == NULL) {
        return NULL;
    }
    p = (unsigned char *)PyBytes_AS_STRING(wire);
    p[0] = 'D';
    put_u32(p + 1, (uint32_t)(body_size + 6));
    p[5] = (unsigned char)(count >> 8);
    p[6] = (unsigned char)count;
    *body = p + 7;
    return wire;
}

/* body_size + len, saturating just above the limit (no overflow). */
static inline Py_ssize_t
add_capped(Py_ssize_t body_size, Py_ssize_t len, Py_ssize_t limit)
{
    return len > limit - body_size ? limit + 1 : body_size + len;
}

/* The wire form of a row of these columns; None to refuse (the fallback
 * decides); NULL with an exception. */
static PyObject *
encode_row(State *st, PyObject *columns)
{
    PyObject *wire, *const *items;
    Py_ssize_t count, i, body_size = 0;
    unsigned char *p;

    /* Only a list of None and exact bytes is encoded here; anything else
     * (another buffer, a wrong type) goes to the validating encoder. */
    if (!PyList_CheckExact(columns)) {
        Py_RETURN_NONE;
    }
    count = PyList_GET_SIZE(columns);
    if (count > 0xFFFF) {
        Py_RETURN_NONE;
    }
    items = PySequence_Fast_ITEMS(columns);
    /* Sizes first; no Python code runs until the copy is done. */
    for (i = 0; i < count; i++) {
        PyObject *v = items[i];

        body_size = add_capped(body_size, 4, st->max_message_length);
        if (v == Py_None) {
            continue;
        }
        if (!PyBytes_CheckExact(v)) {
            Py_RETURN_NONE;
        }
        body_size = add_capped(body_size, PyBytes_GET_SIZE(v), st->max_message_length);
    }
    if (body_size > st->max_message_length - 6) {
        Py_RETURN_NONE;
    }
    wire = new_data_row(count, body_size, &p);
    if (wire == NULL) {
        return NULL;
    }
    for (i = 0; i < count; i++) {
        PyObject *v = items[i];

        if (v == Py_None) {
            p = put_u32(p, 0xFFFFFFFFu);
        }
        else {
            Py_ssize_t len = PyBytes_GET_SIZE(v);

            p = put_u32(p, (uint32_t)len);
            memcpy(p, PyBytes_AS_STRING(v), (size_t)len);
            p += len;
        }
    }
    return wire;
}

/* -- data_row_to_wire ----------------------------------------------------- */

/*
 * DataRow.to_wire as a method descriptor: LOAD_METHOD calls it with the
 * row, without a bound method or a Python frame in between.
 */
static PyObject *
row_encoder_call(RowEncoder *e, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *row, *columns, *raw, *wire;
    unsigned char *p;

    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "to_wire() takes no arguments");
        return NULL;
    }
    row = args[0];
    if (!PyObject_TypeCheck(row, e->cls)) {
        PyErr_Format(PyExc_TypeError, "to_wire(): %.100s is not a %.100s",
                     Py_TYPE(row)->tp_name, e->cls->tp_name);
        return NULL;
    }
    columns = *row_slot(row, e->columns_offset);
    raw = *row_slot(row, e->raw_offset);
    if (columns == NULL || raw == NULL) {
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%s'",
                     Py_TYPE(row)->tp_name, columns == NULL ? "_columns" : "_raw");
        return NULL;
    }
    if (raw != Py_None) { /* untouched since decoding: frame the payload */
        if (!PyBytes_Check(raw)) {
            PyErr_Format(PyExc_TypeError, "to_wire(): the payload of %.100s is not bytes",
                         Py_TYPE(row)->tp_name);
            return NULL;
        }
        if ((long long)PyBytes_GET_SIZE(raw) > 0xFFFFFFFFLL - 4) {
            PyErr_SetString(PyExc_OverflowError, "int too big to convert");
            return NULL;
        }
        wire = PyBytes_FromStringAndSize(NULL, 5 + PyBytes_GET_SIZE(raw));
        if (wire == NULL) {
            return NULL;
        }
        p = (unsigned char *)PyBytes_AS_STRING(wire);
        p[0] = 'D';
        put_u32(p + 1, (uint32_t)(PyBytes_GET_SIZE(raw) + 4));
        memcpy(p + 5, PyBytes_AS_STRING(raw), (size_t)PyBytes_GET_SIZE(raw));
        return wire;
    }
    Py_INCREF(columns); /* held while encoding, whatever happens to the row */
    wire = encode_row(PyType_GetModuleState(Py_TYPE(e)), columns);
    Py_DECREF(columns);
    if (wire != Py_None) {
        return wire;
    }
    Py_DECREF(wire);
    return PyObject_CallOneArg(e->fallback, row);
}

static PyObject *
row_encoder_get(RowEncoder *e, PyObject *obj, PyObject *Py_UNUSED(type))
{
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(e);
    }
    return PyMethod_New((PyObject *)e, obj);
}

static PyObject *
row_encoder_name(RowEncoder *e, void *qualified)
{
    PyObject *cls_name;
    PyObject *name;

    if (qualified == NULL) {
        return PyUnicode_FromString("to_wire");
    }
    cls_name = PyType_GetName(e->cls);
    if (cls_name == NULL) {
        return NULL;
    }
    name = PyUnicode_FromFormat("%U.to_wire", cls_name);
    Py_DECREF(cls_name);
    return name;
}

static PyGetSetDef row_encoder_getset[] = {
    {"__name__", (getter)row_encoder_name, NULL, NULL, NULL},
    {"__qualname__", (getter)row_encoder_name, NULL, NULL, "qualified"},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot row_encoder_slots[] = {
    {Py_tp_dealloc, row_helper_dealloc},
    {Py_tp_traverse, row_helper_traverse},
    {Py_tp_clear, row_helper_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_descr_get, row_encoder_get},
    {Py_tp_members, row_helper_members},
    {Py_tp_getset, row_encoder_getset},
    {Py_tp_doc, "The complete wire form: identifier, Int32 length, payload."},
    {0, NULL},
};

static PyType_Spec row_encoder_spec = {
    .name = "pygwire._chotpath.RowEncoder",
    .basicsize = sizeof(RowEncoder),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_HAVE_VECTORCALL |
             Py_TPFLAGS_METHOD_DESCRIPTOR,
    .slots = row_encoder_slots,
};

static const char *const to_wire_names[] = {"cls", "fallback"};

static PyObject *
data_row_to_wire(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2];

    if (parse_args("data_row_to_wire", args, nargs, kwnames, to_wire_names, 2, 2, a) < 0) {
        return NULL;
    }
    return new_row_helper(get_state(module)->RowEncoderType, "data_row_to_wire", a[0], a[1],
                          (vectorcallfunc)row_encoder_call);
}

/* -- cstring_payload ------------------------------------------------------ */

static PyObject *
cstring_payload(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[3], *text;
    Py_ssize_t start, end;
    const char *data, *z;

    (void)module;
    if (parse_args("cstring_payload", args, nargs, kwnames, window_names, 3, 3, a) < 0 ||
        get_window(a, "cstring_payload", &start, &end) < 0) {
        return NULL;
    }
    if (end == start) {
        Py_RETURN_NONE;
    }
    data = PyBytes_AS_STRING(a[0]);
    z = memchr(data + start, 0, (size_t)(end - start));
    if (z != data + end - 1) {
        Py_RETURN_NONE;
    }
    text = PyUnicode_DecodeUTF8(data + start, end - 1 - start, NULL);
    if (text == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return text;
}

/* -- row_description_fields ----------------------------------------------- */

static inline PyObject *
field_tuple(PyTypeObject *make, PyObject *name, const unsigned char *t)
{
    PyObject *items[7];
    PyObject *tup;
    int i;

    items[0] = name; /* a new reference, consumed */
    items[1] = PyLong_FromUnsignedLong(be_u32(t));                    /* table_oid */
    items[2] = PyLong_FromLong(be_i16(t + 4));                        /* column_attr */
    items[3] = PyLong_FromUnsignedLong(be_u32(t + 6));                /* type_oid */
    items[4] = PyLong_FromLong(be_i16(t + 10));                       /* type_size */
    items[5] = PyLong_FromLong(be_i32(t + 12));                       /* type_modifier */
    items[6] = PyLong_FromLong(be_i16(t + 16));                       /* format_code */
    for (i = 1; i < 7; i++) {
        if (items[i] == NULL) {
            goto fail;
        }
    }
    /* As tuple.__new__(make, items) does for a subtype: allocate, fill. */
    tup = make == &PyTuple_Type ? PyTuple_New(7) : make->tp_alloc(make, 7);
    if (tup == NULL) {
        goto fail;
    }
    for (i = 0; i < 7; i++) {
        PyTuple_SET_ITEM(tup, i, items[i]);
    }
    if (PyType_IS_GC(make) && !PyObject_GC_IsTracked(tup)) {
        PyObject_GC_Track(tup);
    }
    return tup;

fail:
    for (i = 0; i < 7; i++) {
        Py_XDECREF(items[i]);
    }
    return NULL;
}

/*
 * The Python code tiles the payload with a regex; it returns fields
 * exactly when the payload is ``count`` times (name without NUL, NUL, 18
 * bytes) with nothing left over and every name valid UTF-8, which is what
 * the first walk here checks.  The second builds the tuples.
 */
static PyObject *
row_description_fields(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    State *st = get_state(module);
    PyObject *a[4], *result = NULL, *make;
    Py_ssize_t start, end, pos, i, count;
    const unsigned char *data;

    if (parse_args("row_description_fields", args, nargs, kwnames, window_names, 4, 4, a) < 0 ||
        get_window(a, "row_description_fields", &start, &end) < 0) {
        return NULL;
    }
    make = a[3];
    data = (const unsigned char *)PyBytes_AS_STRING(a[0]);
    if (end - start < 2) {
        Py_RETURN_NONE;
    }
    count = be_u16(data + start);
    pos = start + 2;
    if (count == 0) {
        return pos == end ? PyList_New(0) : Py_NewRef(Py_None);
    }
    /* Each field takes at least 19 bytes (a name's terminator and 18):
     * refuse a count the payload cannot hold before allocating for it. */
    if (count > (end - pos) / 19) {
        Py_RETURN_NONE;
    }
    result = PyList_New(count);
    if (result == NULL) {
        return NULL;
    }
    /* Walk 1: the names, kept in the list until their tuples replace them. */
    for (i = 0; i < count; i++) {
        const unsigned char *z = memchr(data + pos, 0, (size_t)(end - pos));
        PyObject *name;

        if (z == NULL || (data + end) - (z + 1) < 18) {
            goto none;
        }
        name = PyUnicode_DecodeUTF8((const char *)data + pos, z - (data + pos), NULL);
        if (name == NULL) {
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();
                goto none;
            }
            goto error;
        }
        PyList_SET_ITEM(result, i, name);
        pos = (z - data) + 19;
    }
    if (pos != end) {
        goto none;
    }
    /* Walk 2: the first tuple through tuple.__new__ itself, which checks
     * ``make`` and raises what Python raises; the rest the same way it
     * builds them. */
    pos = start + 2;
    for (i = 0; i < count; i++) {
        const unsigned char *z = memchr(data + pos, 0, (size_t)(end - pos));
        PyObject *name = Py_NewRef(PyList_GET_ITEM(result, i));
        PyObject *tup;

        if (i == 0 && !(make == (PyObject *)&PyTuple_Type)) {
            PyObject *plain = field_tuple(&PyTuple_Type, name, z + 1);
            PyObject *call[2];

            if (plain == NULL) {
                goto error;
            }
            call[0] = make;
            call[1] = plain;
            tup = PyObject_Vectorcall(st->tuple_new, call, 2, NULL);
            Py_DECREF(plain);
            if (tup != NULL && Py_TYPE(tup) != (PyTypeObject *)make) {
                /* tuple.__new__ always makes ``make`` instances; be safe. */
                Py_DECREF(tup);
                PyErr_SetString(PyExc_SystemError, "tuple.__new__ returned another type");
                tup = NULL;
            }
        }
        else {
            tup = field_tuple((PyTypeObject *)make, name, z + 1);
        }
        if (tup == NULL) {
            goto error;
        }
        PyList_SetItem(result, i, tup); /* drops the name's list reference */
        pos = (z - data) + 19;
    }
    return result;

none:
    Py_DECREF(result);
    Py_RETURN_NONE;
error:
    Py_DECREF(result);
    return NULL;
}

/* -- pgoutput_row_maker ---------------------------------------------------- */

/* The class cls, checked as _check_slots checks it, and its slot offsets. */
static int
slotted_class(const char *fname, PyObject *cls, const char *const *names, int n,
              Py_ssize_t *offsets)
{
    int i;

    if (!PyType_Check(cls)) {
        PyErr_Format(PyExc_TypeError, "%s() needs a class, not %.100s", fname,
                     Py_TYPE(cls)->tp_name);
        return -1;
    }
    if (((PyTypeObject *)cls)->tp_new != PyBaseObject_Type.tp_new) {
        PyObject *name = PyType_GetName((PyTypeObject *)cls);

        if (name != NULL) {
            PyErr_Format(PyExc_TypeError, "%s(): %U defines __new__", fname, name);
            Py_DECREF(name);
        }
        return -1;
    }
    for (i = 0; i < n; i++) {
        offsets[i] = slot_offset(fname, (PyTypeObject *)cls, names[i]);
        if (offsets[i] < 0) {
            return -1;
        }
    }
    return 0;
}


/* int.__new__(type, value) for an int subclass, as the Python code does. */
static PyObject *
new_int_of(PyTypeObject *type, PyObject *value)
{
    PyObject *args, *result;

    if (value == NULL) {
        return NULL;
    }
    args = PyTuple_Pack(1, value);
    Py_DECREF(value);
    if (args == NULL) {
        return NULL;
    }
    result = PyLong_Type.tp_new(type, args, NULL);
    Py_DECREF(args);
    return result;
}

static inline uint64_t
be_u64(const unsigned char *p)
{
    return ((uint64_t)be_u32(p) << 32) | be_u32(p + 4);
}

static inline int64_t
be_i64(const unsigned char *p)
{
    uint64_t u = be_u64(p);
    return u <= 0x7FFFFFFFFFFFFFFFull ? (int64_t)u : -(int64_t)(~u) - 1;
}


/*
 * A logical stream's Insert, Update and Delete, read straight from the
 * XLogData payload into a RowChange (whose slots are filled here, as the
 * DataRow parser fills a row's).  Anything doubtful returns None, and the
 * strict Python decoder decides; see pgoutput_row_maker in _hotpath.py.
 */

enum {
    CH_KIND,
    CH_RELATION,
    CH_NEW,
    CH_OLD,
    CH_OLD_IS_KEY,
    CH_XID,
    CH_LSN,
    CH_MESSAGE,
    CH_PAYLOAD,
    CH_CONTEXT,
    CH_SLOTS
};

static const char *const change_slot_names[CH_SLOTS] = {
    "kind", "relation", "new", "old", "old_is_key", "xid", "lsn", "_message", "_payload",
    "_context"};

typedef struct {
    PyObject_HEAD
    PyTypeObject *cls;
    PyTypeObject *lsn;
    PyObject *kinds[3]; /* insert, update, delete */
    PyObject *unchanged;
    Py_ssize_t offsets[CH_SLOTS];
    vectorcallfunc vectorcall;
} RowMaker;

static int
row_maker_traverse(RowMaker *m, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(m));
    Py_VISIT(m->cls);
    Py_VISIT(m->lsn);
    Py_VISIT(m->kinds[0]);
    Py_VISIT(m->kinds[1]);
    Py_VISIT(m->kinds[2]);
    Py_VISIT(m->unchanged);
    return 0;
}

static int
row_maker_clear(RowMaker *m)
{
    Py_CLEAR(m->cls);
    Py_CLEAR(m->lsn);
    Py_CLEAR(m->kinds[0]);
    Py_CLEAR(m->kinds[1]);
    Py_CLEAR(m->kinds[2]);
    Py_CLEAR(m->unchanged);
    return 0;
}

static void
row_maker_dealloc(RowMaker *m)
{
    PyTypeObject *type = Py_TYPE(m);

    PyObject_GC_UnTrack(m);
    row_maker_clear(m);
    type->tp_free(m);
    Py_DECREF(type);
}

static PyMemberDef row_maker_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(RowMaker, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

#define TUPLE_DOUBT 1 /* the tuple is not one the fast path takes: None */

/*
 * The TupleData at data[*pos:end] as {name: value} in *out (with keys, only
 * the key's columns); *pos moves to its end.  0 on success, TUPLE_DOUBT,
 * or -1 with an exception (memory).
 */
static int
read_tuple_values(RowMaker *m, const unsigned char *data, Py_ssize_t *pos, Py_ssize_t end,
                  PyObject *names, PyObject *keys, int key_only, PyObject *template,
                  PyObject **out)
{
    Py_ssize_t p = *pos, i, count;
    PyObject *values;

    if (end - p < 2) {
        return TUPLE_DOUBT;
    }
    count = be_u16(data + p);
    if (count != PyTuple_GET_SIZE(names)) {
        return TUPLE_DOUBT;
    }
    p += 2;
    values = PyDict_Copy(template);
    if (values == NULL) {
        return -1;
    }
    for (i = 0; i < count; i++) {
        unsigned char kind;
        int wanted = 1;
        PyObject *value;

        if (p >= end) {
            goto doubt;
        }
        kind = data[p++];
        if (key_only) {
            wanted = PyObject_IsTrue(PyTuple_GET_ITEM(keys, i));
            if (wanted < 0) {
                goto error;
            }
        }
        if (kind == 't' || kind == 'b') {
            int32_t n;

            if (end - p < 4) {
                goto doubt;
            }
            n = be_i32(data + p);
            p += 4;
            if (n < 0 || n > end - p) {
                goto doubt;
            }
            if (kind == 't' && memchr(data + p, 0, (size_t)n) != NULL) {
                goto doubt; /* the strict reader refuses a NUL in text */
            }
            if (!wanted) {
                p += n; /* not part of the key: read over, not decoded */
                continue;
            }
            if (kind == 't') {
                value = PyUnicode_DecodeUTF8((const char *)data + p, n, NULL);
                if (value == NULL) {
                    if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                        PyErr_Clear();
                        goto doubt;
                    }
                    goto error;
                }
            }
            else {
                value = PyBytes_FromStringAndSize((const char *)data + p, n);
                if (value == NULL) {
                    goto error;
                }
            }
            p += n;
        }
        else if (kind == 'n') {
            value = Py_NewRef(Py_None);
        }
        else if (kind == 'u') {
            value = Py_NewRef(m->unchanged);
        }
        else {
            goto doubt;
        }
        if (wanted) {
            int rc = PyDict_SetItem(values, PyTuple_GET_ITEM(names, i), value);

            Py_DECREF(value);
            if (rc < 0) {
                goto error;
            }
        }
        else {
            Py_DECREF(value);
        }
    }
    *pos = p;
    *out = values;
    return 0;

doubt:
    Py_DECREF(values);
    return TUPLE_DOUBT;
error:
    Py_DECREF(values);
    return -1;
}

static const char *const row_maker_names[] = {"buf", "rows"};

static PyObject *
row_maker_call(RowMaker *m, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *a[2], *rows, *relations, *key, *entry, *names, *keys, *kind;
    PyObject *xid, *old = NULL, *new = NULL, *change, *values[CH_SLOTS];
    const unsigned char *data;
    Py_ssize_t size, pos = 26;
    unsigned char tag, marker;
    int in_stream, old_is_key = 0, rc, i;

    if (parse_args("make", args, PyVectorcall_NARGS(nargsf), kwnames, row_maker_names, 2, 2, a) <
        0) {
        return NULL;
    }
    rows = a[1];
    if (!PyTuple_CheckExact(rows) || PyTuple_GET_SIZE(rows) != 4 ||
        !PyDict_Check(PyTuple_GET_ITEM(rows, 0))) {
        PyErr_SetString(PyExc_TypeError,
                        "make() needs rows = (relations dict, xid, in_stream, context)");
        return NULL;
    }
    relations = PyTuple_GET_ITEM(rows, 0);
    in_stream = PyObject_IsTrue(PyTuple_GET_ITEM(rows, 2));
    if (in_stream < 0) {
        return NULL;
    }
    if (!PyBytes_CheckExact(a[0])) {
        Py_RETURN_NONE;
    }
    data = (const unsigned char *)PyBytes_AS_STRING(a[0]);
    size = PyBytes_GET_SIZE(a[0]);
    if (size < 31 || data[0] != 'w') {
        Py_RETURN_NONE;
    }
    tag = data[25];
    if (tag != 'I' && tag != 'U' && tag != 'D') {
        Py_RETURN_NONE;
    }
    xid = PyTuple_GET_ITEM(rows, 1);
    if (in_stream) {
        if (size < 35) {
            Py_RETURN_NONE;
        }
        xid = PyLong_FromUnsignedLong(be_u32(data + 26));
        if (xid == NULL) {
            return NULL;
        }
        pos = 30;
    }
    else {
        Py_INCREF(xid);
    }
    key = PyLong_FromUnsignedLong(be_u32(data + pos));
    if (key == NULL) {
        goto error;
    }
    entry = PyDict_GetItemWithError(relations, key); /* borrowed */
    Py_DECREF(key);
    if (entry == NULL) {
        if (PyErr_Occurred()) {
            goto error;
        }
        goto none;
    }
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 5 ||
        !PyTuple_CheckExact(PyTuple_GET_ITEM(entry, 1)) ||
        !PyTuple_CheckExact(PyTuple_GET_ITEM(entry, 2)) ||
        PyTuple_GET_SIZE(PyTuple_GET_ITEM(entry, 1)) !=
            PyTuple_GET_SIZE(PyTuple_GET_ITEM(entry, 2)) ||
        !PyDict_Check(PyTuple_GET_ITEM(entry, 3)) || !PyDict_Check(PyTuple_GET_ITEM(entry, 4))) {
        PyErr_SetString(PyExc_TypeError,
                        "make(): a relation entry is relation_entry()'s (relation, names, "
                        "key flags, row template, key template)");
        goto error;
    }
    Py_INCREF(entry); /* the dict may change under calls into Python */
    names = PyTuple_GET_ITEM(entry, 1);
    keys = PyTuple_GET_ITEM(entry, 2);
    marker = data[pos + 4];
    pos += 5;
    if (tag == 'I') {
        if (marker != 'N') {
            goto none_entry;
        }
        kind = m->kinds[0];
    }
    else {
        kind = m->kinds[tag == 'U' ? 1 : 2];
        if (marker == 'K' || marker == 'O') {
            old_is_key = marker == 'K';
            rc = read_tuple_values(m, data, &pos, size, names, keys, old_is_key,
                                   PyTuple_GET_ITEM(entry, old_is_key ? 4 : 3), &old);
            if (rc != 0) {
                goto fail_entry;
            }
            if (tag == 'U') {
                if (pos >= size || data[pos] != 'N') {
                    rc = TUPLE_DOUBT;
                    goto fail_entry;
                }
                pos++;
            }
        }
        else if (tag == 'D' || marker != 'N') {
            goto none_entry;
        }
    }
    if (tag != 'D') {
        rc = read_tuple_values(m, data, &pos, size, names, keys, 0, PyTuple_GET_ITEM(entry, 3),
                               &new);
        if (rc != 0) {
            goto fail_entry;
        }
    }
    if (pos != size) {
        rc = TUPLE_DOUBT;
        goto fail_entry;
    }
    change = m->cls->tp_alloc(m->cls, 0);
    if (change == NULL) {
        rc = -1;
        goto fail_entry;
    }
    values[CH_LSN] = new_int_of(m->lsn, PyLong_FromUnsignedLongLong(be_u64(data + 1)));
    if (values[CH_LSN] == NULL) {
        Py_DECREF(change);
        rc = -1;
        goto fail_entry;
    }
    values[CH_KIND] = Py_NewRef(kind);
    values[CH_RELATION] = Py_NewRef(PyTuple_GET_ITEM(entry, 0));
    values[CH_NEW] = new != NULL ? new : Py_NewRef(Py_None);
    values[CH_OLD] = old != NULL ? old : Py_NewRef(Py_None);
    values[CH_OLD_IS_KEY] = PyBool_FromLong(old_is_key);
    values[CH_XID] = xid;
    values[CH_MESSAGE] = Py_NewRef(Py_None);
    values[CH_PAYLOAD] = Py_NewRef(a[0]);
    values[CH_CONTEXT] = Py_NewRef(PyTuple_GET_ITEM(rows, 3));
    for (i = 0; i < CH_SLOTS; i++) {
        PyObject **slot = (PyObject **)((char *)change + m->offsets[i]);

        Py_XSETREF(*slot, values[i]);
    }
    Py_DECREF(entry);
    return change;

fail_entry:
    Py_DECREF(entry);
    Py_XDECREF(old);
    Py_XDECREF(new);
    Py_DECREF(xid);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
none_entry:
    Py_DECREF(entry);
none:
    Py_DECREF(xid);
    Py_RETURN_NONE;
error:
    Py_DECREF(xid);
    return NULL;
}

static PyType_Slot row_maker_slots[] = {
    {Py_tp_dealloc, row_maker_dealloc},
    {Py_tp_traverse, row_maker_traverse},
    {Py_tp_clear, row_maker_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_members, row_maker_members},
    {0, NULL},
};

static PyType_Spec row_maker_spec = {
    .name = "pygwire._chotpath.RowMaker",
    .basicsize = sizeof(RowMaker),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = row_maker_slots,
};

static const char *const row_maker_args[] = {"cls", "lsn", "kinds", "unchanged"};

static PyObject *
pgoutput_row_maker(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[4], *kinds;
    PyTypeObject *cls;
    RowMaker *m;
    Py_ssize_t offsets[CH_SLOTS];
    int i;

    if (parse_args("pgoutput_row_maker", args, nargs, kwnames, row_maker_args, 4, 4, a) < 0 ||
        slotted_class("pgoutput_row_maker", a[0], change_slot_names, CH_SLOTS, offsets) < 0) {
        return NULL;
    }
    cls = (PyTypeObject *)a[0];
    if (!PyType_Check(a[1]) || !PyType_IsSubtype((PyTypeObject *)a[1], &PyLong_Type)) {
        PyErr_SetString(PyExc_TypeError, "pgoutput_row_maker(): lsn must be a subclass of int");
        return NULL;
    }
    kinds = PySequence_Tuple(a[2]);
    if (kinds == NULL) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(kinds) != 3) {
        Py_DECREF(kinds);
        PyErr_SetString(PyExc_ValueError,
                        "pgoutput_row_maker(): kinds are three: insert, update, delete");
        return NULL;
    }
    m = PyObject_GC_New(RowMaker, get_state(module)->RowMakerType);
    if (m == NULL) {
        Py_DECREF(kinds);
        return NULL;
    }
    m->cls = (PyTypeObject *)Py_NewRef(cls);
    m->lsn = (PyTypeObject *)Py_NewRef(a[1]);
    for (i = 0; i < 3; i++) {
        m->kinds[i] = Py_NewRef(PyTuple_GET_ITEM(kinds, i));
    }
    Py_DECREF(kinds);
    m->unchanged = Py_NewRef(a[3]);
    memcpy(m->offsets, offsets, sizeof(offsets));
    m->vectorcall = (vectorcallfunc)row_maker_call;
    PyObject_GC_Track(m);
    return (PyObject *)m;
}

/* -- pgoutput_boundary_maker ---------------------------------------------- */

/* Begin and Commit, read into their classes' slots (see _hotpath.py). */

static const char *const begin_slot_names[3] = {"final_lsn", "commit_time", "xid"};
static const char *const commit_slot_names[4] = {"commit_lsn", "end_lsn", "commit_time",
                                                  "flags"};

typedef struct {
    PyObject_HEAD
    PyTypeObject *begin;
    PyTypeObject *commit;
    PyTypeObject *lsn;
    PyTypeObject *timestamp;
    Py_ssize_t begin_offsets[3];
    Py_ssize_t commit_offsets[4];
    vectorcallfunc vectorcall;
} BoundaryMaker;

static int
boundary_maker_traverse(BoundaryMaker *m, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(m));
    Py_VISIT(m->begin);
    Py_VISIT(m->commit);
    Py_VISIT(m->lsn);
    Py_VISIT(m->timestamp);
    return 0;
}

static int
boundary_maker_clear(BoundaryMaker *m)
{
    Py_CLEAR(m->begin);
    Py_CLEAR(m->commit);
    Py_CLEAR(m->lsn);
    Py_CLEAR(m->timestamp);
    return 0;
}

static void
boundary_maker_dealloc(BoundaryMaker *m)
{
    PyTypeObject *type = Py_TYPE(m);

    PyObject_GC_UnTrack(m);
    boundary_maker_clear(m);
    type->tp_free(m);
    Py_DECREF(type);
}

static PyMemberDef boundary_maker_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(BoundaryMaker, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* An object of cls with its n slots (at offsets) set to the n new references
 * in values; every reference is consumed, NULL ones mean failure. */
static PyObject *
fill_slots(PyTypeObject *cls, const Py_ssize_t *offsets, PyObject **values, int n)
{
    PyObject *obj = NULL;
    int i;

    for (i = 0; i < n; i++) {
        if (values[i] == NULL) {
            goto done;
        }
    }
    obj = cls->tp_alloc(cls, 0);
    if (obj == NULL) {
        goto done;
    }
    for (i = 0; i < n; i++) {
        PyObject **slot = (PyObject **)((char *)obj + offsets[i]);

        Py_XSETREF(*slot, values[i]);
        values[i] = NULL;
    }
done:
    for (i = 0; i < n; i++) {
        Py_XDECREF(values[i]);
    }
    return obj;
}

static const char *const boundary_maker_names[] = {"buf"};

static PyObject *
boundary_maker_call(BoundaryMaker *m, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *a[1], *values[4];
    const unsigned char *data;
    Py_ssize_t size;

    if (parse_args("make", args, PyVectorcall_NARGS(nargsf), kwnames, boundary_maker_names, 1, 1,
                   a) < 0) {
        return NULL;
    }
    if (!PyBytes_CheckExact(a[0])) {
        Py_RETURN_NONE;
    }
    data = (const unsigned char *)PyBytes_AS_STRING(a[0]);
    size = PyBytes_GET_SIZE(a[0]);
    if (size == 25 + 1 + 20 && data[0] == 'w' && data[25] == 'B') {
        values[0] = new_int_of(m->lsn, PyLong_FromUnsignedLongLong(be_u64(data + 26)));
        values[1] = new_int_of(m->timestamp, PyLong_FromLongLong(be_i64(data + 34)));
        values[2] = PyLong_FromUnsignedLong(be_u32(data + 42));
        return fill_slots(m->begin, m->begin_offsets, values, 3);
    }
    if (size == 25 + 1 + 25 && data[0] == 'w' && data[25] == 'C') {
        values[0] = new_int_of(m->lsn, PyLong_FromUnsignedLongLong(be_u64(data + 27)));
        values[1] = new_int_of(m->lsn, PyLong_FromUnsignedLongLong(be_u64(data + 35)));
        values[2] = new_int_of(m->timestamp, PyLong_FromLongLong(be_i64(data + 43)));
        values[3] = PyLong_FromLong((signed char)data[26]);
        return fill_slots(m->commit, m->commit_offsets, values, 4);
    }
    Py_RETURN_NONE;
}

static PyType_Slot boundary_maker_slots[] = {
    {Py_tp_dealloc, boundary_maker_dealloc},
    {Py_tp_traverse, boundary_maker_traverse},
    {Py_tp_clear, boundary_maker_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_members, boundary_maker_members},
    {0, NULL},
};

static PyType_Spec boundary_maker_spec = {
    .name = "pygwire._chotpath.BoundaryMaker",
    .basicsize = sizeof(BoundaryMaker),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = boundary_maker_slots,
};

static const char *const boundary_maker_args[] = {"begin", "commit", "lsn", "timestamp"};

static PyObject *
pgoutput_boundary_maker(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    const char *fname = "pgoutput_boundary_maker";
    PyObject *a[4];
    BoundaryMaker *m;
    Py_ssize_t begin_offsets[3], commit_offsets[4];
    int i;

    if (parse_args(fname, args, nargs, kwnames, boundary_maker_args, 4, 4, a) < 0 ||
        slotted_class(fname, a[0], begin_slot_names, 3, begin_offsets) < 0 ||
        slotted_class(fname, a[1], commit_slot_names, 4, commit_offsets) < 0) {
        return NULL;
    }
    for (i = 2; i < 4; i++) {
        if (!PyType_Check(a[i]) || !PyType_IsSubtype((PyTypeObject *)a[i], &PyLong_Type)) {
            PyErr_Format(PyExc_TypeError, "%s(): %s must be a subclass of int", fname,
                         boundary_maker_args[i]);
            return NULL;
        }
    }
    m = PyObject_GC_New(BoundaryMaker, get_state(module)->BoundaryMakerType);
    if (m == NULL) {
        return NULL;
    }
    m->begin = (PyTypeObject *)Py_NewRef(a[0]);
    m->commit = (PyTypeObject *)Py_NewRef(a[1]);
    m->lsn = (PyTypeObject *)Py_NewRef(a[2]);
    m->timestamp = (PyTypeObject *)Py_NewRef(a[3]);
    memcpy(m->begin_offsets, begin_offsets, sizeof(begin_offsets));
    memcpy(m->commit_offsets, commit_offsets, sizeof(commit_offsets));
    m->vectorcall = (vectorcallfunc)boundary_maker_call;
    PyObject_GC_Track(m);
    return (PyObject *)m;
}

/* -- model_steppers ------------------------------------------------------- */

/* The protocol model's loops over a chunk's messages (see _hotpath.py):
 * the common steps read and write the model's and its states' slots
 * directly; everything else calls the model's own Python methods, exactly
 * where the reference does.  Every object the loops read a state's slots
 * from is checked to be a state (a model, for the model) first. */

enum {
    M_CUR,
    M_QUEUE,
    M_SKIPPING,
    M_CLOSED,
    M_UNSYNCED,
    M_AFTER_ERROR,
    M_IN_SESSION,
    M_PENDING_SYNCS,
    M_TRANSACTION_STATUS,
    M_STEADY_SERVER,
    M_STEADY_CLIENT,
    M_SLOTS
};
static const char *const model_slot_names[M_SLOTS] = {
    "_cur",          "_queue",        "_skipping",          "_closed",
    "_unsynced",     "_after_error",  "in_session",         "pending_syncs",
    "transaction_status", "steady_server", "steady_client",
};

enum { N_SERVER, N_PLAIN, N_QUEUES, N_STARTABLE, N_BATCH, N_SYNCS, N_STEADY_SERVER, N_SLOTS };
static const char *const node_slot_names[N_SLOTS] = {
    "server", "plain", "queues", "startable", "batch", "syncs", "steady_server",
};

/* Names of the methods the loops call and of the message fields they read. */
enum { S_SERVER_STEP, S_NEXT, S_STARTUP_CLIENT_STEP, S_REQUEST, S_START, S_POPLEFT, S_APPEND,
       S_STATUS, S_KIND, S_NAMES };
static const char *const stepper_names[S_NAMES] = {
    "_server_step", "_next", "_startup_client_step", "_request", "_start",
    "popleft",      "append", "status",             "kind",
};

typedef struct {
    PyObject_HEAD
    PyTypeObject *model;
    PyTypeObject *node;
    PyObject *idle, *done, *rfq, *none;
    PyObject *requests;       /* dict: message type -> request */
    PyObject *describe;       /* the Describe class */
    PyObject *describe_kinds; /* dict: Describe.kind -> request */
    PyObject *names[S_NAMES];
    Py_ssize_t m[M_SLOTS]; /* the model's slot offsets */
    Py_ssize_t n[N_SLOTS]; /* a state's slot offsets */
    int server;            /* server_steps, else client_steps */
    vectorcallfunc vectorcall;
} Stepper;

static int
stepper_traverse(Stepper *s, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(s));
    Py_VISIT(s->model);
    Py_VISIT(s->node);
    Py_VISIT(s->idle);
    Py_VISIT(s->done);
    Py_VISIT(s->rfq);
    Py_VISIT(s->none);
    Py_VISIT(s->requests);
    Py_VISIT(s->describe);
    Py_VISIT(s->describe_kinds);
    return 0;
}

static int
stepper_clear(Stepper *s)
{
    int i;

    Py_CLEAR(s->model);
    Py_CLEAR(s->node);
    Py_CLEAR(s->idle);
    Py_CLEAR(s->done);
    Py_CLEAR(s->rfq);
    Py_CLEAR(s->none);
    Py_CLEAR(s->requests);
    Py_CLEAR(s->describe);
    Py_CLEAR(s->describe_kinds);
    for (i = 0; i < S_NAMES; i++) {
        Py_CLEAR(s->names[i]);
    }
    return 0;
}

static void
stepper_dealloc(Stepper *s)
{
    PyTypeObject *type = Py_TYPE(s);

    PyObject_GC_UnTrack(s);
    stepper_clear(s);
    type->tp_free(s);
    Py_DECREF(type);
}

static PyMemberDef stepper_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Stepper, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* obj's slot at offset (borrowed); an empty one raises what Python raises. */
static PyObject *
get_slot(PyObject *obj, Py_ssize_t offset, const char *name)
{
    PyObject *value = *(PyObject **)((char *)obj + offset), *again;

    if (value == NULL) {
        again = PyObject_GetAttrString(obj, name);
        if (again != NULL) { /* cannot be: the slot is empty */
            Py_DECREF(again);
            PyErr_Format(PyExc_SystemError, "slot %s changed under the model", name);
        }
    }
    return value;
}

static inline void
set_slot(PyObject *obj, Py_ssize_t offset, PyObject *value)
{
    Py_XSETREF(*(PyObject **)((char *)obj + offset), Py_NewRef(value));
}

#define MODEL_SLOT(s, state, i) get_slot((state), (s)->m[i], model_slot_names[i])
#define NODE_SLOT(s, node, i) get_slot((node), (s)->n[i], node_slot_names[i])

/* 1, 0, or -1 with an error: the truth of a slot. */
static int
slot_true(PyObject *obj, Py_ssize_t offset, const char *name)
{
    PyObject *value = get_slot(obj, offset, name);

    return value == NULL ? -1 : PyObject_IsTrue(value);
}

/* obj when it is one of the model's states, else NULL with TypeError. */
static PyObject *
as_node(Stepper *s, PyObject *obj)
{
    if (obj != NULL && !PyObject_TypeCheck(obj, s->node)) {
        PyErr_Format(PyExc_TypeError, "model_steppers(): %.100s is not a state of the model",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return obj;
}

/* The model's current state, a new reference. */
static PyObject *
current(Stepper *s, PyObject *state)
{
    return Py_XNewRef(as_node(s, MODEL_SLOT(s, state, M_CUR)));
}

/* state.<name>(*args): 0, or -1 with an error. */
static int
call_model(Stepper *s, PyObject *state, int name, PyObject *a, PyObject *b, PyObject *c)
{
    PyObject *args[4] = {state, a, b, c}, *result;
    size_t nargs = 1 + (a != NULL) + (b != NULL) + (c != NULL);

    result = PyObject_VectorcallMethod(s->names[name], args, nargs, NULL);
    Py_XDECREF(result);
    return result == NULL ? -1 : 0;
}

/* state.<slot> = state.<slot> +/- delta */
static int
add_to_slot(PyObject *state, Py_ssize_t offset, const char *name, PyObject *delta, int sign)
{
    PyObject *value = get_slot(state, offset, name), *sum;

    if (value == NULL) {
        return -1;
    }
    sum = sign > 0 ? PyNumber_InPlaceAdd(value, delta) : PyNumber_InPlaceSubtract(value, delta);
    if (sum == NULL) {
        return -1;
    }
    Py_XSETREF(*(PyObject **)((char *)state + offset), sum);
    return 0;
}

/* The end of an answer (DONE, or RFQ when cur queues): the next request
 * starts, or the model goes idle, or _next() decides. */
static int
answered(Stepper *s, PyObject *state, PyObject *msg, PyObject *cur, PyObject *nxt)
{
    PyObject *queue, *first, *value;
    int nonempty, go;

    if (nxt == s->rfq) {
        value = NODE_SLOT(s, cur, N_SYNCS);
        if (value == NULL ||
            add_to_slot(state, s->m[M_PENDING_SYNCS], model_slot_names[M_PENDING_SYNCS], value,
                        -1) < 0) {
            return -1;
        }
        value = PyObject_GetAttr(msg, s->names[S_STATUS]);
        if (value == NULL) {
            return -1;
        }
        set_slot(state, s->m[M_TRANSACTION_STATUS], value);
        Py_DECREF(value);
        set_slot(state, s->m[M_AFTER_ERROR], Py_False);
    }
    queue = Py_XNewRef(MODEL_SLOT(s, state, M_QUEUE));
    if (queue == NULL) {
        return -1;
    }
    nonempty = PyObject_IsTrue(queue);
    if (nonempty <= 0) {
        Py_DECREF(queue);
        if (nonempty < 0) {
            return -1;
        }
        set_slot(state, s->m[M_CUR], s->idle);
        set_slot(state, s->m[M_STEADY_SERVER], s->none);
        set_slot(state, s->m[M_STEADY_CLIENT], s->none);
        return 0;
    }
    first = PySequence_GetItem(queue, 0);
    go = as_node(s, first) == NULL
             ? -1
             : slot_true(first, s->n[N_STARTABLE], node_slot_names[N_STARTABLE]);
    Py_XDECREF(first);
    if (go > 0) {
        go = slot_true(state, s->m[M_SKIPPING], model_slot_names[M_SKIPPING]);
        go = go < 0 ? -1 : !go;
    }
    if (go <= 0) {
        Py_DECREF(queue);
        return go < 0 ? -1 : call_model(s, state, S_NEXT, NULL, NULL, NULL);
    }
    first = PyObject_CallMethodNoArgs(queue, s->names[S_POPLEFT]);
    Py_DECREF(queue);
    if (first == NULL) {
        return -1;
    }
    set_slot(state, s->m[M_CUR], first);
    value = as_node(s, first) == NULL ? NULL : NODE_SLOT(s, first, N_STEADY_SERVER);
    if (value != NULL) {
        set_slot(state, s->m[M_STEADY_SERVER], value);
    }
    Py_DECREF(first);
    return value == NULL ? -1 : 0;
}

/* One server message that does not keep the state (nxt: its row, or NULL). */
static int
server_step(Stepper *s, PyObject *state, PyObject *msg, PyObject *cur, PyObject *nxt)
{
    PyObject *value;
    int yes;

    if (nxt == NULL) {
        return call_model(s, state, S_SERVER_STEP, msg, cur, Py_None);
    }
    if (as_node(s, nxt) == NULL) {
        return -1;
    }
    yes = slot_true(nxt, s->n[N_PLAIN], node_slot_names[N_PLAIN]);
    if (yes > 0) {
        value = NODE_SLOT(s, nxt, N_STEADY_SERVER);
        if (value == NULL) {
            return -1;
        }
        set_slot(state, s->m[M_CUR], nxt);
        set_slot(state, s->m[M_STEADY_SERVER], value);
        set_slot(state, s->m[M_STEADY_CLIENT], s->none);
        return 0;
    }
    if (yes == 0) { /* nxt is DONE or (nxt is RFQ and cur.queues) */
        if (nxt == s->done) {
            yes = 1;
        }
        else if (nxt == s->rfq) {
            yes = slot_true(cur, s->n[N_QUEUES], node_slot_names[N_QUEUES]);
        }
    }
    if (yes < 0) {
        return -1;
    }
    if (yes) {
        return answered(s, state, msg, cur, nxt);
    }
    return call_model(s, state, S_SERVER_STEP, msg, cur, nxt);
}

static int
server_steps(Stepper *s, PyObject *state, PyObject *it)
{
    PyObject *cur, *msg, *table, *nxt;
    int rc = 0;

    cur = current(s, state);
    if (cur == NULL) {
        return -1;
    }
    while (rc == 0 && (msg = PyIter_Next(it)) != NULL) {
        table = NODE_SLOT(s, cur, N_SERVER);
        if (table != NULL && !PyDict_Check(table)) {
            PyErr_SetString(PyExc_TypeError, "model_steppers(): a state's server table is a dict");
            table = NULL;
        }
        nxt = table == NULL ? NULL : Py_XNewRef(PyDict_GetItemWithError(table, (PyObject *)Py_TYPE(msg)));
        if (table == NULL || (nxt == NULL && PyErr_Occurred())) {
            rc = -1;
        }
        else if (nxt != cur) { /* cur: rows, COPY data, any-time messages: the bulk */
            rc = server_step(s, state, msg, cur, nxt);
            if (rc == 0) {
                Py_SETREF(cur, current(s, state));
                rc = cur == NULL ? -1 : 0;
            }
        }
        Py_XDECREF(nxt);
        Py_DECREF(msg);
    }
    Py_XDECREF(cur);
    return rc < 0 || PyErr_Occurred() ? -1 : 0;
}

/* One client message in the session (request: its request, or NULL). */
static int
client_step(Stepper *s, PyObject *state, PyObject *msg, PyObject *request, PyObject *cur)
{
    PyObject *value, *queue;
    int slow = 1, t;

    /* request is None or not request.startable or state._closed or not cur.queues */
    if (request != NULL) {
        if (as_node(s, request) == NULL ||
            (t = slot_true(request, s->n[N_STARTABLE], node_slot_names[N_STARTABLE])) < 0) {
            return -1;
        }
        slow = !t;
    }
    if (!slow) {
        if ((t = slot_true(state, s->m[M_CLOSED], model_slot_names[M_CLOSED])) < 0) {
            return -1;
        }
        slow = t;
    }
    if (!slow) {
        if ((t = slot_true(cur, s->n[N_QUEUES], node_slot_names[N_QUEUES])) < 0) {
            return -1;
        }
        slow = !t;
    }
    if (slow) {
        return call_model(s, state, S_REQUEST, request == NULL ? Py_None : request, msg, NULL);
    }
    value = NODE_SLOT(s, request, N_BATCH);
    if (value == NULL) {
        return -1;
    }
    if (value != Py_None) {
        set_slot(state, s->m[M_UNSYNCED], value);
    }
    value = NODE_SLOT(s, request, N_SYNCS);
    if (value == NULL ||
        add_to_slot(state, s->m[M_PENDING_SYNCS], model_slot_names[M_PENDING_SYNCS], value, 1) <
            0) {
        return -1;
    }
    if (cur != s->idle) {
        queue = Py_XNewRef(MODEL_SLOT(s, state, M_QUEUE));
        if (queue == NULL) {
            return -1;
        }
        value = PyObject_CallMethodOneArg(queue, s->names[S_APPEND], request);
        Py_DECREF(queue);
        Py_XDECREF(value);
        return value == NULL ? -1 : 0;
    }
    slow = slot_true(state, s->m[M_SKIPPING], model_slot_names[M_SKIPPING]);
    if (slow) {
        return slow < 0 ? -1 : call_model(s, state, S_START, request, NULL, NULL);
    }
    value = NODE_SLOT(s, request, N_STEADY_SERVER);
    if (value == NULL) {
        return -1;
    }
    set_slot(state, s->m[M_CUR], request);
    set_slot(state, s->m[M_STEADY_SERVER], value);
    return 0;
}

static int
client_steps(Stepper *s, PyObject *state, PyObject *it)
{
    PyObject *msg, *request, *kind, *cur;
    int rc = 0;

    while (rc == 0 && (msg = PyIter_Next(it)) != NULL) {
        /* Checked per message: a lax model may end the startup mid-chunk. */
        rc = slot_true(state, s->m[M_IN_SESSION], model_slot_names[M_IN_SESSION]);
        if (rc <= 0) {
            rc = rc < 0 ? -1 : call_model(s, state, S_STARTUP_CLIENT_STEP, msg, NULL, NULL);
            Py_DECREF(msg);
            continue;
        }
        rc = 0;
        request = PyDict_GetItemWithError(s->requests, (PyObject *)Py_TYPE(msg));
        if (request == NULL && PyErr_Occurred()) {
            rc = -1;
        }
        else if ((PyObject *)Py_TYPE(msg) == s->describe) {
            kind = PyObject_GetAttr(msg, s->names[S_KIND]);
            request = kind == NULL ? NULL : PyDict_GetItemWithError(s->describe_kinds, kind);
            Py_XDECREF(kind);
            rc = request == NULL && PyErr_Occurred() ? -1 : 0;
        }
        if (rc == 0) {
            Py_XINCREF(request);
            cur = current(s, state);
            rc = cur == NULL ? -1 : client_step(s, state, msg, request, cur);
            Py_XDECREF(cur);
            Py_XDECREF(request);
        }
        Py_DECREF(msg);
    }
    return rc < 0 || PyErr_Occurred() ? -1 : 0;
}

static const char *const stepper_args[] = {"state", "msgs"};

static PyObject *
stepper_call(Stepper *s, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    const char *fname = s->server ? "server_steps" : "client_steps";
    PyObject *a[2], *it;
    int rc;

    if (parse_args(fname, args, PyVectorcall_NARGS(nargsf), kwnames, stepper_args, 2, 2, a) < 0) {
        return NULL;
    }
    if (!PyObject_TypeCheck(a[0], s->model)) {
        PyErr_Format(PyExc_TypeError, "%s() needs the model, not %.100s", fname,
                     Py_TYPE(a[0])->tp_name);
        return NULL;
    }
    it = PyObject_GetIter(a[1]);
    if (it == NULL) {
        return NULL;
    }
    rc = s->server ? server_steps(s, a[0], it) : client_steps(s, a[0], it);
    Py_DECREF(it);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyType_Slot stepper_slots[] = {
    {Py_tp_dealloc, stepper_dealloc},
    {Py_tp_traverse, stepper_traverse},
    {Py_tp_clear, stepper_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_members, stepper_members},
    {0, NULL},
};

static PyType_Spec stepper_spec = {
    .name = "pygwire._chotpath.Stepper",
    .basicsize = sizeof(Stepper),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = stepper_slots,
};

static const char *const model_steppers_args[] = {"model",    "node",     "marks",
                                                  "requests", "describe", "describe_kinds"};

static PyObject *
new_stepper(PyObject *module, PyObject **a, PyObject *marks, const Py_ssize_t *m,
            const Py_ssize_t *n, int server)
{
    Stepper *s = PyObject_GC_New(Stepper, get_state(module)->StepperType);
    int i;

    if (s == NULL) {
        return NULL;
    }
    s->model = (PyTypeObject *)Py_NewRef(a[0]);
    s->node = (PyTypeObject *)Py_NewRef(a[1]);
    s->idle = Py_NewRef(PyTuple_GET_ITEM(marks, 0));
    s->done = Py_NewRef(PyTuple_GET_ITEM(marks, 1));
    s->rfq = Py_NewRef(PyTuple_GET_ITEM(marks, 2));
    s->none = Py_NewRef(PyTuple_GET_ITEM(marks, 3));
    s->requests = Py_NewRef(a[3]);
    s->describe = Py_NewRef(a[4]);
    s->describe_kinds = Py_NewRef(a[5]);
    for (i = 0; i < S_NAMES; i++) {
        s->names[i] = NULL;
    }
    memcpy(s->m, m, sizeof(s->m));
    memcpy(s->n, n, sizeof(s->n));
    s->server = server;
    s->vectorcall = (vectorcallfunc)stepper_call;
    PyObject_GC_Track(s);
    for (i = 0; i < S_NAMES; i++) {
        s->names[i] = PyUnicode_InternFromString(stepper_names[i]);
        if (s->names[i] == NULL) {
            Py_DECREF(s);
            return NULL;
        }
    }
    return (PyObject *)s;
}

static PyObject *
model_steppers(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    const char *fname = "model_steppers";
    PyObject *a[6], *marks, *server, *client, *result;
    Py_ssize_t m[M_SLOTS], n[N_SLOTS];

    if (parse_args(fname, args, nargs, kwnames, model_steppers_args, 6, 6, a) < 0 ||
        slotted_class(fname, a[0], model_slot_names, M_SLOTS, m) < 0 ||
        slotted_class(fname, a[1], node_slot_names, N_SLOTS, n) < 0) {
        return NULL;
    }
    if (!PyDict_Check(a[3]) || !PyDict_Check(a[5])) {
        PyErr_Format(PyExc_TypeError, "%s(): requests and describe_kinds must be dicts", fname);
        return NULL;
    }
    if (!PyType_Check(a[4])) {
        PyErr_Format(PyExc_TypeError, "%s(): describe must be a class", fname);
        return NULL;
    }
    marks = PySequence_Tuple(a[2]);
    if (marks == NULL) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(marks) != 4) {
        Py_DECREF(marks);
        PyErr_Format(PyExc_ValueError, "%s(): marks are four: idle, done, rfq, none", fname);
        return NULL;
    }
    server = new_stepper(module, a, marks, m, n, 1);
    client = server == NULL ? NULL : new_stepper(module, a, marks, m, n, 0);
    Py_DECREF(marks);
    result = client == NULL ? NULL : PyTuple_Pack(2, server, client);
    Py_XDECREF(server);
    Py_XDECREF(client);
    return result;
}

/* -- module --------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"decode_frames", (PyCFunction)(void (*)(void))decode_frames, METH_FASTCALL | METH_KEYWORDS,
     "decode_frames(fb, limits, parsers, queue, hold, count)\n--\n\n"
     "Decode up to count complete standard frames buffered in fb into queue."},
    {"drain", (PyCFunction)(void (*)(void))drain, METH_FASTCALL | METH_KEYWORDS,
     "drain(queue, refill, callback, holder, name, sized)\n--\n\n"
     "Iterate over the messages of queue, refilling it and calling callback."},
    {"data_row_parser", (PyCFunction)data_row_parser, METH_O,
     "data_row_parser(cls)\n--\n\nThe stream decoders' parser of DataRow."},
    {"data_row_to_wire", (PyCFunction)(void (*)(void))data_row_to_wire,
     METH_FASTCALL | METH_KEYWORDS,
     "data_row_to_wire(cls, fallback)\n--\n\nThe method DataRow.to_wire."},
    {"data_row_columns", (PyCFunction)data_row_columns, METH_O,
     "data_row_columns(cls)\n--\n\nThe descriptor DataRow.columns."},
    {"split_data_row", (PyCFunction)(void (*)(void))split_data_row,
     METH_FASTCALL | METH_KEYWORDS,
     "split_data_row(buf, start, end)\n--\n\nSplit a DataRow payload buf[start:end]."},
    {"cstring_payload", (PyCFunction)(void (*)(void))cstring_payload,
     METH_FASTCALL | METH_KEYWORDS,
     "cstring_payload(buf, start, end)\n--\n\n"
     "The text of a payload that is exactly one UTF-8 C string, or None."},
    {"pgoutput_boundary_maker", (PyCFunction)(void (*)(void))pgoutput_boundary_maker,
     METH_FASTCALL | METH_KEYWORDS,
     "pgoutput_boundary_maker(begin, commit, lsn, timestamp)\n--\n\n"
     "The fast path of a logical stream's Begin and Commit."},
    {"pgoutput_row_maker", (PyCFunction)(void (*)(void))pgoutput_row_maker,
     METH_FASTCALL | METH_KEYWORDS,
     "pgoutput_row_maker(cls, lsn, kinds, unchanged)\n--\n\n"
     "The fast path of a logical stream's Insert, Update and Delete."},
    {"model_steppers", (PyCFunction)(void (*)(void))model_steppers,
     METH_FASTCALL | METH_KEYWORDS,
     "model_steppers(model, node, marks, requests, describe, describe_kinds)\n--\n\n"
     "The protocol model's loops over a chunk's server and client messages."},
    {"row_description_fields", (PyCFunction)(void (*)(void))row_description_fields,
     METH_FASTCALL | METH_KEYWORDS,
     "row_description_fields(buf, start, end, make)\n--\n\n"
     "The fields of a RowDescription payload, or None when the strict reader must decide."},
    {NULL, NULL, 0, NULL},
};

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    State *st = get_state(module);

    Py_VISIT(st->tuple_new);
    Py_VISIT(st->FrameCoreType);
    Py_VISIT(st->QueueType);
    Py_VISIT(st->DrainType);
    Py_VISIT(st->RowParserType);
    Py_VISIT(st->RowColumnsType);
    Py_VISIT(st->RowEncoderType);
    Py_VISIT(st->RowMakerType);
    Py_VISIT(st->BoundaryMakerType);
    Py_VISIT(st->StepperType);
    return 0;
}

static int
module_clear(PyObject *module)
{
    State *st = get_state(module);

    Py_CLEAR(st->tuple_new);
    Py_CLEAR(st->str_buf);
    Py_CLEAR(st->str_pos);
    Py_CLEAR(st->str_ensure);
    Py_CLEAR(st->FrameCoreType);
    Py_CLEAR(st->QueueType);
    Py_CLEAR(st->DrainType);
    Py_CLEAR(st->RowParserType);
    Py_CLEAR(st->RowColumnsType);
    Py_CLEAR(st->RowEncoderType);
    Py_CLEAR(st->RowMakerType);
    Py_CLEAR(st->BoundaryMakerType);
    Py_CLEAR(st->StepperType);
    return 0;
}

static void
module_free(void *module)
{
    module_clear((PyObject *)module);
}

static int
module_exec(PyObject *module)
{
    State *st = get_state(module);
    PyObject *mod, *limit;

    mod = PyImport_ImportModule("pygwire.constants");
    if (mod == NULL) {
        return -1;
    }
    limit = PyObject_GetAttrString(mod, "MAX_MESSAGE_LENGTH");
    Py_DECREF(mod);
    if (limit == NULL) {
        return -1;
    }
    st->max_message_length = PyLong_AsSsize_t(limit);
    Py_DECREF(limit);
    if (st->max_message_length == -1 && PyErr_Occurred()) {
        return -1;
    }
    /* Keeps body_size + 6 and the length word in range without checks. */
    if (st->max_message_length < 6 || st->max_message_length > 0x7FFFFFFF - 7) {
        PyErr_SetString(PyExc_ValueError, "unexpected MAX_MESSAGE_LENGTH");
        return -1;
    }
    st->tuple_new = PyObject_GetAttrString((PyObject *)&PyTuple_Type, "__new__");
    st->str_buf = PyUnicode_InternFromString("buf");
    st->str_pos = PyUnicode_InternFromString("pos");
    st->str_ensure = PyUnicode_InternFromString("ensure");
    if (st->tuple_new == NULL || st->str_buf == NULL || st->str_pos == NULL ||
        st->str_ensure == NULL) {
        return -1;
    }
    st->FrameCoreType =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &framecore_spec, NULL);
    if (st->FrameCoreType == NULL || PyModule_AddType(module, st->FrameCoreType) < 0) {
        return -1;
    }
    st->QueueType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &queue_spec, NULL);
    if (st->QueueType == NULL || PyModule_AddType(module, st->QueueType) < 0) {
        return -1;
    }
    st->DrainType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &drain_spec, NULL);
    st->RowParserType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &row_parser_spec, NULL);
    st->RowColumnsType =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &row_columns_spec, NULL);
    st->RowEncoderType =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &row_encoder_spec, NULL);
    st->RowMakerType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &row_maker_spec, NULL);
    st->BoundaryMakerType =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &boundary_maker_spec, NULL);
    st->StepperType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &stepper_spec, NULL);
    if (st->StepperType == NULL || st->DrainType == NULL || st->RowParserType == NULL || st->RowColumnsType == NULL ||
        st->RowEncoderType == NULL || st->RowMakerType == NULL ||
        st->BoundaryMakerType == NULL) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, (void *)module_exec},
    {0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pygwire._chotpath",
    .m_doc = "Compiled twin of pygwire._hotpath (same functions, same behaviour).",
    .m_size = sizeof(State),
    .m_methods = methods,
    .m_slots = slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__chotpath(void)
{
    return PyModuleDef_Init(&moduledef);
}
