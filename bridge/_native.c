/* The compiled core of the bridge's per-sample hot path (CPython C API, no other library).
 *
 * scan_lines: the exposition parser's line loop (ingest/exposition.py, _parse_lines) over a
 * whole answer at once. Lines of the usual shape (a known series, one plain value) are
 * handled here; every other line (a comment that matters, a new series, a timestamp, an
 * exemplar, anything odd) is handed whole to the pure-Python parser through `slow`, so the
 * rules for odd input live in one place and both cores give the same samples and errors.
 *
 * counter_increases: the counter tracker's hot loop (analyze/rates.py, update): the
 * increase of every counter that went on; the others are left to the pure code.
 *
 * sort_samples and add_buckets: derive's two passes over every sample (analyze/derive.py):
 * each sample by its role, then each latency bucket's increase into its endpoint's sums;
 * performance_fields: the fields of each endpoint's row (its percentiles among them).
 *
 * steady_scan: parse and derive in one pass for a page whose lines are where they were
 * (ingest/steady.py): each value checked and its increase added where it goes, with no
 * Python object per sample; anything out of the usual gives the page back to the above.
 *
 * bucket_fields, normalize, quantile, add_scaled and add_counts: the loops over every bucket of
 * every endpoint each scrape (analyze/bucket_fields.py, quantile.py, window.py): a bucket
 * row's fields, sorted monotonic buckets and the percentiles read from them, and
 * sliding-window sums.
 *
 * encode_points: the line-protocol encoder's loop over a batch of points
 * (store/lineprotocol.py), bytes out.
 *
 * Series, intern_series and live_series: the series type and its canonical table
 * (model.py), kept out of the cycle collector's way.
 *
 * Both are checked against the pure-Python reference by tests/test_bridge_native.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ryu/d2s.c"  /* (Ryu, vendored: the shortest digits of a double) */

/* Attribute names of window.Counts, made once. */
static PyObject *name_requests, *name_errors, *name_client_errors, *name_buckets, *name_ordered,
    *name_add, *name_empty;

/* The performance row's field names, made once: a row is a dict of a dozen of them per
 * endpoint and scrape, and a str made from C text each time was most of setting one. */
enum {ROW_REQUESTS_PER_MINUTE, ROW_ERRORS_PER_MINUTE, ROW_INTERVAL, ROW_RESPONSE_TIME,
      ROW_LATENCY_SUM, ROW_ERROR_RATE, ROW_CLIENT_ERROR_RATE, ROW_WITHIN_LIMIT, ROW_NAMES};
static const char *row_texts[ROW_NAMES] = {
    "requests_per_minute", "errors_per_minute", "interval_s", "response_time_ms",
    "latency_sum_ms", "error_rate_percent", "client_error_rate_percent",
    "requests_within_limit"};
static PyObject *row_names[ROW_NAMES];

/* The attributes of an endpoint group (derive._Latency) that latency_groups reads, made
 * once. */
enum {G_BUCKETS, G_BY_STATUS, G_COUNT, G_TOTAL, G_ERRORS, G_CLIENT, G_TAGS, G_STATUS_TAGS,
      G_KEY, G_SIZE};
static PyObject *group_names[G_SIZE];
static PyObject *float_infinity;  /* the +Inf bucket's bound, looked up on idle endpoints */
static const char *group_texts[G_SIZE] = {
    "buckets", "by_status", "count", "total", "errors", "client_errors", "tags",
    "status_tags", "key"};

/* A value token longer than this is left to the pure parser (no valid one is). */
#define MAX_TOKEN 63

/* A growing text buffer (ASCII). */
typedef struct {
    char *data;
    Py_ssize_t size, capacity;
} Text;

static int
text_add(Text *text, const char *data, Py_ssize_t size)
{
    if (text->size + size > text->capacity) {
        Py_ssize_t capacity = (text->size + size) * 2 + 256;
        char *grown = PyMem_Realloc(text->data, (size_t)capacity);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        text->data = grown;
        text->capacity = capacity;
    }
    memcpy(text->data + text->size, data, (size_t)size);
    text->size += size;
    return 0;
}

/* Whether a float can take a new value in place: nobody but its holder (and `ours`
 * references we took ourselves) can see it, so no one can tell it from a new float. The
 * window sums change every bucket of every endpoint at each scrape: a new float and a
 * dict store each time were most of that. Not where the GIL is gone (no count is sure). */
static int
sole_float(PyObject *value, Py_ssize_t ours)
{
#ifdef Py_GIL_DISABLED
    (void)value;
    (void)ours;
    return 0;
#else
    return value != NULL && PyFloat_CheckExact(value) && Py_REFCNT(value) == ours;
#endif
}

/* dict[key] = dict.get(key, 0.0) + scale * amount, as the pure code computes it (the
 * multiplication left out where scale is 1, as the pure code leaves it out). */
static int dict_add_at(PyObject *dict, PyObject *key, PyObject *old, PyObject *amount,
                       double scale);

static int
dict_add(PyObject *dict, PyObject *key, PyObject *amount, double scale)
{
    PyObject *old = PyDict_GetItemWithError(dict, key);  /* borrowed */
    if (old == NULL && PyErr_Occurred())
        return -1;
    return dict_add_at(dict, key, old, amount, scale);
}

/* dict_add where dict[key] is known to be old (NULL: missing). */
static int
dict_add_at(PyObject *dict, PyObject *key, PyObject *old, PyObject *amount, double scale)
{
    PyObject *sum;
    if ((old == NULL || PyFloat_CheckExact(old)) && PyFloat_CheckExact(amount)) {
        double before = old == NULL ? 0.0 : PyFloat_AS_DOUBLE(old);
        double added = PyFloat_AS_DOUBLE(amount);
        if (sole_float(old, 1)) {
            ((PyFloatObject *)old)->ob_fval = before + (scale == 1.0 ? added : scale * added);
            return 0;
        }
        sum = PyFloat_FromDouble(before + (scale == 1.0 ? added : scale * added));
    }
    else {
        PyObject *zero = PyFloat_FromDouble(0.0), *factor = PyFloat_FromDouble(scale);
        PyObject *scaled = zero == NULL || factor == NULL ? NULL : scale == 1.0
            ? (Py_INCREF(amount), amount) : PyNumber_Multiply(factor, amount);
        sum = scaled == NULL ? NULL : PyNumber_Add(old != NULL ? old : zero, scaled);
        Py_XDECREF(scaled);
        Py_XDECREF(zero);
        Py_XDECREF(factor);
    }
    int failed = sum == NULL || PyDict_SetItem(dict, key, sum);
    Py_XDECREF(sum);
    return failed ? -1 : 0;
}

static int
append_pair(PyObject *list, PyObject *first, PyObject *second)
{
    PyObject *pair = PyTuple_Pack(2, first, second);
    if (pair == NULL)
        return -1;
    int failed = PyList_Append(list, pair);
    Py_DECREF(pair);
    return failed;
}

/* Hand one line to the pure parser; returns 1 if it ended the answer ("# EOF"), 0 if not,
 * -1 with an exception set. */
static int
slow_line(PyObject *slow, const char *start, Py_ssize_t length)
{
    PyObject *line = PyUnicode_DecodeUTF8(start, length, "surrogatepass");
    if (line == NULL)
        return -1;
    PyObject *ended = PyObject_CallOneArg(slow, line);
    Py_DECREF(line);
    if (ended == NULL)
        return -1;
    int result = PyObject_IsTrue(ended);
    Py_DECREF(ended);
    return result;
}

/* A number token of a usual line ([p, end) up to a blank): its end, and *value, or NULL
 * when it is not one plain token that float() reads ('_', non-ASCII, CR, ...). */
static const char *
number_token(const char *p, const char *end, double *value)
{
    const char *token = p;
    while (p < end && *p != ' ') {
        unsigned char c = (unsigned char)*p;
        if (c < ' ' || c >= 0x7f || c == '_')
            return NULL;
        p++;
    }
    Py_ssize_t length = p - token;
    if (length == 0 || length > MAX_TOKEN)
        return NULL;
    char copy[MAX_TOKEN + 1];
    memcpy(copy, token, (size_t)length);
    copy[length] = '\0';
    char *stop = NULL;
    /* The same routine float() uses; NULL: an overflow is +-inf, as float() gives. */
    double parsed = PyOS_string_to_double(copy, &stop, NULL);
    if (parsed == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    if (stop != copy + length)
        return NULL;
    *value = parsed;
    return p;
}

/* Powers of ten that doubles hold exactly. */
static const double exact_tens[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A plain decimal token ([-+]digits[.digits], up to a blank or end) with at most 15
 * significant digits and 22 decimals: its end and *value, else NULL. The digits make an
 * exact integer and the power of ten is exact, so one division is correctly rounded: the
 * very double float() reads (and PyOS_string_to_double, which number_token uses). */
static const char *
decimal_token(const char *p, const char *end, double *value)
{
    int negative = p < end && *p == '-';
    if (p < end && (*p == '-' || *p == '+'))
        p++;
    long long digits = 0;
    int significant = 0, decimals = 0, seen = 0, dot = 0;
    for (; p < end && *p != ' '; p++) {
        if (*p >= '0' && *p <= '9') {
            seen = 1;
            significant += digits != 0 || *p != '0';
            digits = digits * 10 + (*p - '0');
            decimals += dot;
            if (significant > 15 || decimals > 22)
                return NULL;
        }
        else if (*p == '.' && !dot)
            dot = 1;
        else
            return NULL;
    }
    if (!seen)
        return NULL;
    double magnitude = (double)digits / exact_tens[decimals];
    *value = negative ? -magnitude : magnitude;
    return p;
}

/* The value of a usual line's tail (" 12.5", or " 12.5 1700000000000" with a timestamp,
 * which is checked and dropped): 1 and *value, or 0 for the slow way. */
static int
plain_value(const char *p, const char *end, double *value)
{
    while (p < end && *p == ' ')
        p++;
    const char *token = p;
    p = decimal_token(token, end, value);
    if (p == NULL)
        p = number_token(token, end, value);
    if (p == NULL)
        return 0;
    if (p == end)
        return 1;
    while (p < end && *p == ' ')
        p++;
    double stamp;
    return p < end && number_token(p, end, &stamp) == end;
}

static int
starts_with(const char *p, Py_ssize_t length, const char *prefix, Py_ssize_t size)
{
    return length >= size && memcmp(p, prefix, (size_t)size) == 0;
}

static const char *
find_last(const char *start, const char *end, char wanted)
{
    for (const char *p = end; p > start; p--)
        if (p[-1] == wanted)
            return p - 1;
    return NULL;
}

static int
has_exemplar_mark(const char *start, Py_ssize_t length)
{
    for (Py_ssize_t i = 0; i + 2 < length; i++)
        if (start[i] == ' ' && start[i + 1] == '#' && start[i + 2] == ' ')
            return 1;
    return 0;
}

/* The series texts of an answer, in order, packed: per text two 16-bit lengths (what
 * it shares with the text before, what follows) and the bytes that follow. A page's
 * texts share long prefixes (a histogram's lines differ in their le), so this takes a
 * few dozen bytes per series where the texts themselves take about 150. */
#define MAX_KEY 65535

/* What a scan keeps across lines: the answer before (its packed texts, its series in the
 * same order, where the scan has got to in them, and the text there), the same being made
 * for this answer, and known (series text -> Series) filled from the answer before only
 * if a line is not where it was. A page comes back in the same order scrape after
 * scrape, so a line's series is found by comparing its text with the one at the same
 * place last time: no string made, hashed or looked up. */
typedef struct {
    PyObject *known, *samples;
    const unsigned char *before;  /* packed texts of the answer before */
    Py_ssize_t before_size, before_at, index;
    PyObject *before_series;      /* list */
    Text current;                 /* the text at before_at's entry, decoded */
    Py_ssize_t current_shared, current_length;  /* of the entry at before_at */
    int filled;                   /* known filled from the answer before */
    Text order, last;             /* this answer's packed texts; its last text */
    PyObject *series;             /* this answer's series, in order */
    int in_step;                  /* the last text made was the one before's last placed */
} Scan;

static void
read_entry(const unsigned char *at, Py_ssize_t *shared, Py_ssize_t *length)
{
    *shared = at[0] | (at[1] << 8);
    *length = at[2] | (at[3] << 8);
}

/* The packed entry at *at (see remember) is [start, start + length): 1 and *at moves
 * past it, current then holding its text; 0 when not; -1 on an error. */
static int
next_entry(const unsigned char *packed, Py_ssize_t size, Py_ssize_t *at, Text *current,
           const char *start, Py_ssize_t length)
{
    if (*at + 4 > size)
        return 0;
    Py_ssize_t shared, rest;
    read_entry(packed + *at, &shared, &rest);
    const unsigned char *tail = packed + *at + 4;
    if (shared + rest != length || shared > current->size || *at + 4 + rest > size
            || memcmp(start, current->data, (size_t)shared) != 0
            || memcmp(start + shared, tail, (size_t)rest) != 0)
        return 0;
    current->size = shared;
    if (text_add(current, (const char *)tail, rest))
        return -1;
    *at += 4 + rest;
    return 1;
}

/* Whether [start, start + length) is the text of the entry at the scan's place; if so
 * the scan moves past it. */
static int
at_place(Scan *scan, const char *start, Py_ssize_t length)
{
    Py_ssize_t entry = scan->before_at;
    int found = next_entry(scan->before, scan->before_size, &scan->before_at,
                           &scan->current, start, length);
    if (found <= 0)
        return found;
    scan->index++;
    if (!scan->in_step)
        return 1;
    /* The text before this one is the last one made: this entry is made as it was. */
    Py_ssize_t shared, rest;
    read_entry(scan->before + entry, &shared, &rest);
    scan->last.size = shared;
    if (text_add(&scan->order, (const char *)scan->before + entry, 4 + rest)
            || text_add(&scan->last, (const char *)scan->before + entry + 4, rest))
        return -1;
    return 2;
}

/* known filled with the answer before's texts and series (once per scan, and only when a
 * line was not where it was before). */
static int
fill_known(Scan *scan)
{
    scan->filled = 1;
    Text text = {NULL, 0, 0};
    Py_ssize_t at = 0, index = 0, count = PyList_GET_SIZE(scan->before_series);
    int failed = 0;
    while (!failed && at + 4 <= scan->before_size && index < count) {
        Py_ssize_t shared, rest;
        read_entry(scan->before + at, &shared, &rest);
        text.size = shared < text.size ? shared : text.size;
        failed = text_add(&text, (const char *)scan->before + at + 4, rest);
        at += 4 + rest;
        if (failed)
            break;
        PyObject *key = PyUnicode_DecodeUTF8(text.data, text.size, "surrogatepass");
        failed = key == NULL || PyDict_SetItem(scan->known, key,
                                               PyList_GET_ITEM(scan->before_series, index));
        Py_XDECREF(key);
        index++;
    }
    PyMem_Free(text.data);
    return failed ? -1 : 0;
}

/* This line's series text and series, next in the order being made. */
static int
remember(Scan *scan, const char *start, Py_ssize_t length, PyObject *series)
{
    scan->in_step = 0;
    if (length > MAX_KEY)
        return 0;  /* (such a line is looked up the slow way each time) */
    Py_ssize_t shared = 0, limit = length < scan->last.size ? length : scan->last.size;
    while (shared < limit && scan->last.data[shared] == start[shared])
        shared++;
    Py_ssize_t rest = length - shared;
    unsigned char head[4] = {shared & 0xff, shared >> 8, rest & 0xff, rest >> 8};
    scan->last.size = shared;
    if (text_add(&scan->order, (const char *)head, 4)
            || text_add(&scan->order, start + shared, rest)
            || text_add(&scan->last, start + shared, rest))
        return -1;
    return PyList_Append(scan->series, series);
}

static int
add_sample(PyObject *samples, PyObject *series, double value)
{
    PyObject *number = PyFloat_FromDouble(value);
    if (number == NULL)
        return -1;
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(number);
        return -1;
    }
    Py_INCREF(series);
    PyTuple_SET_ITEM(pair, 0, series);
    PyTuple_SET_ITEM(pair, 1, number);
    int failed = PyList_Append(samples, pair);
    Py_DECREF(pair);
    return failed ? -1 : 0;
}

/* Where a line's series text ends (the usual split: at the last '}', else at the first
 * blank); NULL when there is no blank nor brace. */
static const char *
key_end_of(const char *start, const char *end)
{
    const char *close = find_last(start, end, '}');
    if (close != NULL)
        return close + 1;
    return memchr(start, ' ', (size_t)(end - start));
}

/* One sample line the usual way: 1 done, 0 for the slow way, -1 on error. */
static int
fast_line(Scan *scan, const char *start, const char *end)
{
    const char *key_end = key_end_of(start, end);
    if (key_end == NULL)
        return 0;  /* no value: the pure parser says why */
    double value;
    if (!plain_value(key_end == end || *key_end != ' ' ? key_end : key_end + 1, end, &value))
        return 0;
    Py_ssize_t length = key_end - start;
    int placed = at_place(scan, start, length);
    if (placed < 0)
        return -1;
    if (placed) {
        PyObject *series = PyList_GET_ITEM(scan->before_series, scan->index - 1);
        int failed = placed == 2 ? PyList_Append(scan->series, series)
            : remember(scan, start, length, series);
        scan->in_step = 1;
        return failed || add_sample(scan->samples, series, value) ? -1 : 1;
    }
    if (!scan->filled && fill_known(scan))
        return -1;
    PyObject *key = PyUnicode_DecodeUTF8(start, length, "surrogatepass");
    if (key == NULL)
        return -1;
    PyObject *series = PyDict_GetItemWithError(scan->known, key);  /* borrowed */
    Py_DECREF(key);
    if (series == NULL)
        return PyErr_Occurred() ? -1 : 0;
    return remember(scan, start, length, series)
        || add_sample(scan->samples, series, value) ? -1 : 1;
}

/* After the pure parser took a line and added a sample: the line's series text and that
 * sample's series into the order, when known holds the text for it (a usual line of a
 * series new to this target). */
static int
after_slow(Scan *scan, const char *start, const char *end, Py_ssize_t count)
{
    if (PyList_GET_SIZE(scan->samples) != count + 1 || start[0] == ' ' || start[0] == '\t')
        return 0;
    const char *key_end = key_end_of(start, end);
    if (key_end == NULL)
        return 0;
    PyObject *key = PyUnicode_DecodeUTF8(start, key_end - start, "surrogatepass");
    if (key == NULL)
        return -1;
    PyObject *series = PyTuple_GET_ITEM(PyList_GET_ITEM(scan->samples, count), 0);
    PyObject *found = PyDict_GetItemWithError(scan->known, key);  /* borrowed */
    Py_DECREF(key);
    if (found == series)
        return remember(scan, start, key_end - start, series);
    return found == NULL && PyErr_Occurred() ? -1 : 0;
}

static void
scan_free(Scan *scan)
{
    PyMem_Free(scan->current.data);
    PyMem_Free(scan->order.data);
    PyMem_Free(scan->last.data);
    Py_XDECREF(scan->series);
}

PyDoc_STRVAR(scan_lines_doc,
"scan_lines(text, known, samples, slow, openmetrics, chunk, max_samples, before)\n"
"-> (ended, over, order)\n\n"
"Append text's samples to samples. known maps series text to Series; slow(line) parses one\n"
"line the pure way (and returns True at an OpenMetrics '# EOF'). After every chunk lines,\n"
"more than max_samples samples (when >= 0) stops the scan: over is then the line number the\n"
"pure parser names in its error; else 0. before is the order of the answer before, as\n"
"(packed texts, series) or (); order is this answer's, for the next scan. known is only\n"
"filled when a line is not where it was before (the caller may empty it after).");

static PyObject *
scan_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 8 || !PyTuple_CheckExact(args[7])) {
        PyErr_SetString(PyExc_TypeError, "scan_lines takes 8 arguments");
        return NULL;
    }
    PyObject *text = args[0], *known = args[1], *samples = args[2], *slow = args[3];
    int openmetrics = PyObject_IsTrue(args[4]);
    Py_ssize_t chunk = PyLong_AsSsize_t(args[5]);
    Py_ssize_t max_samples = PyLong_AsSsize_t(args[6]);
    if (openmetrics < 0 || (chunk == -1 && PyErr_Occurred()) ||
            (max_samples == -1 && PyErr_Occurred()))
        return NULL;
    if (!PyUnicode_Check(text) || !PyDict_CheckExact(known) || !PyList_CheckExact(samples)
            || chunk <= 0) {
        PyErr_SetString(PyExc_TypeError, "scan_lines: str, dict, list, callable expected");
        return NULL;
    }
    Py_ssize_t size;
    const char *buffer = PyUnicode_AsUTF8AndSize(text, &size);
    if (buffer == NULL)
        return NULL;  /* (lone surrogates: the caller parses the pure way) */
    const char *end = buffer + size, *line = buffer;
    Py_ssize_t number = 0, over = 0;
    int ended = 0;
    Scan scan = {.known = known, .samples = samples, .series = PyList_New(0), .in_step = 1};
    if (scan.series == NULL)
        return NULL;
    PyObject *before = args[7];
    if (PyTuple_GET_SIZE(before) == 2 && PyBytes_CheckExact(PyTuple_GET_ITEM(before, 0))
            && PyList_CheckExact(PyTuple_GET_ITEM(before, 1))) {
        scan.before = (const unsigned char *)PyBytes_AS_STRING(PyTuple_GET_ITEM(before, 0));
        scan.before_size = PyBytes_GET_SIZE(PyTuple_GET_ITEM(before, 0));
        scan.before_series = PyTuple_GET_ITEM(before, 1);
    }
    else {
        scan.before_series = NULL;
        scan.filled = 1;  /* (nothing before: known is what there is) */
    }
    while (line <= end) {
        const char *newline = memchr(line, '\n', (size_t)(end - line));
        const char *stop = newline ? newline : end;
        Py_ssize_t length = stop - line;
        int done = 0;
        if (length == 0)
            done = 1;
        else if (line[0] == '#') {
            if (starts_with(line, length, "# TYPE ", 7))
                done = 0;
            else if (openmetrics && starts_with(line, length, "# EOF", 5)) {
                ended = 1;
                break;
            }
            else
                done = 1;
        }
        else if (line[0] != ' ' && line[0] != '\t'
                 && !(openmetrics && has_exemplar_mark(line, length))) {
            done = fast_line(&scan, line, stop);
            if (done < 0)
                goto error;
        }
        if (!done) {
            Py_ssize_t count = PyList_GET_SIZE(samples);
            int result = slow_line(slow, line, length);
            if (result < 0 || (line[0] != '#' && after_slow(&scan, line, stop, count)))
                goto error;
            if (result) {
                ended = 1;
                break;
            }
        }
        number++;
        if (max_samples >= 0 && (number % chunk == 0 || newline == NULL)
                && PyList_GET_SIZE(samples) > max_samples) {
            over = ((number - 1) / chunk + 1) * chunk;
            break;
        }
        if (newline == NULL)
            break;
        line = newline + 1;
    }
    PyObject *packed = PyBytes_FromStringAndSize(scan.order.data ? scan.order.data : "",
                                                 scan.order.size);
    PyObject *result = packed == NULL ? NULL : Py_BuildValue(
        "(On(NO))", ended ? Py_True : Py_False, over, packed, scan.series);
    scan_free(&scan);
    return result;
error:
    scan_free(&scan);
    return NULL;
}

/* Kinds of a steady page's lines (ingest/steady.py gives them, one byte per sample line). */
enum { STEADY_SKIP, STEADY_BUCKET, STEADY_COUNTER, STEADY_GAUGE, STEADY_START };

/* What one steady scan reads and makes. */
typedef struct {
    const unsigned char *kinds;
    double *last, *fresh, *sums;
    const int *slots;
    Py_ssize_t lines, slot_count;
    PyObject *roles, *rest, *gauges;
} Steady;

/* (first, value) appended to list: 0, or -1 on an error. */
static int
append_number(PyObject *list, PyObject *first, double value)
{
    PyObject *number = PyFloat_FromDouble(value);
    int failed = number == NULL || append_pair(list, first, number);
    Py_XDECREF(number);
    return failed ? -1 : 0;
}

/* One sample line's value by its kind: 1 taken, 0 not steady, -1 on error. */
static int
steady_value(Steady *s, Py_ssize_t i, double value)
{
    double old = s->last[i];
    switch (s->kinds[i]) {
    case STEADY_BUCKET:
    case STEADY_COUNTER:
        if (!(old <= value && value < HUGE_VAL))
            return 0;  /* a reset, NaN or infinity: the tracker's slow rules */
        s->fresh[i] = value;
        if (s->kinds[i] == STEADY_BUCKET) {
            int slot = s->slots[i];
            if (slot < 0 || slot >= s->slot_count)
                return 0;
            s->sums[slot] += value - old;
            return 1;
        }
        return append_number(s->rest, PyList_GET_ITEM(s->roles, i), value - old) ? -1 : 1;
    case STEADY_GAUGE:
        return append_number(s->gauges, PyList_GET_ITEM(s->roles, i), value) ? -1 : 1;
    case STEADY_START:
        return value == old;  /* a new start time: the target restarted */
    default:
        return 1;
    }
}

/* The scan's line loop: 1 when every line was where it was and took its value, 0 when
 * not, -1 on error. */
static int
steady_lines(Steady *s, const char *line, const char *end, const unsigned char *packed,
             Py_ssize_t packed_size, PyObject *types, PyObject *slow)
{
    Text current = {NULL, 0, 0};
    Py_ssize_t at = 0, i = 0, types_at = 0, types_size = PyBytes_GET_SIZE(types);
    const char *known_types = PyBytes_AS_STRING(types);
    int result = 1;
    while (line < end && result > 0) {
        const char *newline = memchr(line, '\n', (size_t)(end - line));
        const char *stop = newline ? newline : end;
        Py_ssize_t length = stop - line;
        if (length == 0) {}
        else if (line[0] == '#') {
            if (!starts_with(line, length, "# TYPE ", 7)) {}
            else if (types_at + length < types_size && known_types[types_at + length] == '\n'
                     && memcmp(known_types + types_at, line, (size_t)length) == 0)
                types_at += length + 1;  /* as on the page before: well formed */
            else {
                int odd = slow_line(slow, line, length);
                result = odd < 0 ? -1 : !odd;
            }
        }
        else if (line[0] == ' ' || line[0] == '\t' || i >= s->lines)
            result = 0;
        else {
            const char *key_end = key_end_of(line, stop);
            double value;
            result = key_end == NULL ? 0
                : next_entry(packed, packed_size, &at, &current, line, key_end - line);
            if (result > 0)
                result = plain_value(key_end == stop || *key_end != ' ' ? key_end
                                     : key_end + 1, stop, &value)
                    ? steady_value(s, i++, value) : 0;
        }
        line = stop + 1;
    }
    PyMem_Free(current.data);
    if (result > 0 && i != s->lines)
        result = 0;  /* lines missing at the end (a page cut after a line) */
    return result;
}

/* Commit a steady scan: the counters' new values, and per group a copy of its template (its
 * bounds in slot order) with the slots' sums, set as its buckets. A copy takes the template's
 * table whole, where setting the bounds one by one into an empty dict grew it three times. */
static int
steady_commit(Steady *s, PyObject *groups, PyObject *buckets_name)
{
    for (Py_ssize_t i = 0; i < s->lines; i++)
        if (s->kinds[i] == STEADY_BUCKET || s->kinds[i] == STEADY_COUNTER)
            s->last[i] = s->fresh[i];
    Py_ssize_t slot = 0;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(groups); k++) {
        PyObject *pair = PyList_GET_ITEM(groups, k), *le, *zero;
        PyObject *template = PyTuple_GET_ITEM(pair, 1), *buckets = PyDict_Copy(template);
        Py_ssize_t at = 0;
        int failed = buckets == NULL;
        while (!failed && PyDict_Next(template, &at, &le, &zero)) {
            if (slot >= s->slot_count) {  /* (a template grew during the scan) */
                PyErr_SetString(PyExc_RuntimeError, "steady_scan: groups changed");
                Py_DECREF(buckets);
                return -1;
            }
            double value = s->sums[slot++];
            if (value == 0.0 && !signbit(value))
                continue;  /* the copy holds the template's 0.0 (an idle bucket: most) */
            PyObject *sum = PyFloat_FromDouble(value);
            failed = sum == NULL || PyDict_SetItem(buckets, le, sum) < 0;
            Py_XDECREF(sum);
        }
        failed = failed || PyObject_SetAttr(PyTuple_GET_ITEM(pair, 0), buckets_name, buckets);
        Py_XDECREF(buckets);
        if (failed)
            return -1;
    }
    return 0;
}

/* The slots of groups (each a (group, template) pair): its templates' sizes summed; -1
 * with an error set when an entry is not such a pair. */
static Py_ssize_t
steady_slot_count(PyObject *groups)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(groups); k++) {
        PyObject *pair = PyList_GET_ITEM(groups, k);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2
                || !PyDict_CheckExact(PyTuple_GET_ITEM(pair, 1))) {
            PyErr_SetString(PyExc_TypeError, "steady_scan: groups are (group, dict) pairs");
            return -1;
        }
        count += PyDict_GET_SIZE(PyTuple_GET_ITEM(pair, 1));
    }
    return count;
}

PyDoc_STRVAR(steady_scan_doc,
"steady_scan(text, packed, kinds, last, slots, roles, groups, types, slow, buckets_name)\n"
"            -> (rest, gauges) or None\n\n"
"Parse and derive in one pass a page whose every sample line is where it was (packed: the\n"
"texts of the page before, as scan_lines packs them), each with one plain value. Per line\n"
"kinds (bytes) says what its value is: 0 not stored, 1 a latency bucket, 2 another\n"
"counter, 3 a gauge, 4 the start time. last (array 'd') holds each counter's value before\n"
"and the start time; a counter must not go down (nor be NaN or infinite) and the start time\n"
"must not change. A bucket's increase goes into its slot (slots, array 'i'). groups holds\n"
"(group, template) pairs; the slots are numbered group after group, each group's in its\n"
"template's order (bound -> anything): a copy of the template with each bound's slot sum is\n"
"set as group.<buckets_name>. Other counters' increases come back as (role, increase) in\n"
"rest, gauges as (role, value). A TYPE line not the next of types (the page before's, each\n"
"ending in a newline) goes to slow(line), true when malformed. None, with nothing changed,\n"
"when the page is not steady; else last holds the new values.");

static PyObject *
steady_scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 10 || !PyUnicode_Check(args[0]) || !PyBytes_CheckExact(args[1])
            || !PyBytes_CheckExact(args[2]) || !PyList_CheckExact(args[5])
            || !PyList_CheckExact(args[6]) || !PyBytes_CheckExact(args[7])
            || !PyUnicode_Check(args[9])) {
        PyErr_SetString(PyExc_TypeError, "steady_scan(str, bytes, bytes, array, array, list, "
                        "list, bytes, callable, str)");
        return NULL;
    }
    Py_ssize_t slot_count = steady_slot_count(args[6]);
    if (slot_count < 0)
        return NULL;
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(args[0], &size);
    if (text == NULL) {  /* lone surrogates: the usual parse says what they are */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (size == 0 || text[size - 1] != '\n')
        Py_RETURN_NONE;  /* cut short: the usual parse refuses it */
    Py_buffer last = {0}, slots = {0};
    if (PyObject_GetBuffer(args[3], &last, PyBUF_WRITABLE | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[4], &slots, PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&last);
        return NULL;
    }
    Py_ssize_t lines = PyBytes_GET_SIZE(args[2]);
    Steady s = {
        .kinds = (const unsigned char *)PyBytes_AS_STRING(args[2]), .last = last.buf,
        .slots = slots.buf, .lines = lines, .slot_count = slot_count,
        .roles = args[5], .rest = PyList_New(0), .gauges = PyList_New(0)};
    PyObject *result = NULL;
    if (strcmp(last.format, "d") != 0 || strcmp(slots.format, "i") != 0
            || last.len != lines * (Py_ssize_t)sizeof(double)
            || slots.len != lines * (Py_ssize_t)sizeof(int)
            || PyList_GET_SIZE(args[5]) != lines) {
        PyErr_SetString(PyExc_ValueError, "steady_scan: one entry per line");
        goto done;
    }
    s.fresh = PyMem_Malloc((size_t)(lines ? lines : 1) * sizeof(double));
    s.sums = PyMem_Calloc((size_t)(s.slot_count ? s.slot_count : 1), sizeof(double));
    if (s.rest == NULL || s.gauges == NULL || s.fresh == NULL || s.sums == NULL) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    int steady = steady_lines(&s, text, text + size,
                              (const unsigned char *)PyBytes_AS_STRING(args[1]),
                              PyBytes_GET_SIZE(args[1]), args[7], args[8]);
    if (steady < 0)
        goto done;
    if (steady == 0) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    if (steady_commit(&s, args[6], args[9]) == 0)
        result = PyTuple_Pack(2, s.rest, s.gauges);
done:
    PyMem_Free(s.fresh);
    PyMem_Free(s.sums);
    Py_XDECREF(s.rest);
    Py_XDECREF(s.gauges);
    PyBuffer_Release(&last);
    PyBuffer_Release(&slots);
    return result;
}

/* old <= value < inf, as the pure hot loop compares (NaN fails both): 1, 0, or -1. */
static int
went_on(PyObject *old, PyObject *value)
{
    if (PyFloat_CheckExact(old) && PyFloat_CheckExact(value))
        return PyFloat_AS_DOUBLE(old) <= PyFloat_AS_DOUBLE(value)
            && PyFloat_AS_DOUBLE(value) < HUGE_VAL;
    int below = PyObject_RichCompareBool(old, value, Py_LE);
    if (below <= 0)
        return below;
    PyObject *inf = PyFloat_FromDouble(HUGE_VAL);
    int finite = inf == NULL ? -1 : PyObject_RichCompareBool(value, inf, Py_LT);
    Py_XDECREF(inf);
    return finite;
}

PyDoc_STRVAR(counter_increases_doc,
"counter_increases(values, last, increases) -> slow\n\n"
"For each key of values whose previous value in last is not above its new finite value,\n"
"set increases[key] to the difference; return the other keys, in order, as a list.");

static PyObject *
counter_increases(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyDict_Check(args[0]) || !PyDict_Check(args[1])
            || !PyDict_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "counter_increases(dict, dict, dict)");
        return NULL;
    }
    PyObject *values = args[0], *last = args[1], *increases = args[2];
    PyObject *slow = PyList_New(0);
    if (slow == NULL)
        return NULL;
    PyObject *key, *value;
    Py_ssize_t position = 0;
    while (PyDict_Next(values, &position, &key, &value)) {
        PyObject *old = PyDict_GetItemWithError(last, key);  /* borrowed */
        if (old == NULL && PyErr_Occurred())
            goto error;
        int on = old == NULL ? 0 : went_on(old, value);
        if (on < 0)
            goto error;
        PyObject *increase = !on ? NULL : PyFloat_CheckExact(old) && PyFloat_CheckExact(value)
            ? PyFloat_FromDouble(PyFloat_AS_DOUBLE(value) - PyFloat_AS_DOUBLE(old))
            : PyNumber_Subtract(value, old);
        if (on && (increase == NULL || PyDict_SetItem(increases, key, increase))) {
            Py_XDECREF(increase);
            goto error;
        }
        Py_XDECREF(increase);
        if (!on && PyList_Append(slow, key))
            goto error;
    }
    return slow;
error:
    Py_DECREF(slow);
    return NULL;
}

PyDoc_STRVAR(sort_samples_doc,
"sort_samples(samples, roles, classify, cumulative_from, gauge) -> (cumulative, gauges,\n"
"start, others)\n\n"
"derive's first pass: each (series, value) by its role (roles[series], else\n"
"classify(series), stored): cumulative ones (kind >= cumulative_from) into a dict, gauges\n"
"as (role, value), any other kind as the start time; others counts the samples that are\n"
"not cumulative.");

static PyObject *
sort_samples(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5 || !PyList_CheckExact(args[0]) || !PyDict_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "sort_samples(list, dict, callable, int, int)");
        return NULL;
    }
    PyObject *samples = args[0], *roles = args[1], *classify = args[2];
    long cumulative_from = PyLong_AsLong(args[3]), gauge = PyLong_AsLong(args[4]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *cumulative = PyDict_New(), *gauges = PyList_New(0), *start = Py_None;
    Py_ssize_t others = 0;
    Py_INCREF(start);
    if (cumulative == NULL || gauges == NULL)
        goto error;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(samples); i++) {
        PyObject *pair = PyList_GET_ITEM(samples, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "samples are (series, value) pairs");
            goto error;
        }
        PyObject *series = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        PyObject *role = PyDict_GetItemWithError(roles, series);  /* borrowed */
        if (role == NULL) {
            if (PyErr_Occurred())
                goto error;
            PyObject *made = PyObject_CallOneArg(classify, series);
            if (made == NULL)
                goto error;
            int failed = PyDict_SetItem(roles, series, made);
            Py_DECREF(made);
            if (failed)
                goto error;
            role = made;  /* (roles holds it) */
        }
        if (role == Py_None) {
            others++;
            continue;
        }
        if (!PyTuple_Check(role) || PyTuple_GET_SIZE(role) < 1) {
            PyErr_SetString(PyExc_TypeError, "a role is a tuple or None");
            goto error;
        }
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(role, 0));
        if (kind == -1 && PyErr_Occurred())
            goto error;
        if (kind >= cumulative_from) {
            if (PyDict_SetItem(cumulative, series, value))
                goto error;
            continue;
        }
        others++;
        if (kind == gauge) {
            if (append_pair(gauges, role, value))
                goto error;
        }
        else {
            Py_INCREF(value);
            Py_SETREF(start, value);
        }
    }
    PyObject *result = Py_BuildValue("(NNNn)", cumulative, gauges, start, others);
    return result;
error:
    Py_XDECREF(cumulative);
    Py_XDECREF(gauges);
    Py_DECREF(start);
    return NULL;
}

PyDoc_STRVAR(add_buckets_doc,
"add_buckets(increases, roles, bucket, buckets_name) -> rest\n\n"
"derive's accumulation of latency buckets: for each series' increase whose role has kind\n"
"bucket, role[1].<buckets_name>[role[3]] grows by the increase. Returns the other\n"
"(role, increase) pairs, in order, for the pure code; series without a role are skipped.");

static PyObject *
add_buckets(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4 || !PyDict_Check(args[0]) || !PyDict_CheckExact(args[1])
            || !PyUnicode_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "add_buckets(dict, dict, int, str)");
        return NULL;
    }
    PyObject *increases = args[0], *roles = args[1], *name = args[3];
    long bucket = PyLong_AsLong(args[2]);
    if (bucket == -1 && PyErr_Occurred())
        return NULL;
    PyObject *rest = PyList_New(0);
    if (rest == NULL)
        return NULL;
    PyObject *series, *increase;
    Py_ssize_t position = 0;
    while (PyDict_Next(increases, &position, &series, &increase)) {
        PyObject *role = PyDict_GetItemWithError(roles, series);  /* borrowed */
        if (role == NULL) {
            if (PyErr_Occurred())
                goto error;
            continue;
        }
        if (role == Py_None)
            continue;
        if (!PyTuple_Check(role) || PyTuple_GET_SIZE(role) < 1) {
            PyErr_SetString(PyExc_TypeError, "a role is a tuple or None");
            goto error;
        }
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(role, 0));
        if (kind == -1 && PyErr_Occurred())
            goto error;
        if (kind != bucket || PyTuple_GET_SIZE(role) < 4) {
            if (append_pair(rest, role, increase))
                goto error;
            continue;
        }
        PyObject *buckets = PyObject_GetAttr(PyTuple_GET_ITEM(role, 1), name);
        if (buckets == NULL)
            goto error;
        if (!PyDict_CheckExact(buckets)) {
            Py_DECREF(buckets);
            PyErr_SetString(PyExc_TypeError, "buckets is a dict");
            goto error;
        }
        int failed = dict_add(buckets, PyTuple_GET_ITEM(role, 3), increase, 1.0);
        Py_DECREF(buckets);
        if (failed)
            goto error;
    }
    return rest;
error:
    Py_DECREF(rest);
    return NULL;
}

/* Every value of a dict a float: the fast paths below need no other case. */
static int
all_floats(PyObject *dict, int keys_too)
{
    PyObject *key, *value;
    Py_ssize_t position = 0;
    while (PyDict_Next(dict, &position, &key, &value))
        if (!PyFloat_CheckExact(value) || (keys_too && !PyFloat_CheckExact(key)))
            return 0;
    return 1;
}

/* One step of a walk side by side with target: target[key] += sign * value, where target's
 * next entry (at) is key's while side_by_side holds; from the first that is not, a lookup
 * (side_by_side then stays 0). */
static int
add_walking(PyObject *target, Py_ssize_t *at, int *side_by_side, PyObject *key,
            PyObject *value, double sign)
{
    PyObject *mine_key, *mine;
    if (*side_by_side && PyDict_Next(target, at, &mine_key, &mine) && mine_key == key)
        return dict_add_at(target, key, mine, value, sign);
    *side_by_side = 0;
    return dict_add(target, key, value, sign);
}

/* target[k] += sign * source[k] for every k of source: 0, or -1 on an error. Window sums
 * and the counts added to them hold the same bounds (the same float objects) in the same
 * order, so both are walked side by side while their keys are the same objects: such a
 * key is the entry a lookup would find, and neither hashing a float nor a lookup is
 * needed. From the first key that differs, each is looked up. (A value replaced in place
 * leaves the walk over target as it was: no key is added while walking it.) */
static int
add_dict(PyObject *target, PyObject *source, double sign)
{
    PyObject *key, *value;
    Py_ssize_t position = 0, at = 0;
    int side_by_side = 1;
    while (PyDict_Next(source, &position, &key, &value))
        if (add_walking(target, &at, &side_by_side, key, value, sign))
            return -1;
    return 0;
}

PyDoc_STRVAR(add_scaled_doc,
"add_scaled(target, source, sign) -> True, or None to leave it to the pure code\n\n"
"target[k] = target.get(k, 0.0) + sign * source[k] for every k of source (float dicts).");

static PyObject *
add_scaled(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyDict_CheckExact(args[0]) || !PyDict_CheckExact(args[1])
            || !PyFloat_CheckExact(args[2]) || !all_floats(args[1], 0))
        Py_RETURN_NONE;
    if (add_dict(args[0], args[1], PyFloat_AS_DOUBLE(args[2])))
        return NULL;
    Py_RETURN_TRUE;
}

/* A bucket dict's entry: its bound as a double, and its key and value (owned). */
typedef struct {
    double le;
    PyObject *key, *value;
} Bucket;

static void
release_buckets(Bucket *entries, Py_ssize_t size)
{
    for (Py_ssize_t i = 0; i < size; i++) {
        Py_DECREF(entries[i].key);
        Py_DECREF(entries[i].value);
    }
}

#define FEW_BUCKETS 64  /* sorted on the stack up to this many; a histogram has ~25 */

/* The entries of a dict of floats (checked by the caller) sorted by bound, into entries (of
 * room for all of them): the order sorted() gives the bounds, which are distinct numbers.
 * Sorting (bound, count) tuples compared each pair through the objects, most of a row's
 * cost; a page lists its buckets in order, so an insertion sort of doubles does next to
 * nothing. 1 when a bound is NaN (the order is then left to the pure code). */
static int
sort_buckets(PyObject *dict, Bucket *entries)
{
    PyObject *key, *value;
    Py_ssize_t position = 0, size = 0;
    while (PyDict_Next(dict, &position, &key, &value)) {
        double le = PyFloat_AS_DOUBLE(key);
        if (isnan(le)) {
            release_buckets(entries, size);
            return 1;
        }
        Py_ssize_t at = size++;
        for (; at > 0 && entries[at - 1].le > le; at--)
            entries[at] = entries[at - 1];
        entries[at] = (Bucket){le, Py_NewRef(key), Py_NewRef(value)};
    }
    return 0;
}

/* Room for a dict's sorted entries: few when they fit, else from the heap (NULL: no memory,
 * the error set). */
static Bucket *
bucket_room(PyObject *dict, Bucket *few)
{
    Py_ssize_t size = PyDict_GET_SIZE(dict);
    if (size <= FEW_BUCKETS)
        return few;
    Bucket *room = PyMem_New(Bucket, (size_t)size);
    if (room == NULL)
        PyErr_NoMemory();
    return room;
}

static void
free_buckets(Bucket *entries, Py_ssize_t size, Bucket *few)
{
    release_buckets(entries, size);
    if (entries != few)
        PyMem_Free(entries);
}

PyDoc_STRVAR(normalize_doc,
"normalize(buckets, epsilon) -> sorted (bound, count) pairs, or None for the pure code\n\n"
"quantile.normalize over a dict bound -> count of floats: sorted by bound, counts made\n"
"non-decreasing (a count within epsilon of its predecessor, relatively, counts as equal).");

/* normalize's count of a bucket: raised to the one before where it is lower, or equal to it
 * within epsilon, relatively (0.0 + count, as the pure merge of a single bound gives). */
static double
raised(double count, double previous, double epsilon)
{
    count = 0.0 + count;
    return count < previous || fabs(count - previous) <= epsilon * fabs(previous)
        ? previous : count;
}

/* normalize of a dict whose keys and values are floats (checked by the caller); None when
 * a bound is NaN (the pure code's to order). */
static PyObject *
normalized(PyObject *buckets, double epsilon)
{
    Bucket few[FEW_BUCKETS], *ordered = bucket_room(buckets, few);
    if (ordered == NULL)
        return NULL;
    Py_ssize_t size = PyDict_GET_SIZE(buckets);
    if (sort_buckets(buckets, ordered)) {
        free_buckets(ordered, 0, few);
        Py_RETURN_NONE;
    }
    PyObject *out = PyList_New(size);
    if (out == NULL) {
        free_buckets(ordered, size, few);
        return NULL;
    }
    double previous = 0.0;
    for (Py_ssize_t i = 0; i < size; i++) {
        double count = raised(PyFloat_AS_DOUBLE(ordered[i].value), previous, epsilon);
        PyObject *number = PyFloat_FromDouble(count);
        PyObject *pair = number == NULL ? NULL : PyTuple_Pack(2, ordered[i].key, number);
        Py_XDECREF(number);
        if (pair == NULL) {
            free_buckets(ordered, size, few);
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, pair);
        previous = count;
    }
    free_buckets(ordered, size, few);
    return out;
}

static PyObject *
normalize_buckets(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyDict_CheckExact(args[0]) || !PyFloat_CheckExact(args[1])
            || !all_floats(args[0], 1))
        Py_RETURN_NONE;
    return normalized(args[0], PyFloat_AS_DOUBLE(args[1]));
}

/* A copy of the names dict's entries keyed by the bound's bits: looking a float up in a
 * dict hashes it (a few dozen instructions), for every bucket of every row. The dict only
 * grows and a name never changes, so a copied entry stays true; entries are copied only
 * from the dict, never from name_of, so the dict stays the one truth (0.0 and -0.0 are one
 * key in both). A memo belongs to one names dict; another one starts it anew. */
#define NAME_SLOTS 256
#define NAME_PROBES 8
static struct {
    uint64_t bits;
    PyObject *name;  /* NULL: empty */
} name_memo[NAME_SLOTS];
static PyObject *name_memo_of;

static void
name_memo_reset(PyObject *names)
{
    for (int i = 0; i < NAME_SLOTS; i++)
        Py_CLEAR(name_memo[i].name);
    Py_XSETREF(name_memo_of, Py_NewRef(names));
}

/* The field name of a bound: names[bound], else name_of(bound). New reference. */
static PyObject *
field_of(PyObject *names, PyObject *name_of, PyObject *bound)
{
    double le = PyFloat_AS_DOUBLE(bound), key = le == 0.0 ? 0.0 : le;
    uint64_t bits;
    memcpy(&bits, &key, sizeof bits);
    size_t slot = (size_t)((bits * 0x9E3779B97F4A7C15ULL) >> 56) % NAME_SLOTS;
#ifdef Py_GIL_DISABLED
    int memo = 0;  /* (one table for every thread: only under the GIL) */
#else
    int memo = !isnan(le);
#endif
    if (memo && names != name_memo_of)
        name_memo_reset(names);
    for (int i = 0; memo && i < NAME_PROBES; i++) {
        size_t at = (slot + (size_t)i) % NAME_SLOTS;
        if (name_memo[at].name == NULL)
            break;
        if (name_memo[at].bits == bits)
            return Py_NewRef(name_memo[at].name);
    }
    PyObject *name = PyDict_GetItemWithError(names, bound);
    if (name == NULL)
        return PyErr_Occurred() ? NULL : PyObject_CallOneArg(name_of, bound);
    for (int i = 0; memo && PyUnicode_CheckExact(name) && i < NAME_PROBES; i++) {
        size_t at = (slot + (size_t)i) % NAME_SLOTS;
        if (name_memo[at].name == NULL) {
            name_memo[at].bits = bits;
            name_memo[at].name = Py_NewRef(name);
            break;
        }
    }
    return Py_NewRef(name);
}

static int
set_field(PyObject *out, PyObject *names, PyObject *name_of, PyObject *bound, double value)
{
    PyObject *name = field_of(names, name_of, bound);
    PyObject *number = name == NULL ? NULL : PyFloat_FromDouble(value);
    int failed = number == NULL || PyDict_SetItem(out, name, number);
    Py_XDECREF(name);
    Py_XDECREF(number);
    return failed ? -1 : 0;
}

/* into[k] += v for each sorted entry, in order. A service's sum holds the bounds of its
 * endpoints' rows, the same float objects in the same (sorted) order: walked side by side
 * with the entries while its keys are theirs, as add_dict walks two dicts. */
static int
add_sorted(PyObject *into, const Bucket *entries, Py_ssize_t size)
{
    Py_ssize_t at = 0;
    int side_by_side = 1;
    for (Py_ssize_t i = 0; i < size; i++)
        if (add_walking(into, &at, &side_by_side, entries[i].key, entries[i].value, 1.0))
            return -1;
    return 0;
}

PyDoc_STRVAR(bucket_fields_doc,
"bucket_fields(buckets, into, tolerance, names, name_of) -> fields, or None\n\n"
"bucket_fields.fields over a dict of floats: None when the buckets are not cumulative (or\n"
"not all floats): the pure code then says why. into (a dict or None) gets the buckets\n"
"added only when the row is made.");

static PyObject *
bucket_fields(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5 || !PyDict_CheckExact(args[0]) || !PyFloat_CheckExact(args[2])
            || !PyDict_CheckExact(args[3]) || !all_floats(args[0], 1)
            || (args[1] != Py_None && !PyDict_CheckExact(args[1])))
        Py_RETURN_NONE;
    PyObject *buckets = args[0], *into = args[1], *names = args[3], *name_of = args[4];
    double tolerance = PyFloat_AS_DOUBLE(args[2]);
    Bucket few[FEW_BUCKETS], *ordered = bucket_room(buckets, few);
    if (ordered == NULL)
        return NULL;
    Py_ssize_t size = PyDict_GET_SIZE(buckets);
    if (sort_buckets(buckets, ordered)) {
        free_buckets(ordered, 0, few);
        Py_RETURN_NONE;
    }
    PyObject *out = PyDict_New(), *pending = PyList_New(0), *previous = NULL;
    if (out == NULL || pending == NULL)
        goto error;
    double below = 0.0;
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *le = ordered[i].key;
        double count = PyFloat_AS_DOUBLE(ordered[i].value);
        double own = count - below;
        if (own < 0.0) {
            if (-own > tolerance * below) {  /* not cumulative: the pure code raises */
                free_buckets(ordered, size, few);
                Py_DECREF(out);
                Py_DECREF(pending);
                Py_RETURN_NONE;
            }
            own = 0.0;
        }
        else
            below = count;
        if (own == 0.0) {
            if (PyDict_GET_SIZE(out)) {
                if (PyList_Append(pending, le))
                    goto error;
            }
            else
                previous = le;  /* (held by ordered) */
            continue;
        }
        if (PyDict_GET_SIZE(out) == 0 && previous != NULL
                && set_field(out, names, name_of, previous, 0.0))
            goto error;
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(pending); j++)
            if (set_field(out, names, name_of, PyList_GET_ITEM(pending, j), 0.0))
                goto error;
        if (PyList_SetSlice(pending, 0, PyList_GET_SIZE(pending), NULL))
            goto error;
        if (set_field(out, names, name_of, le, own))
            goto error;
    }
    if (into != Py_None && add_sorted(into, ordered, size))
        goto error;
    free_buckets(ordered, size, few);
    Py_DECREF(pending);
    return out;
error:
    free_buckets(ordered, size, few);
    Py_XDECREF(out);
    Py_XDECREF(pending);
    return NULL;
}

/* The decimal digits of n (a '-' first when negative) at out, as "%lld" writes them
 * without printf's parsing of a format: the counts of every row are whole numbers. */
static Py_ssize_t
decimal_digits(long long n, char *out)
{
    char reversed[24];
    unsigned long long left = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
    Py_ssize_t count = 0, size = 0;
    do {
        reversed[count++] = (char)('0' + left % 10);
        left /= 10;
    } while (left);
    if (n < 0)
        out[size++] = '-';
    while (count)
        out[size++] = reversed[--count];
    return size;
}

/* repr(value) of a finite float, at out (room for 32): the shortest digits that read back
 * as value, the closest of them to it (Ryu's d2d: the digits repr's dtoa finds, at a tenth
 * of the cost), laid out as repr lays them out: an exponent of at least two digits below
 * 1e-4 and from 1e16 on, else the digits around a point, ".0" after a whole number. */
static Py_ssize_t
float_repr_into(double value, char *out)
{
    uint64_t bits = double_to_bits(value);
    uint64_t mantissa = bits & ((1ull << DOUBLE_MANTISSA_BITS) - 1);
    uint32_t exponent = (uint32_t)((bits >> DOUBLE_MANTISSA_BITS)
                                   & ((1u << DOUBLE_EXPONENT_BITS) - 1));
    Py_ssize_t size = 0;
    if (bits >> 63)
        out[size++] = '-';
    if (exponent == 0 && mantissa == 0) {
        memcpy(out + size, "0.0", 3);
        return size + 3;
    }
    floating_decimal_64 decimal = d2d(mantissa, exponent);
    char digits[17];
    int count = (int)decimalLength17(decimal.mantissa), point = count + decimal.exponent;
    for (int i = count - 1; i >= 0; i--) {
        digits[i] = (char)('0' + decimal.mantissa % 10);
        decimal.mantissa /= 10;
    }
    if (point <= -4 || point > 16) {
        out[size++] = digits[0];
        if (count > 1) {
            out[size++] = '.';
            memcpy(out + size, digits + 1, (size_t)count - 1);
            size += count - 1;
        }
        int power = point - 1;
        out[size++] = 'e';
        out[size++] = power < 0 ? '-' : '+';
        if (power < 0)
            power = -power;
        if (power < 10)
            out[size++] = '0';
        return size + decimal_digits(power, out + size);
    }
    if (point <= 0) {
        memcpy(out + size, "0.000", (size_t)(2 - point));
        size += 2 - point;
        memcpy(out + size, digits, (size_t)count);
        return size + count;
    }
    if (point < count) {
        memcpy(out + size, digits, (size_t)point);
        out[size + point] = '.';
        memcpy(out + size + point + 1, digits + point, (size_t)(count - point));
        return size + count + 1;
    }
    memcpy(out + size, digits, (size_t)count);
    size += count;
    memset(out + size, '0', (size_t)(point - count));
    size += point - count;
    memcpy(out + size, ".0", 2);
    return size + 2;
}

/* repr(value) of a finite float: integral values below 1e16 as their digits and ".0" (the
 * most common figures: counts), the others through float_repr_into. */
static int
text_add_float(Text *text, double value)
{
    char digits[32];
    if (value == floor(value) && fabs(value) < 1e16 && !(value == 0.0 && signbit(value))) {
        Py_ssize_t size = decimal_digits((long long)value, digits);
        memcpy(digits + size, ".0", 2);
        return text_add(text, digits, size + 2);
    }
    return text_add(text, digits, float_repr_into(value, digits));
}

/* A point's fields as 'k=v,...' into text (every field a float with an ASCII key; NaN and
 * infinities left out, as are names never written): 1, or 0 where the point needs the pure
 * code (text as it was), or -1 on an error. */
static int
fields_into(Text *text, PyObject *fields, PyObject *keys, PyObject *key_of)
{
    Py_ssize_t start = text->size, position = 0;
    PyObject *key, *value;
    int first = 1;
    while (PyDict_Next(fields, &position, &key, &value)) {
        if (value == Py_None)
            continue;
        if (!PyFloat_CheckExact(value))
            goto pure;  /* a string or another number: the pure loop */
        PyObject *escaped = PyDict_GetItemWithError(keys, key);  /* borrowed */
        if (escaped != NULL)
            Py_INCREF(escaped);
        else if (PyErr_Occurred() || (escaped = PyObject_CallOneArg(key_of, key)) == NULL)
            return -1;
        if (!PyUnicode_Check(escaped) || !PyUnicode_IS_ASCII(escaped)) {
            Py_DECREF(escaped);
            goto pure;
        }
        double number = PyFloat_AS_DOUBLE(value);
        Py_ssize_t size = PyUnicode_GET_LENGTH(escaped);
        if (size == 0 || !isfinite(number)) {
            Py_DECREF(escaped);
            continue;
        }
        int failed = (!first && text_add(text, ",", 1))
            || text_add(text, (const char *)PyUnicode_DATA(escaped), size)
            || text_add_float(text, number);
        Py_DECREF(escaped);
        if (failed)
            return -1;
        first = 0;
    }
    return 1;
pure:
    text->size = start;
    return 0;
}

/* The UTF-8 of a str into text: 0, or -1 on an error (a lone surrogate, as str.encode). */
static int
text_add_str(Text *text, PyObject *str)
{
    if (!PyUnicode_Check(str)) {
        PyErr_SetString(PyExc_TypeError, "a line or a head must be a str");
        return -1;
    }
    Py_ssize_t size;
    const char *data = PyUnicode_AsUTF8AndSize(str, &size);
    return data == NULL ? -1 : text_add(text, data, size);
}

/* One point of the usual shape (a 4-tuple: str measurement, dict tags, dict fields, int
 * timestamp) as a line into text, its fields made in scratch first (a line is written only
 * when it has one): 1, or 0 where it needs the pure code (text as it was), or -1 on an
 * error. The head is the encoder's cached one (made by head_of when missing). */
static int
point_into(Text *text, Text *scratch, PyObject *point, PyObject *heads, PyObject *keys,
           PyObject *key_of, PyObject *head_of)
{
    if (!PyTuple_CheckExact(point) || PyTuple_GET_SIZE(point) != 4)
        return 0;
    PyObject *measurement = PyTuple_GET_ITEM(point, 0), *tags = PyTuple_GET_ITEM(point, 1);
    PyObject *fields = PyTuple_GET_ITEM(point, 2), *stamp = PyTuple_GET_ITEM(point, 3);
    if (!PyUnicode_CheckExact(measurement) || !PyDict_CheckExact(tags)
            || !PyDict_CheckExact(fields) || !PyLong_CheckExact(stamp))
        return 0;
    int overflow;
    long long ms = PyLong_AsLongLongAndOverflow(stamp, &overflow);
    if (overflow || (ms == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    scratch->size = 0;
    int found = fields_into(scratch, fields, keys, key_of);
    if (found <= 0 || scratch->size == 0)  /* the pure code, an error, or no field */
        return found;
    /* The head: (measurement, *tags.keys(), *tags.values()) as the encoder keys it. */
    Py_ssize_t count = PyDict_GET_SIZE(tags), position = 0, i = 0;
    PyObject *key = PyTuple_New(1 + 2 * count), *name, *value, *head;
    if (key == NULL)
        return -1;
    Py_INCREF(measurement);
    PyTuple_SET_ITEM(key, 0, measurement);
    while (PyDict_Next(tags, &position, &name, &value)) {
        Py_INCREF(name);
        Py_INCREF(value);
        PyTuple_SET_ITEM(key, 1 + i, name);
        PyTuple_SET_ITEM(key, 1 + count + i, value);
        i++;
    }
    head = PyDict_GetItemWithError(heads, key);  /* borrowed */
    Py_DECREF(key);
    if (head != NULL)
        Py_INCREF(head);
    else if (PyErr_Occurred() || (head = PyObject_CallFunctionObjArgs(
            head_of, measurement, tags, NULL)) == NULL)
        return -1;
    char digits[32];
    Py_ssize_t size = 1 + decimal_digits(ms, digits + 1);
    digits[0] = ' ';
    digits[size++] = '\n';
    int failed = text_add_str(text, head) || text_add(text, " ", 1)
        || text_add(text, scratch->data, scratch->size) || text_add(text, digits, size);
    Py_DECREF(head);
    return failed ? -1 : 1;
}

PyDoc_STRVAR(encode_points_doc,
"encode_points(points, heads, keys, head_of, key_of, line_of) -> bytes\n\n"
"LineEncoder.encode: each point's line and a newline, as UTF-8. Points of the usual shape\n"
"whose fields are all floats are written here, with heads (the encoder's cache, keyed\n"
"(measurement, *tags.keys(), *tags.values()); head_of(measurement, tags) makes one) and keys\n"
"(escaped 'name=' by field name; key_of(name) makes one); line_of(point) gives any other\n"
"point's line ('' for none).");

static PyObject *
encode_points(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 6 || !PyDict_CheckExact(args[1]) || !PyDict_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "encode_points takes points, two dicts and three "
                        "callables");
        return NULL;
    }
    PyObject *points = PySequence_Fast(args[0], "points must be iterable");
    if (points == NULL)
        return NULL;
    Text text = {NULL, 0, 0}, scratch = {NULL, 0, 0};
    Py_ssize_t count = PySequence_Fast_GET_SIZE(points);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *point = PySequence_Fast_GET_ITEM(points, i);
        int done = point_into(&text, &scratch, point, args[1], args[2], args[4], args[3]);
        if (done < 0)
            goto error;
        if (done == 0) {
            PyObject *line = PyObject_CallOneArg(args[5], point);
            int failed = line == NULL || text_add_str(&text, line)
                || (PyUnicode_GET_LENGTH(line) && text_add(&text, "\n", 1));
            Py_XDECREF(line);
            if (failed)
                goto error;
        }
    }
    Py_DECREF(points);
    PyMem_Free(scratch.data);
    PyObject *out = PyBytes_FromStringAndSize(text.data ? text.data : "", text.size);
    PyMem_Free(text.data);
    return out;
error:
    Py_DECREF(points);
    PyMem_Free(scratch.data);
    PyMem_Free(text.data);
    return NULL;
}

/* Series: a parsed series (metric name, sorted label pairs) with a canonical identity, as
 * model.Series in the pure core. Compared and hashed by identity. Not tracked by the cycle
 * collector (it holds only strings and tuples of strings, so it can be in no cycle), and
 * interned without weak references: `table` maps (name, labels) to the address of the one
 * live Series, as an int that holds no reference; a Series takes its own entry out when it
 * is freed. A target that churns series adds no object for the collector to walk. */
typedef struct {
    PyObject_HEAD
    PyObject *key; /* (name, labels): also its entry in `table` */
} SeriesObject;

static PyTypeObject *series_type;
static PyObject *series_table; /* never freed: a Series may be freed at any time */

static void
series_dealloc(SeriesObject *self)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyObject *found = PyDict_GetItemWithError(series_table, self->key);
    if (found != NULL && PyLong_AsVoidPtr(found) == (void *)self)
        PyDict_DelItem(series_table, self->key);
    PyErr_Clear();
    PyErr_Restore(type, value, traceback);
    Py_DECREF(self->key);
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
series_get_name(SeriesObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(PyTuple_GET_ITEM(self->key, 0));
}

static PyObject *
series_get_labels(SeriesObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(PyTuple_GET_ITEM(self->key, 1));
}

PyDoc_STRVAR(series_label_doc, "label(name, default='')\n--\n\nThe value of label `name`.");

static PyObject *
series_label(SeriesObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "label(name, default='')");
        return NULL;
    }
    PyObject *labels = PyTuple_GET_ITEM(self->key, 1);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(labels); i++) {
        PyObject *pair = PyTuple_GET_ITEM(labels, i);
        int same = PyObject_RichCompareBool(PyTuple_GET_ITEM(pair, 0), args[0], Py_EQ);
        if (same < 0)
            return NULL;
        if (same)
            return Py_NewRef(PyTuple_GET_ITEM(pair, 1));
    }
    return nargs == 2 ? Py_NewRef(args[1]) : PyUnicode_FromStringAndSize("", 0);
}

static PyObject *
series_repr(SeriesObject *self)
{
    return PyUnicode_FromFormat("Series(name=%R, labels=%R)", PyTuple_GET_ITEM(self->key, 0),
                                PyTuple_GET_ITEM(self->key, 1));
}

static PyObject *
series_new(PyTypeObject *Py_UNUSED(type), PyObject *Py_UNUSED(args),
           PyObject *Py_UNUSED(kwargs))
{
    PyErr_SetString(PyExc_TypeError, "a Series is made by intern_series(name, labels)");
    return NULL;
}

static PyGetSetDef series_getset[] = {
    {"name", (getter)series_get_name, NULL, "The metric name.", NULL},
    {"labels", (getter)series_get_labels, NULL, "Sorted (name, value) label pairs.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef series_methods[] = {
    {"label", (PyCFunction)(void (*)(void))series_label, METH_FASTCALL, series_label_doc},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot series_slots[] = {
    {Py_tp_dealloc, series_dealloc},
    {Py_tp_repr, series_repr},
    {Py_tp_new, series_new},
    {Py_tp_getset, series_getset},
    {Py_tp_methods, series_methods},
    {Py_tp_doc, "A parsed series with a canonical identity (see intern_series)."},
    {0, NULL},
};

static PyType_Spec series_spec = {
    .name = "promflux.bridge._native.Series",
    .basicsize = sizeof(SeriesObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = series_slots,
};

PyDoc_STRVAR(intern_series_doc, "intern_series(name, labels)\n--\n\n"
             "The one live Series for `name` and `labels` (sorted pairs).");

static PyObject *
intern_series(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2 || !PyUnicode_Check(args[0])
        || (nargs == 2 && !PyTuple_Check(args[1]))) {
        PyErr_SetString(PyExc_TypeError, "intern_series(name: str, labels: tuple)");
        return NULL;
    }
    PyObject *empty = nargs == 2 ? NULL : PyTuple_New(0);
    if (nargs == 1 && empty == NULL)
        return NULL;
    PyObject *key = PyTuple_Pack(2, args[0], nargs == 2 ? args[1] : empty);
    Py_XDECREF(empty);
    if (key == NULL)
        return NULL;
    PyObject *found = PyDict_GetItemWithError(series_table, key);
    if (found != NULL) {
        Py_DECREF(key);
        return Py_NewRef((PyObject *)PyLong_AsVoidPtr(found));
    }
    SeriesObject *series = NULL;
    PyObject *address = NULL;
    if (PyErr_Occurred())
        goto error;
    series = PyObject_New(SeriesObject, series_type);
    if (series == NULL)
        goto error;
    Py_INCREF(series_type); /* heap type: each instance holds its type */
    series->key = key; /* (the reference made above) */
    key = NULL;
    address = PyLong_FromVoidPtr(series);
    if (address == NULL || PyDict_SetItem(series_table, series->key, address) < 0)
        goto error;
    Py_DECREF(address);
    return (PyObject *)series;
error:
    Py_XDECREF(key);
    Py_XDECREF(address);
    Py_XDECREF(series); /* (not in the table: its dealloc finds another entry or none) */
    return NULL;
}

PyDoc_STRVAR(live_series_doc, "live_series()\n--\n\nEvery Series some state still holds.");

static PyObject *
live_series(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyList_New(0), *key, *address;
    Py_ssize_t at = 0;
    if (out == NULL)
        return NULL;
    while (PyDict_Next(series_table, &at, &key, &address)) {
        if (PyList_Append(out, (PyObject *)PyLong_AsVoidPtr(address)) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

static int
module_exec(PyObject *module)
{
    if (name_requests == NULL) {
        const char *texts[7] = {"requests", "errors", "client_errors", "buckets", "_ordered",
                                "add", "empty"};
        PyObject **names[7] = {&name_requests, &name_errors, &name_client_errors,
                               &name_buckets, &name_ordered, &name_add, &name_empty};
        for (int i = 0; i < 7; i++)
            if ((*names[i] = PyUnicode_InternFromString(texts[i])) == NULL)
                return -1;
        for (int i = 0; i < ROW_NAMES; i++)
            if ((row_names[i] = PyUnicode_InternFromString(row_texts[i])) == NULL)
                return -1;
        for (int i = 0; i < G_SIZE; i++)
            if ((group_names[i] = PyUnicode_InternFromString(group_texts[i])) == NULL)
                return -1;
        if ((float_infinity = PyFloat_FromDouble(INFINITY)) == NULL)
            return -1;
    }
    if (series_type == NULL) {
        series_table = PyDict_New();
        if (series_table == NULL)
            return -1;
        series_type = (PyTypeObject *)PyType_FromSpec(&series_spec);
        if (series_type == NULL)
            return -1;
    }
    return PyModule_AddObjectRef(module, "Series", (PyObject *)series_type);
}

/* mine.add(other, sign) of window.Counts for float figures and float dicts: 1; 0 where a
 * figure is not a float (nothing changed: the caller calls the method); -1 on an error. */
static int
counts_add(PyObject *mine, PyObject *other, double sign)
{
    PyObject *names[3] = {name_requests, name_errors, name_client_errors};
    PyObject *have[3] = {NULL}, *more[3] = {NULL}, *buckets = NULL, *adding = NULL;
    int result = -1, i;
    for (i = 0; i < 3; i++) {
        have[i] = PyObject_GetAttr(mine, names[i]);
        more[i] = have[i] == NULL ? NULL : PyObject_GetAttr(other, names[i]);
        if (more[i] == NULL)
            goto done;
    }
    buckets = PyObject_GetAttr(mine, name_buckets);
    adding = buckets == NULL ? NULL : PyObject_GetAttr(other, name_buckets);
    if (adding == NULL)
        goto done;
    result = 0;
    for (i = 0; i < 3; i++)
        if (!PyFloat_CheckExact(have[i]) || !PyFloat_CheckExact(more[i]))
            goto done;
    if (!PyDict_CheckExact(buckets) || !PyDict_CheckExact(adding) || !all_floats(adding, 0))
        goto done;
    result = -1;
    if (PyObject_SetAttr(mine, name_ordered, Py_None) < 0)
        goto done;
    for (i = 0; i < 3; i++) {
        double figure = PyFloat_AS_DOUBLE(have[i]) + sign * PyFloat_AS_DOUBLE(more[i]);
        if (sole_float(have[i], 2)) {  /* (held by the attribute and by us) */
            ((PyFloatObject *)have[i])->ob_fval = figure;
            continue;
        }
        PyObject *sum = PyFloat_FromDouble(figure);
        int failed = sum == NULL || PyObject_SetAttr(mine, names[i], sum) < 0;
        Py_XDECREF(sum);
        if (failed)
            goto done;
    }
    if (add_dict(buckets, adding, sign))
        goto done;
    result = 1;
done:
    for (i = 0; i < 3; i++) {
        Py_XDECREF(have[i]);
        Py_XDECREF(more[i]);
    }
    Py_XDECREF(buckets);
    Py_XDECREF(adding);
    return result;
}

/* One (key, counts) pair of add_counts. */
static int
add_one(PyObject *into, PyObject *item, PyObject *sign, PyObject *make, PyObject **requests)
{
    PyObject *pair = PySequence_Fast(item, "add_counts takes (key, counts) pairs");
    if (pair == NULL)
        return -1;
    if (PySequence_Fast_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_ValueError, "add_counts takes (key, counts) pairs");
        Py_DECREF(pair);
        return -1;
    }
    PyObject *key = PySequence_Fast_GET_ITEM(pair, 0);
    PyObject *counts = PySequence_Fast_GET_ITEM(pair, 1);
    PyObject *mine = PyDict_GetItemWithError(into, key), *figure = NULL, *sum = NULL;
    int result = -1;
    Py_XINCREF(mine);
    if (mine == NULL) {
        if (PyErr_Occurred() || (mine = PyObject_CallNoArgs(make)) == NULL
                || PyDict_SetItem(into, key, mine) < 0)
            goto done;
    }
    int fast = counts_add(mine, counts, PyFloat_AS_DOUBLE(sign));
    if (fast < 0)
        goto done;
    if (fast == 0) {
        PyObject *added = PyObject_CallMethodObjArgs(mine, name_add, counts, sign, NULL);
        if (added == NULL)
            goto done;
        Py_DECREF(added);
    }
    if ((figure = PyObject_GetAttr(counts, name_requests)) == NULL)
        goto done;
    if (PyFloat_CheckExact(*requests) && PyFloat_CheckExact(figure))
        sum = PyFloat_FromDouble(PyFloat_AS_DOUBLE(*requests) + PyFloat_AS_DOUBLE(figure));
    else
        sum = PyNumber_Add(*requests, figure);
    if (sum == NULL)
        goto done;
    Py_SETREF(*requests, sum);
    if (PyFloat_AS_DOUBLE(sign) < 0) {
        PyObject *empty = PyObject_GetAttr(mine, name_empty);
        int gone = empty == NULL ? -1 : PyObject_IsTrue(empty);
        Py_XDECREF(empty);
        if (gone < 0 || (gone && PyDict_DelItem(into, key) < 0))
            goto done;
    }
    result = 0;
done:
    Py_XDECREF(figure);
    Py_XDECREF(mine);
    Py_DECREF(pair);
    return result;
}

PyDoc_STRVAR(add_counts_doc,
"add_counts(into, more, sign, make) -> requests added, or NotImplemented\n\n"
"window.add_counts: each (key, counts) of more added to into[key] (a new make() where there\n"
"is none) times sign, keys left empty dropped when taking away. NotImplemented (nothing\n"
"done) unless into is a dict and sign a float.");

static PyObject *
add_counts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4 || !PyDict_CheckExact(args[0]) || !PyFloat_CheckExact(args[2]))
        Py_RETURN_NOTIMPLEMENTED;
    PyObject *iterator = PyObject_GetIter(args[1]), *item;
    if (iterator == NULL)
        return NULL;
    PyObject *requests = PyFloat_FromDouble(0.0);
    if (requests == NULL) {
        Py_DECREF(iterator);
        return NULL;
    }
    while ((item = PyIter_Next(iterator)) != NULL) {
        int failed = add_one(args[0], item, args[2], args[3], &requests);
        Py_DECREF(item);
        if (failed)
            break;
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred()) {
        Py_DECREF(requests);
        return NULL;
    }
    return requests;
}

PyDoc_STRVAR(quantile_doc,
"quantile(q, buckets)\n--\n\n"
"quantile.quantile of normalized (bound, count) pairs, or NotImplemented where the pairs "
"are not a list of tuples of two floats (the reference takes those).");

/* One pair of floats out of the list: 0, or -1 where it is not one. */
static int
float_pair(PyObject *list, Py_ssize_t i, double *bound, double *count)
{
    PyObject *pair = PyList_GET_ITEM(list, i);
    if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2
            || !PyFloat_CheckExact(PyTuple_GET_ITEM(pair, 0))
            || !PyFloat_CheckExact(PyTuple_GET_ITEM(pair, 1)))
        return -1;
    *bound = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(pair, 0));
    *count = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(pair, 1));
    return 0;
}

/* quantile over sorted bounds and their counts (size of each): the reference's steps one
 * for one, so that every comparison with a NaN goes the same way. 1 with *out set, 0 for
 * None. */
static int
quantile_at(double q, const double *bounds, const double *counts, Py_ssize_t size,
            double *out)
{
    if (isnan(q))
        return 0;
    if (q < 0 || q > 1) {
        *out = q < 0 ? -INFINITY : INFINITY;
        return 1;
    }
    if (size < 2)
        return 0;
    double last_bound = bounds[size - 1], total = counts[size - 1];
    if (!isinf(last_bound) || last_bound < 0 || total <= 0)
        return 0;
    double rank = q * total;
    Py_ssize_t index = size - 1;
    for (Py_ssize_t i = 0; i < size - 1; i++) {
        if (counts[i] >= rank) {
            index = i;
            break;
        }
    }
    if (index == size - 1) {
        *out = bounds[size - 2];
        return 1;
    }
    double upper = bounds[index], count = counts[index], below = 0.0, lower = 0.0;
    if (index == 0 && upper <= 0) {
        *out = upper;
        return 1;
    }
    if (index > 0) {
        lower = bounds[index - 1];
        below = counts[index - 1];
    }
    double in_bucket = count - below;
    if (in_bucket <= 0)
        return 0;
    *out = lower + (upper - lower) * (rank - below) / in_bucket;
    return 1;
}

/* quantile of a list of float pairs (checked by the caller). */
static PyObject *
quantile_of(double q, PyObject *list)
{
    Py_ssize_t size = PyList_GET_SIZE(list);
    double few[2 * FEW_BUCKETS], *bounds = few, value;
    few[0] = 0.0;  /* (read by nothing when the list is empty; a compiler cannot tell) */
    if (size > FEW_BUCKETS && (bounds = PyMem_New(double, (size_t)(2 * size))) == NULL)
        return PyErr_NoMemory();
    double *counts = bounds + size;
    for (Py_ssize_t i = 0; i < size; i++)
        float_pair(list, i, &bounds[i], &counts[i]);
    int found = quantile_at(q, bounds, counts, size, &value);
    if (bounds != few)
        PyMem_Free(bounds);
    if (!found)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(value);
}

static PyObject *
quantile(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyFloat_CheckExact(args[0]) || !PyList_CheckExact(args[1]))
        Py_RETURN_NOTIMPLEMENTED;
    double bound, count;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(args[1]); i++)  /* no half answers */
        if (float_pair(args[1], i, &bound, &count) < 0)
            Py_RETURN_NOTIMPLEMENTED;
    return quantile_of(PyFloat_AS_DOUBLE(args[0]), args[1]);
}

/* per_minute(x, seconds) or 0.0, and the like: a zero is +0.0 (a NaN stays). */
static double
or_zero(double value)
{
    return value == 0.0 ? 0.0 : value;
}

static int
set_float(PyObject *dict, int name, double value)
{
    PyObject *number = PyFloat_FromDouble(value);
    int failed = number == NULL || PyDict_SetItem(dict, row_names[name], number) < 0;
    Py_XDECREF(number);
    return failed ? -1 : 0;
}

/* derive.within: the bucket at limit, else the one at the largest bound under it, else 0.0
 * (a new reference). */
static PyObject *
within_limit(PyObject *buckets, PyObject *limit)
{
    PyObject *found = PyDict_GetItemWithError(buckets, limit);
    if (found != NULL || PyErr_Occurred())
        return Py_XNewRef(found);
    double bound = PyFloat_AS_DOUBLE(limit), best = 0.0;
    PyObject *key, *value, *below = NULL;
    Py_ssize_t position = 0;
    while (PyDict_Next(buckets, &position, &key, &value)) {
        double at = PyFloat_AS_DOUBLE(key);
        if (at <= bound && (below == NULL || at > best)) {
            best = at;
            below = value;
        }
    }
    return below != NULL ? Py_NewRef(below) : PyFloat_FromDouble(0.0);
}

/* The percentile fields of performance_fields into fields (buckets: a float dict): its
 * buckets sorted and made monotonic as normalize does, in C arrays. 1 when a bound is NaN
 * (left to the pure code), -1 on an error. */
static int
percentile_fields(PyObject *fields, PyObject *buckets, double epsilon, PyObject *percentiles)
{
    Bucket few[FEW_BUCKETS], *ordered = bucket_room(buckets, few);
    if (ordered == NULL)
        return -1;
    Py_ssize_t size = PyDict_GET_SIZE(buckets);
    if (sort_buckets(buckets, ordered)) {
        free_buckets(ordered, 0, few);
        return 1;
    }
    double few_bounds[2 * FEW_BUCKETS], *bounds = few_bounds;
    if (size > FEW_BUCKETS && (bounds = PyMem_New(double, (size_t)(2 * size))) == NULL) {
        free_buckets(ordered, size, few);
        PyErr_NoMemory();
        return -1;
    }
    double *counts = bounds + size, previous = 0.0;
    for (Py_ssize_t i = 0; i < size; i++) {
        bounds[i] = ordered[i].le;
        counts[i] = previous = raised(PyFloat_AS_DOUBLE(ordered[i].value), previous, epsilon);
    }
    free_buckets(ordered, size, few);
    int failed = 0;
    for (Py_ssize_t i = 0; !failed && i < PyTuple_GET_SIZE(percentiles); i++) {
        PyObject *named = PyTuple_GET_ITEM(percentiles, i);
        double value;
        if (quantile_at(PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(named, 1)), bounds, counts, size,
                        &value) && !isinf(value)) {
            PyObject *ms = PyFloat_FromDouble(value * 1000.0);
            failed = ms == NULL || PyDict_SetItem(fields, PyTuple_GET_ITEM(named, 0), ms) < 0;
            Py_XDECREF(ms);
        }
    }
    if (bounds != few_bounds)
        PyMem_Free(bounds);
    return failed ? -1 : 0;
}

/* Whether percentiles is a tuple of (str, float) pairs. */
static int
named_ranks(PyObject *percentiles)
{
    if (!PyTuple_CheckExact(percentiles))
        return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(percentiles); i++) {
        PyObject *named = PyTuple_GET_ITEM(percentiles, i);
        if (!PyTuple_CheckExact(named) || PyTuple_GET_SIZE(named) != 2
                || !PyUnicode_CheckExact(PyTuple_GET_ITEM(named, 0))
                || !PyFloat_CheckExact(PyTuple_GET_ITEM(named, 1)))
            return 0;
    }
    return 1;
}

PyDoc_STRVAR(performance_fields_doc,
"performance_fields(count, errors, client_errors, total, seconds, buckets, limit, epsilon,\n"
"                   percentiles) -> dict, or None to leave it to the pure code\n\n"
"The fields of derive's performance row (float figures and a dict of float buckets).");

static PyObject *
performance_fields(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 9 || !PyDict_CheckExact(args[5]) || !named_ranks(args[8]))
        Py_RETURN_NONE;
    for (int i = 0; i < 8; i++)
        if (i != 5 && !PyFloat_CheckExact(args[i]))
            Py_RETURN_NONE;
    if (!all_floats(args[5], 1))
        Py_RETURN_NONE;
    double count = PyFloat_AS_DOUBLE(args[0]), errors = PyFloat_AS_DOUBLE(args[1]);
    double client = PyFloat_AS_DOUBLE(args[2]), total = PyFloat_AS_DOUBLE(args[3]);
    double seconds = PyFloat_AS_DOUBLE(args[4]);
    PyObject *fields = PyDict_New(), *buckets = args[5], *within = NULL;
    if (fields == NULL)
        return NULL;
    /* (per_minute: none without a positive interval) */
    if (PyDict_SetItem(fields, name_requests, args[0]) < 0
            || set_float(fields, ROW_REQUESTS_PER_MINUTE,
                         seconds <= 0 ? 0.0 : or_zero(count * 60.0 / seconds))
            || PyDict_SetItem(fields, name_errors, args[1]) < 0
            || set_float(fields, ROW_ERRORS_PER_MINUTE,
                         seconds <= 0 ? 0.0 : or_zero(errors * 60.0 / seconds))
            || PyDict_SetItem(fields, name_client_errors, args[2]) < 0
            || PyDict_SetItem(fields, row_names[ROW_INTERVAL], args[4]) < 0)
        goto error;
    if (count > 0) {
        if (set_float(fields, ROW_RESPONSE_TIME, total / count * 1000.0)
                || set_float(fields, ROW_LATENCY_SUM, total * 1000.0)
                || set_float(fields, ROW_ERROR_RATE, or_zero(100.0 * errors / count))
                || set_float(fields, ROW_CLIENT_ERROR_RATE, or_zero(100.0 * client / count)))
            goto error;
        if (PyDict_GET_SIZE(buckets)) {
            within = within_limit(buckets, args[6]);
            if (within == NULL
                    || PyDict_SetItem(fields, row_names[ROW_WITHIN_LIMIT], within) < 0)
                goto error;
            Py_CLEAR(within);
        }
        int made = percentile_fields(fields, buckets, PyFloat_AS_DOUBLE(args[7]), args[8]);
        if (made < 0)
            goto error;
        if (made > 0) {  /* a NaN bound: the pure code makes the whole row */
            Py_DECREF(fields);
            Py_RETURN_NONE;
        }
    }
    return fields;
error:
    Py_XDECREF(within);
    Py_DECREF(fields);
    return NULL;
}

/* What latency_groups takes from derive (_LATENCY_PARTS), in this order. */
enum {LP_STATUS_CODES, LP_LATENCY_BUCKETS, LP_PERFORMANCE, LP_TOLERANCE, LP_NAMES, LP_NAME_OF,
      LP_EPSILON, LP_PERCENTILES, LP_COUNTS, LP_BUCKET_POINTS, LP_PERFORMANCE_ROW, LP_SIZE};

static void
release_figures(PyObject **figures, int size)
{
    for (int i = 0; i < size; i++)
        Py_CLEAR(figures[i]);
}

/* The group's figures into figures (owned): 1 when the fast path can take the group (its
 * figures floats, its buckets and statuses dicts, each status a str with a float), 0 when
 * the pure code must, -1 on an error. */
static int
group_figures(PyObject *group, PyObject **figures)
{
    for (int i = 0; i < G_SIZE; i++)
        if ((figures[i] = PyObject_GetAttr(group, group_names[i])) == NULL)
            return -1;
    if (!PyDict_CheckExact(figures[G_BUCKETS]) || !PyDict_CheckExact(figures[G_BY_STATUS])
            || !PyDict_CheckExact(figures[G_STATUS_TAGS]))
        return 0;
    for (int i = G_COUNT; i <= G_CLIENT; i++)
        if (!PyFloat_CheckExact(figures[i]))
            return 0;
    PyObject *status, *count;
    Py_ssize_t at = 0;
    while (PyDict_Next(figures[G_BY_STATUS], &at, &status, &count))
        if (!PyUnicode_CheckExact(status) || !PyFloat_CheckExact(count))
            return 0;
    return 1;
}

/* tuple (measurement, tags, fields, ts) appended to points (fields taken). */
static int
append_point(PyObject *points, PyObject *measurement, PyObject *tags, PyObject *fields,
             PyObject *ts)
{
    if (fields == NULL)
        return -1;
    PyObject *point = PyTuple_Pack(4, measurement, tags, fields, ts);
    Py_DECREF(fields);
    int failed = point == NULL || PyList_Append(points, point) < 0;
    Py_XDECREF(point);
    return failed ? -1 : 0;
}

/* A status's point: its requests and their rate per minute, tagged with the status. */
static int
status_point(PyObject *group, PyObject *status_tags, PyObject *status, PyObject *count,
             double to_minute, PyObject *ts, PyObject *points, PyObject *measurement)
{
    PyObject *tags = PyDict_GetItemWithError(status_tags, status);  /* borrowed */
    if (tags != NULL)
        Py_INCREF(tags);
    else if (PyErr_Occurred()
             || (tags = PyObject_CallMethod(group, "status_tag", "O", status)) == NULL)
        return -1;
    PyObject *fields = PyDict_New();
    if (fields != NULL && (PyDict_SetItem(fields, name_requests, count) < 0
            || set_float(fields, ROW_REQUESTS_PER_MINUTE,
                         PyFloat_AS_DOUBLE(count) * to_minute))) {
        Py_CLEAR(fields);
    }
    int failed = append_point(points, measurement, tags, fields, ts);
    Py_DECREF(tags);
    return failed;
}

/* The status loop of derive._latency_group: errors and client errors counted into
 * figures, a point per status with requests, the statuses added to the service's. */
static int
status_points(PyObject *group, PyObject **figures, double to_minute, PyObject *ts,
              PyObject *wide_status, PyObject *points, PyObject *measurement)
{
    double errors = PyFloat_AS_DOUBLE(figures[G_ERRORS]);
    double client = PyFloat_AS_DOUBLE(figures[G_CLIENT]);
    PyObject *status, *count;
    Py_ssize_t at = 0;
    while (PyDict_Next(figures[G_BY_STATUS], &at, &status, &count)) {
        Py_UCS4 first = PyUnicode_GET_LENGTH(status) ? PyUnicode_READ_CHAR(status, 0) : 0;
        if (first == '5')
            errors += PyFloat_AS_DOUBLE(count);
        else if (first == '4')
            client += PyFloat_AS_DOUBLE(count);
        if (PyFloat_AS_DOUBLE(count) > 0
                && status_point(group, figures[G_STATUS_TAGS], status, count, to_minute, ts,
                                points, measurement))
            return -1;
        if (dict_add(wide_status, status, count, 1.0))
            return -1;
    }
    PyObject *made[2] = {PyFloat_FromDouble(errors), PyFloat_FromDouble(client)};
    int failed = made[0] == NULL || made[1] == NULL
        || PyObject_SetAttr(group, group_names[G_ERRORS], made[0]) < 0
        || PyObject_SetAttr(group, group_names[G_CLIENT], made[1]) < 0;
    if (!failed) {
        Py_SETREF(figures[G_ERRORS], made[0]);
        Py_SETREF(figures[G_CLIENT], made[1]);
        return 0;
    }
    Py_XDECREF(made[0]);
    Py_XDECREF(made[1]);
    return -1;
}

/* The group's bucket row (derive._bucket_points), by bucket_fields where it makes one, else
 * by the pure code (which refuses a row that is not cumulative); buckets read again. */
static int
bucket_row(PyObject *group, PyObject **figures, PyObject *wide_buckets, PyObject *ts,
           PyObject *points, PyObject *parts)
{
    PyObject *args[5] = {figures[G_BUCKETS], wide_buckets, PyTuple_GET_ITEM(parts, LP_TOLERANCE),
                         PyTuple_GET_ITEM(parts, LP_NAMES), PyTuple_GET_ITEM(parts, LP_NAME_OF)};
    PyObject *row = bucket_fields(NULL, args, 5);
    if (row == NULL)
        return -1;
    PyObject *measurement = PyTuple_GET_ITEM(parts, LP_LATENCY_BUCKETS);
    if (row != Py_None) {
        if (PyDict_GET_SIZE(row) == 0) {
            Py_DECREF(row);
            return 0;
        }
        return append_point(points, measurement, figures[G_TAGS], row, ts);
    }
    Py_DECREF(row);
    PyObject *done = PyObject_CallFunctionObjArgs(PyTuple_GET_ITEM(parts, LP_BUCKET_POINTS),
                                                  group, measurement, ts, points, wide_buckets,
                                                  NULL);
    if (done == NULL)
        return -1;
    Py_DECREF(done);
    Py_SETREF(figures[G_BUCKETS], PyObject_GetAttr(group, group_names[G_BUCKETS]));
    return figures[G_BUCKETS] == NULL ? -1 : 0;
}

/* The group's figures added to the service's (count, total, errors, client errors). */
static int
add_to_service(PyObject *wide, PyObject **figures)
{
    for (int i = G_COUNT; i <= G_CLIENT; i++) {
        PyObject *have = PyObject_GetAttr(wide, group_names[i]);
        if (have == NULL)
            return -1;
        PyObject *sum = PyNumber_Add(have, figures[i]);
        Py_DECREF(have);
        int failed = sum == NULL || PyObject_SetAttr(wide, group_names[i], sum) < 0;
        Py_XDECREF(sum);
        if (failed)
            return -1;
    }
    return 0;
}

/* The requests of derive._performance_row: count, else the +Inf bucket, else the statuses'
 * sum; NULL without an error where that sum is not plainly 0.0 (the pure code adds it). */
static PyObject *
row_requests(PyObject **figures)
{
    if (PyFloat_AS_DOUBLE(figures[G_COUNT]) != 0.0)  /* (NaN is true, as in Python) */
        return Py_NewRef(figures[G_COUNT]);
    PyObject *top = PyDict_GetItemWithError(figures[G_BUCKETS], float_infinity);  /* borrowed */
    if (top == NULL && PyErr_Occurred())
        return NULL;
    int truth = top == NULL ? 0 : PyObject_IsTrue(top);
    if (truth < 0)
        return NULL;
    if (truth)
        return Py_NewRef(top);
    PyObject *status, *count;
    Py_ssize_t at = 0;
    if (PyDict_GET_SIZE(figures[G_BY_STATUS]) == 0)
        return NULL;  /* (sum() of nothing is the int 0) */
    while (PyDict_Next(figures[G_BY_STATUS], &at, &status, &count))
        if (PyFloat_AS_DOUBLE(count) != 0.0)
            return NULL;
    return PyFloat_FromDouble(0.0);
}

/* Whether an endpoint's counts of an interval are idle (derive._latency_group gives it none):
 * its requests, errors, client errors (figures[0..2]) and every bucket (the dict
 * figures[3]) false, by Python's truth as the pure code tests them. -1 on an error. */
static int
counts_idle(PyObject **figures)
{
    for (int i = 0; i < 3; i++) {
        int truth = PyObject_IsTrue(figures[i]);
        if (truth != 0)
            return truth < 0 ? -1 : 0;
    }
    PyObject *bound, *count;
    Py_ssize_t at = 0;
    if (!PyDict_Check(figures[3]))
        return 0;  /* (not expected: buckets are a dict) */
    while (PyDict_Next(figures[3], &at, &bound, &count)) {
        int truth = PyFloat_CheckExact(count) ? PyFloat_AS_DOUBLE(count) != 0.0
            : PyObject_IsTrue(count);
        if (truth != 0)
            return truth < 0 ? -1 : 0;
    }
    return 1;
}

/* The group's performance row (derive._performance_row) appended to points, and its counts
 * put in counts under its key (window.Counts of the row's requests, errors, client errors
 * and the group's buckets) unless they are idle. */
static int
performance_row(PyObject *group, PyObject **figures, PyObject *seconds, PyObject *ts,
                PyObject *limit, PyObject *points, PyObject *counts, PyObject *parts)
{
    PyObject *requests = row_requests(figures), *fields = NULL, *row = NULL;
    if (requests == NULL && PyErr_Occurred())
        return -1;
    if (requests != NULL) {
        PyObject *args[9] = {requests, figures[G_ERRORS], figures[G_CLIENT], figures[G_TOTAL],
                             seconds, figures[G_BUCKETS], limit,
                             PyTuple_GET_ITEM(parts, LP_EPSILON),
                             PyTuple_GET_ITEM(parts, LP_PERCENTILES)};
        fields = performance_fields(NULL, args, 9);
        Py_DECREF(requests);
        if (fields == NULL)
            return -1;
        if (fields != Py_None)
            row = PyTuple_Pack(4, PyTuple_GET_ITEM(parts, LP_PERFORMANCE), figures[G_TAGS],
                               fields, ts);
        Py_DECREF(fields);
        if (fields != Py_None && row == NULL)
            return -1;
    }
    if (row == NULL) {  /* (the pure code's row) */
        row = PyObject_CallFunctionObjArgs(PyTuple_GET_ITEM(parts, LP_PERFORMANCE_ROW), group,
                                           seconds, ts, limit, NULL);
        if (row == NULL)
            return -1;
    }
    int failed = PyList_Append(points, row) < 0;
    PyObject *made = NULL;
    if (!failed) {
        PyObject *count = PyObject_GetItem(PyTuple_GET_ITEM(row, 2), name_requests);
        PyObject *args[4] = {count, figures[G_ERRORS], figures[G_CLIENT], figures[G_BUCKETS]};
        int idle = count == NULL ? -1 : counts_idle(args);
        made = idle != 0 ? NULL
            : PyObject_Vectorcall(PyTuple_GET_ITEM(parts, LP_COUNTS), args, 4, NULL);
        Py_XDECREF(count);
        failed = idle < 0 || (idle == 0 && (made == NULL
                                            || PyDict_SetItem(counts, figures[G_KEY], made) < 0));
    }
    Py_XDECREF(made);
    Py_DECREF(row);
    return failed ? -1 : 0;
}

/* derive._latency_group of one group: 1 when it had series, 0 when not, 2 when the pure
 * code must take it (nothing done), -1 on an error. */
static int
latency_group(PyObject *group, PyObject *wide, PyObject *wide_buckets, PyObject *wide_status,
              PyObject *const *args, PyObject *parts)
{
    PyObject *figures[G_SIZE] = {NULL};
    int ready = group_figures(group, figures), result = -1;
    if (ready <= 0) {
        release_figures(figures, G_SIZE);
        return ready < 0 ? -1 : 2;
    }
    if (PyDict_GET_SIZE(figures[G_BUCKETS]) == 0 && PyDict_GET_SIZE(figures[G_BY_STATUS]) == 0
            && PyFloat_AS_DOUBLE(figures[G_COUNT]) == 0.0) {
        release_figures(figures, G_SIZE);
        return 0;  /* no series of this endpoint in this scrape */
    }
    PyObject *points = args[1], *seconds = args[4], *ts = args[5], *limit = args[6];
    if (status_points(group, figures, PyFloat_AS_DOUBLE(args[3]), ts, wide_status, points,
                      PyTuple_GET_ITEM(parts, LP_STATUS_CODES)) == 0
            && bucket_row(group, figures, wide_buckets, ts, points, parts) == 0
            && add_to_service(wide, figures) == 0
            && performance_row(group, figures, seconds, ts, limit, points, args[7],
                               parts) == 0)
        result = 1;
    release_figures(figures, G_SIZE);
    return result;
}

PyDoc_STRVAR(latency_groups_doc,
"latency_groups(groups, points, service_wide, to_minute, seconds, ts, limit, counts, one,\n"
"               parts) -> whether any group had series\n\n"
"derive.latency_points's loop: each group as derive._latency_group does it, in C where its\n"
"figures are floats and its statuses str (else by one(group), the pure code).");

static PyObject *
latency_groups(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 10 || !PyList_CheckExact(args[0]) || !PyList_CheckExact(args[1])
            || !PyFloat_CheckExact(args[3]) || !PyDict_CheckExact(args[7])
            || !PyTuple_CheckExact(args[9]) || PyTuple_GET_SIZE(args[9]) != LP_SIZE) {
        PyErr_SetString(PyExc_TypeError, "latency_groups takes derive's arguments");
        return NULL;
    }
    PyObject *wide = args[2];
    PyObject *wide_buckets = PyObject_GetAttr(wide, group_names[G_BUCKETS]);
    PyObject *wide_status = PyObject_GetAttr(wide, group_names[G_BY_STATUS]);
    int seen = 0, failed = wide_buckets == NULL || wide_status == NULL;
    int fast = !failed && PyDict_CheckExact(wide_buckets) && PyDict_CheckExact(wide_status);
    for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(args[0]); i++) {
        PyObject *group = PyList_GET_ITEM(args[0], i);
        Py_INCREF(group);
        int done = fast ? latency_group(group, wide, wide_buckets, wide_status, args, args[9])
            : 2;
        if (done == 2) {
            PyObject *had = PyObject_CallOneArg(args[8], group);
            done = had == NULL ? -1 : PyObject_IsTrue(had);
            Py_XDECREF(had);
        }
        Py_DECREF(group);
        failed = done < 0;
        seen |= done == 1;
    }
    Py_XDECREF(wide_buckets);
    Py_XDECREF(wide_status);
    if (failed)
        return NULL;
    return PyBool_FromLong(seen);
}

PyDoc_STRVAR(narrow_doc,
"narrow(values) -> (typecode, bytes), or None for the pure code\n\n"
"window.narrowest of a list of floats, as the typecode and the bytes of its array: 'B', 'H'\n"
"or 'I' when every figure is whole, not negative and in range, else 'd'.");

/* array's setitem parses each figure through PyArg_Parse (a hundred instructions and
 * more a figure); the bytes are made here and the array takes them whole. */
static PyObject *
narrow(PyObject *module, PyObject *values)
{
    (void)module;
    if (!PyList_CheckExact(values) || PyList_GET_SIZE(values) == 0)
        Py_RETURN_NONE;
    Py_ssize_t size = PyList_GET_SIZE(values);
    int whole = 1;
    double top = 0.0;
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *item = PyList_GET_ITEM(values, i);
        if (!PyFloat_CheckExact(item))
            Py_RETURN_NONE;
        double figure = PyFloat_AS_DOUBLE(item);
        /* (NaN, negative, fractional or infinite: doubles; -0.0 is whole, as int() has it) */
        if (!(figure >= 0.0) || figure != floor(figure) || isinf(figure))
            whole = 0;
        else if (figure > top)
            top = figure;
    }
    char code = !whole || top > 4294967295.0 ? 'd' : top > 65535.0 ? 'I'
        : top > 255.0 ? 'H' : 'B';
    size_t width = code == 'd' ? sizeof(double) : code == 'I' ? sizeof(unsigned int)
        : code == 'H' ? sizeof(unsigned short) : 1;
    if (code == 'I' && sizeof(unsigned int) < 4)
        Py_RETURN_NONE;
    PyObject *raw = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)width * size);
    if (raw == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(raw);
    for (Py_ssize_t i = 0; i < size; i++) {
        double figure = PyFloat_AS_DOUBLE(PyList_GET_ITEM(values, i));
        if (code == 'd')
            memcpy(out + i * (Py_ssize_t)width, &figure, width);
        else if (code == 'I') {
            unsigned int n = (unsigned int)figure;
            memcpy(out + i * (Py_ssize_t)width, &n, width);
        }
        else if (code == 'H') {
            unsigned short n = (unsigned short)figure;
            memcpy(out + i * (Py_ssize_t)width, &n, width);
        }
        else
            out[i] = (char)(unsigned char)figure;
    }
    return Py_BuildValue("(CN)", code, raw);
}

PyDoc_STRVAR(widen_doc,
"widen(values) -> bytes of doubles, or None for the pure code\n\n"
"The figures of an array of 'B', 'H' or 'I' as the bytes of an array of 'd'.");

static PyObject *
widen(PyObject *module, PyObject *values)
{
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(values, &view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    /* (array's own formats: one letter, native sizes) */
    int code = view.format != NULL && view.format[0] != '\0' && view.format[1] == '\0'
        ? view.format[0] : 0;
    PyObject *raw = NULL;
    if ((code == 'B' && view.itemsize == 1)
            || (code == 'H' && view.itemsize == (Py_ssize_t)sizeof(unsigned short))
            || (code == 'I' && view.itemsize == (Py_ssize_t)sizeof(unsigned int))) {
        Py_ssize_t size = view.len / view.itemsize;
        raw = PyBytes_FromStringAndSize(NULL, size * (Py_ssize_t)sizeof(double));
        if (raw != NULL) {
            double *out = (double *)(void *)PyBytes_AS_STRING(raw);
            const char *in = view.buf;
            for (Py_ssize_t i = 0; i < size; i++) {
                if (code == 'B')
                    out[i] = (double)((const unsigned char *)in)[i];
                else if (code == 'H') {
                    unsigned short n;
                    memcpy(&n, in + i * view.itemsize, sizeof n);
                    out[i] = (double)n;
                }
                else {
                    unsigned int n;
                    memcpy(&n, in + i * view.itemsize, sizeof n);
                    out[i] = (double)n;
                }
            }
        }
    }
    else
        raw = Py_NewRef(Py_None);
    PyBuffer_Release(&view);
    return raw;
}

static PyMethodDef methods[] = {
    {"encode_points", (PyCFunction)(void (*)(void))encode_points, METH_FASTCALL,
     encode_points_doc},
    {"add_scaled", (PyCFunction)(void (*)(void))add_scaled, METH_FASTCALL, add_scaled_doc},
    {"normalize", (PyCFunction)(void (*)(void))normalize_buckets, METH_FASTCALL,
     normalize_doc},
    {"quantile", (PyCFunction)(void (*)(void))quantile, METH_FASTCALL, quantile_doc},
    {"add_counts", (PyCFunction)(void (*)(void))add_counts, METH_FASTCALL, add_counts_doc},
    {"performance_fields", (PyCFunction)(void (*)(void))performance_fields, METH_FASTCALL,
     performance_fields_doc},
    {"bucket_fields", (PyCFunction)(void (*)(void))bucket_fields, METH_FASTCALL,
     bucket_fields_doc},
    {"scan_lines", (PyCFunction)(void (*)(void))scan_lines, METH_FASTCALL, scan_lines_doc},
    {"counter_increases", (PyCFunction)(void (*)(void))counter_increases, METH_FASTCALL,
     counter_increases_doc},
    {"sort_samples", (PyCFunction)(void (*)(void))sort_samples, METH_FASTCALL,
     sort_samples_doc},
    {"add_buckets", (PyCFunction)(void (*)(void))add_buckets, METH_FASTCALL, add_buckets_doc},
    {"steady_scan", (PyCFunction)(void (*)(void))steady_scan, METH_FASTCALL,
     steady_scan_doc},
    {"intern_series", (PyCFunction)(void (*)(void))intern_series, METH_FASTCALL,
     intern_series_doc},
    {"live_series", live_series, METH_NOARGS, live_series_doc},
    {"latency_groups", (PyCFunction)(void (*)(void))latency_groups, METH_FASTCALL,
     latency_groups_doc},
    {"narrow", narrow, METH_O, narrow_doc},
    {"widen", widen, METH_O, widen_doc},
    {NULL, NULL, 0, NULL},
};

/* The Series type and its table are one per process (a Series may outlive any module), so
 * one interpreter only. */
static struct PyModuleDef_Slot slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_native",
    .m_doc = "The compiled core of the bridge's per-sample hot path.",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModuleDef_Init(&module_def);
}
