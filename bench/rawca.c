/* rawca.c - the physical reference of the CaChannel benchmark: libca, no Python.
 *
 * Compiled by bench/run.py against epicscorelibs' headers and libca/libCom.
 * Every mode prints exactly one JSON object on stdout (last line), e.g.
 *   {"unit": "s", "samples": [0.031, 0.030], "extra": {...}}
 * Errors go to stderr and give a non-zero exit status.
 *
 * Modes (REPEATS = number of samples, WINDOW = seconds per rate sample):
 *   check PV                       connect, print {"ok": true}
 *   fill BIGPV IMGPV [IMGPV...]    write the reference patterns (put with callback)
 *   big_get PV REPEATS             time per ca_array_get(DBR_DOUBLE, native count) + ca_pend_io
 *   image_get PV REPEATS           same, native DBR type (ca_field_type)
 *   scalar_get PV REPEATS WINDOW   ca_get(DBR_DOUBLE) + ca_pend_io round trips per second
 *   put_cb PV REPEATS WINDOW       ca_array_put_callback + wait for the callback, per second
 *   connect PREFIX N               create N channels PREFIX0..PREFIX(N-1), ca_pend_io until all connected (s)
 *   caget_many PREFIX N            cold caget of N names: create N channels, ca_pend_io, N ca_array_get
 *                                  (native type) into one buffer, ca_pend_io (s; bench/pv_bench.py)
 *   monitor PV REPEATS WINDOW      events/s delivered to a subscription callback (native type)
 *   monitor_image PV REPEATS WINDOW  frames/s; the callback memcpy()s every frame into a buffer
 *   writer PV                      put to PV as fast as possible until SIGTERM/SIGINT (prints puts/s)
 *   repeater                       run libca's CA repeater (EPICS_CA_REPEATER_PORT) until killed;
 *                                  run.py starts one so that no client spawns a stray caRepeater
 *
 * All modes use a preemptive-callback context, like the Python contenders.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cadef.h>
#include <epicsEvent.h>

/* libca's repeater loop; exported by libca but not declared in its public headers */
void caRepeaterThread(void *pDummy);

#define CHK(expr, what)                                                        \
    do {                                                                       \
        int st_ = (expr);                                                      \
        if (st_ != ECA_NORMAL) {                                               \
            fprintf(stderr, "rawca: %s: %s\n", (what), ca_message(st_));       \
            exit(2);                                                           \
        }                                                                      \
    } while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static chid connect1(const char *name, double timeout)
{
    chid ch;
    CHK(ca_create_channel(name, NULL, NULL, CA_PRIORITY_DEFAULT, &ch), "create_channel");
    if (ca_pend_io(timeout) != ECA_NORMAL) {
        fprintf(stderr, "rawca: %s: not connected after %.1f s\n", name, timeout);
        exit(2);
    }
    return ch;
}

static void print_samples(const char *unit, const double *s, int n, const char *extra)
{
    int i;
    printf("{\"unit\": \"%s\", \"samples\": [", unit);
    for (i = 0; i < n; i++)
        printf("%s%.9g", i ? ", " : "", s[i]);
    printf("], \"extra\": {%s}}\n", extra ? extra : "");
    fflush(stdout);
}

/* ---- put with callback -------------------------------------------------- */
static epicsEventId put_done;
static volatile int put_status;

static void put_cb(struct event_handler_args args)
{
    put_status = args.status;
    epicsEventSignal(put_done);
}

static void put_wait(chid ch, chtype type, unsigned long count, const void *buf)
{
    CHK(ca_array_put_callback(type, count, ch, buf, put_cb, NULL), "put_callback");
    ca_flush_io();
    if (epicsEventWaitWithTimeout(put_done, 30.0) != epicsEventWaitOK) {
        fprintf(stderr, "rawca: put callback timeout\n");
        exit(2);
    }
    if (put_status != ECA_NORMAL) {
        fprintf(stderr, "rawca: put failed: %s\n", ca_message(put_status));
        exit(2);
    }
}

/* ---- array gets --------------------------------------------------------- */
static int mode_get(const char *pv, int repeats, int native)
{
    chid ch = connect1(pv, 10.0);
    unsigned long count = ca_element_count(ch);
    chtype type = native ? dbf_type_to_DBR(ca_field_type(ch)) : DBR_DOUBLE;
    size_t bytes = dbr_size_n(type, count);
    void *buf = malloc(bytes);
    double *s = calloc(repeats, sizeof(double));
    char extra[256];
    int i;
    if (!buf || !s) {
        fprintf(stderr, "rawca: out of memory\n");
        return 2;
    }
    for (i = -1; i < repeats; i++) { /* i == -1: warm-up, not recorded */
        double t0 = now();
        /* a fresh buffer per get, like ca.get() returning a new array each
         * time: a 32 MB malloc is a fresh mmap whose pages fault in while
         * libca fills it. Reading into one reused buffer is what the
         * cext_out contender (get(..., out=array)) measures. */
        if (i >= 0) {
            free(buf);
            buf = malloc(bytes);
            if (!buf) {
                fprintf(stderr, "rawca: out of memory\n");
                return 2;
            }
        }
        CHK(ca_array_get(type, count, ch, buf), "array_get");
        CHK(ca_pend_io(60.0), "pend_io");
        if (i >= 0)
            s[i] = now() - t0;
    }
    /* sanity check of the reference pattern written by "fill" */
    if (type == DBR_DOUBLE) {
        double *d = buf;
        if (d[count - 1] != (double)(count - 1) || d[1] != 1.0) {
            fprintf(stderr, "rawca: unexpected data (last=%g)\n", d[count - 1]);
            return 2;
        }
    }
    snprintf(extra, sizeof extra,
             "\"count\": %lu, \"dbr_type\": \"%s\", \"field_type\": \"%s\", \"bytes\": %lu",
             count, dbr_type_to_text(type), dbf_type_to_text(ca_field_type(ch)),
             (unsigned long)bytes);
    print_samples("s", s, repeats, extra);
    return 0;
}

/* ---- scalar gets / puts ----------------------------------------------------- */
static int mode_scalar_get(const char *pv, int repeats, double window)
{
    chid ch = connect1(pv, 10.0);
    double *s = calloc(repeats, sizeof(double));
    double v;
    int i;
    CHK(ca_get(DBR_DOUBLE, ch, &v), "get");
    CHK(ca_pend_io(10.0), "pend_io");
    for (i = 0; i < repeats; i++) {
        long n = 0;
        double t0 = now(), t;
        do {
            CHK(ca_get(DBR_DOUBLE, ch, &v), "get");
            CHK(ca_pend_io(10.0), "pend_io");
            n++;
        } while ((t = now() - t0) < window);
        s[i] = n / t;
    }
    print_samples("gets/s", s, repeats, "");
    return 0;
}

static int mode_put_cb(const char *pv, int repeats, double window)
{
    chid ch = connect1(pv, 10.0);
    double *s = calloc(repeats, sizeof(double));
    double v = 0;
    int i;
    put_done = epicsEventMustCreate(epicsEventEmpty);
    put_wait(ch, DBR_DOUBLE, 1, &v);
    for (i = 0; i < repeats; i++) {
        long n = 0;
        double t0 = now(), t;
        do {
            v += 1.0;
            put_wait(ch, DBR_DOUBLE, 1, &v);
            n++;
        } while ((t = now() - t0) < window);
        s[i] = n / t;
    }
    print_samples("puts/s", s, repeats, "");
    return 0;
}

/* ---- connect -------------------------------------------------------------- */
static int mode_connect(const char *prefix, int n)
{
    chid *chs = calloc(n, sizeof(chid));
    char name[256];
    double t0, t;
    int i, nconn = 0;
    t0 = now();
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%d", prefix, i);
        CHK(ca_create_channel(name, NULL, NULL, CA_PRIORITY_DEFAULT, &chs[i]), "create_channel");
    }
    CHK(ca_pend_io(60.0), "pend_io (connect)");
    t = now() - t0;
    for (i = 0; i < n; i++)
        nconn += ca_state(chs[i]) == cs_conn;
    if (nconn != n) {
        fprintf(stderr, "rawca: only %d of %d connected\n", nconn, n);
        return 2;
    }
    print_samples("s", &t, 1, "");
    return 0;
}

/* ---- cold caget of many names (bench/pv_bench.py) ------------------------- */
static int mode_caget_many(const char *prefix, int n)
{
    chid *chs = calloc(n, sizeof(chid));
    double *vals = calloc(n, sizeof(double)); /* the bench PVs are scalar DOUBLEs */
    char name[256];
    double t0, t;
    int i;
    t0 = now();
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%d", prefix, i);
        CHK(ca_create_channel(name, NULL, NULL, CA_PRIORITY_DEFAULT, &chs[i]), "create_channel");
    }
    CHK(ca_pend_io(60.0), "pend_io (connect)");
    for (i = 0; i < n; i++) {
        chtype type = dbf_type_to_DBR(ca_field_type(chs[i]));
        if (type != DBR_DOUBLE || ca_element_count(chs[i]) != 1) {
            fprintf(stderr, "rawca: %s%d is not a scalar DOUBLE\n", prefix, i);
            return 2;
        }
        CHK(ca_array_get(type, 1, chs[i], &vals[i]), "array_get");
    }
    CHK(ca_pend_io(60.0), "pend_io (get)");
    t = now() - t0;
    print_samples("s", &t, 1, "");
    free(vals);
    free(chs);
    return 0;
}

/* ---- monitors ------------------------------------------------------------- */
static volatile long events;
static void *frame_buf;
static size_t frame_bytes;

static void mon_cb(struct event_handler_args args)
{
    if (args.status == ECA_NORMAL && args.dbr) {
        if (frame_buf) {
            size_t b = dbr_size_n(args.type, args.count);
            memcpy(frame_buf, args.dbr, b < frame_bytes ? b : frame_bytes);
        }
        events++;
    }
}

static int mode_monitor(const char *pv, int repeats, double window, int image)
{
    chid ch = connect1(pv, 10.0);
    unsigned long count = ca_element_count(ch);
    chtype type = dbf_type_to_DBR(ca_field_type(ch));
    double *s = calloc(repeats, sizeof(double));
    evid ev;
    int i;
    if (image) {
        frame_bytes = dbr_size_n(type, count);
        frame_buf = malloc(frame_bytes);
    }
    CHK(ca_create_subscription(type, count, ch, DBE_VALUE | DBE_ALARM, mon_cb, NULL, &ev),
        "create_subscription");
    ca_flush_io();
    sleep_s(0.5); /* let the stream settle */
    for (i = 0; i < repeats; i++) {
        long e0 = events;
        double t0 = now(), t;
        sleep_s(window);
        t = now() - t0;
        s[i] = (events - e0) / t;
    }
    print_samples(image ? "frames/s" : "events/s", s, repeats, "");
    return 0;
}

/* ---- writer --------------------------------------------------------------- */
static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int mode_writer(const char *pv)
{
    chid ch = connect1(pv, 10.0);
    unsigned long count = ca_element_count(ch);
    chtype type = dbf_type_to_DBR(ca_field_type(ch));
    long n = 0;
    double t0;
    void *buf;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if (count > 1) { /* image: a LONG/native array, values change each put */
        buf = calloc(count, dbr_size_n(type, 1));
    } else {
        type = DBR_DOUBLE;
        buf = calloc(1, sizeof(double));
    }
    t0 = now();
    while (!stop) {
        if (count > 1 && type == DBR_LONG)
            ((dbr_long_t *)buf)[0] = (dbr_long_t)(n & 0xffff);
        else if (count == 1)
            *(double *)buf = (double)n;
        CHK(ca_array_put(type, count, ch, buf), "put");
        if (count > 1 || (n & 63) == 0)
            ca_flush_io();
        n++;
    }
    ca_flush_io();
    fprintf(stderr, "rawca writer: %ld puts in %.2f s\n", n, now() - t0);
    printf("{\"puts\": %ld, \"seconds\": %.3f, \"rate\": %.1f}\n", n, now() - t0, n / (now() - t0));
    fflush(stdout);
    ca_clear_channel(ch);
    ca_context_destroy();
    return 0;
}

/* ---- fill ------------------------------------------------------------------ */
static int mode_fill(int argc, char **argv)
{
    int k;
    put_done = epicsEventMustCreate(epicsEventEmpty);
    for (k = 0; k < argc; k++) {
        chid ch = connect1(argv[k], 10.0);
        unsigned long i, count = ca_element_count(ch);
        short ft = ca_field_type(ch);
        if (ft == DBF_DOUBLE) {
            double *d = malloc(count * sizeof(double));
            for (i = 0; i < count; i++)
                d[i] = (double)i;
            put_wait(ch, DBR_DOUBLE, count, d);
            free(d);
        } else {
            dbr_long_t *d = malloc(count * sizeof(dbr_long_t));
            for (i = 0; i < count; i++)
                d[i] = (dbr_long_t)(i & 0xffff);
            put_wait(ch, DBR_LONG, count, d);
            free(d);
        }
    }
    printf("{\"ok\": true}\n");
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode;
    int repeats = argc > 3 ? atoi(argv[3]) : 1;
    double window = argc > 4 ? atof(argv[4]) : 1.0;
    if (argc < 2 || (argc < 3 && strcmp(argv[1], "repeater"))) {
        fprintf(stderr, "usage: rawca MODE ARGS... (see source)\n");
        return 1;
    }
    if (repeats < 1)
        repeats = 1;
    mode = argv[1];
    if (!strcmp(mode, "repeater")) {
        caRepeaterThread(NULL);
        return 0;
    }
    CHK(ca_context_create(ca_enable_preemptive_callback), "context_create");
    if (!strcmp(mode, "check")) {
        connect1(argv[2], 10.0);
        printf("{\"ok\": true}\n");
        return 0;
    }
    if (!strcmp(mode, "fill"))
        return mode_fill(argc - 2, argv + 2);
    if (!strcmp(mode, "big_get"))
        return mode_get(argv[2], repeats, 0);
    if (!strcmp(mode, "image_get"))
        return mode_get(argv[2], repeats, 1);
    if (!strcmp(mode, "scalar_get"))
        return mode_scalar_get(argv[2], repeats, window);
    if (!strcmp(mode, "put_cb"))
        return mode_put_cb(argv[2], repeats, window);
    if (!strcmp(mode, "connect"))
        return mode_connect(argv[2], repeats);
    if (!strcmp(mode, "caget_many"))
        return mode_caget_many(argv[2], repeats);
    if (!strcmp(mode, "monitor"))
        return mode_monitor(argv[2], repeats, window, 0);
    if (!strcmp(mode, "monitor_image"))
        return mode_monitor(argv[2], repeats, window, 1);
    if (!strcmp(mode, "writer"))
        return mode_writer(argv[2]);
    fprintf(stderr, "rawca: unknown mode %s\n", mode);
    return 1;
}
