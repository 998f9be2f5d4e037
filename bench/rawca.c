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
 *   monitor_ring PV SECONDS WARMUP BUFFERS [WORK_MS [TICKPV [PRIORITY]]]
 *                                  bench/array_bench.py's raw reference of ArrayMonitor: subscribe
 *                                  DBR_TIME_ENUM, count 0 (the server's current length); the event
 *                                  callback copies each frame into a free one of BUFFERS preallocated
 *                                  buffers (ring, "latest" policy: an undelivered frame is replaced)
 *                                  with its status/severity/stamp/count; a consumer thread takes the
 *                                  newest frame (releasing the previous one), counts it and spends
 *                                  WORK_MS ms on it (sleep). TICKPV: also monitor that scalar with
 *                                  DBR_TIME_DOUBLE and record its latency (receive time - stamp).
 *                                  Counters, CPU (getrusage, all threads) and RSS (/proc/self/statm)
 *                                  are reset after WARMUP s and read after SECONDS s more; prints
 *                                  {"frames", "fps", "MBps", "cpu_per_GB", "cpu", "rss_growth_MB",
 *                                  ["p50_ms", "p99_ms", "ticks"], "received", "dropped", "t0", "t1"}
 *                                  (t0, t1: CLOCK_MONOTONIC bounds of the measurement). PV "-":
 *                                  no image (tick latency alone). PRIORITY: CA priority of PV's
 *                                  channel (default 0; ArrayMonitor's default 1 gives the image a
 *                                  TCP circuit of its own, apart from TICKPV's).
 *   put_image PV COUNT             put COUNT DBR_ENUM elements to PV with put callback, next put when
 *                                  the callback came, until SIGTERM/SIGINT; prints "ready" once
 *                                  connected, then {"puts", "seconds", "rate", "done"}; "done": the
 *                                  CLOCK_MONOTONIC time of every completed put (array_bench --writer raw)
 *   caget_list NAMEFILE            caget_many for the names in NAMEFILE (one a line; scalar DOUBLEs)
 *   scale_monitor NAMEFILE WINDOW  the "scale" workload of run.py: create a channel for every name of
 *                                  NAMEFILE, ca_pend_io until all are connected (connect_s), subscribe
 *                                  DBR_DOUBLE to all of them (the C callback stores each channel's last
 *                                  value and counts), wait for every initial update (first_s), settle
 *                                  1 s, then count updates for WINDOW s: "received" = the sum over the
 *                                  channels of their updates, "generated" = the sum over the channels of
 *                                  (last value at the end - last value at the start): the calc records
 *                                  count up by one per scan. RSS (/proc/self/statm) is read
 *                                  before the first create, when all are connected and when all are
 *                                  subscribed; CPU (getrusage) over the window. Prints the JSON with
 *                                  "exit_start" (CLOCK_REALTIME) and returns from main with everything
 *                                  live: the harness times the exit.
 *   scale_missing NAMEFILE NEXPECT TIMEOUT WINDOW
 *                                  create channels for every name (NEXPECT of them exist), connection
 *                                  callback notes the time of each connect; waits until NEXPECT are
 *                                  connected or TIMEOUT ("at_timeout": how many were by then). Then
 *                                  keeps every channel (the missing ones still searching) WINDOW s more
 *                                  and prints the CLOCK_REALTIME window bounds, for the harness's count
 *                                  of UDP search datagrams; "connected"/"rest_s": how many connected in
 *                                  all and when the last one did (also during the window).
 *   connect_twice PV1 PV2          libca's search scheduling alone: a cold context connects PV1
 *                                  (create + ca_pend_io), then a second name PV2 on the same server
 *                                  (the circuit exists: only the UDP search is new), then a get round
 *                                  trip; prints {"cold_s", "warm_name_s", "get_s"}
 *   wire_get PORT PV REPEATS WINDOW  the CA round trip without libca: one blocking TCP socket to
 *                                  127.0.0.1:PORT (TCP_NODELAY), the CA handshake by hand
 *                                  (VERSION, CLIENT_NAME, HOST_NAME, CREATE_CHAN), then READ_NOTIFY
 *                                  DBR_DOUBLE / read the reply in a loop: gets/s with no thread
 *                                  hand-off on the client side (compare scalar_get)
 *   oab NR NW REPEATS WINDOW       bench/ophyd_async_bench.py's libca floor, its workload with no Python:
 *                                  create oab:t:0..NR-1 and oab:w:0..NW-1, ca_pend_io (connect_s);
 *                                  REPEATS times a DBR_TIME_DOUBLE get of every oab:t + one ca_pend_io
 *                                  (read_s: median), REPEATS times a put with callback to every oab:w
 *                                  at once, until the last callback (set_s: median); then a
 *                                  DBR_TIME_DOUBLE subscription on every oab:t, 2 s to settle, and
 *                                  over WINDOW s process CPU % (getrusage) and events/s
 *                                  (monitor_cpu_pct, monitor_rate). Prints them as "extra".
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

#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <cadef.h>
#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsTime.h>

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

static chid connect_prio(const char *name, double timeout, unsigned priority)
{
    chid ch;
    CHK(ca_create_channel(name, NULL, NULL, priority, &ch), "create_channel");
    if (ca_pend_io(timeout) != ECA_NORMAL) {
        fprintf(stderr, "rawca: %s: not connected after %.1f s\n", name, timeout);
        exit(2);
    }
    return ch;
}

static chid connect1(const char *name, double timeout)
{
    return connect_prio(name, timeout, CA_PRIORITY_DEFAULT);
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

/* ---- ring monitor: ArrayMonitor's work in C (bench/array_bench.py) -------------- */
typedef struct {
    int n;                    /* number of slots */
    size_t cap;               /* elements per slot */
    dbr_enum_t **buf;
    unsigned long *count;
    double *stamp;
    short *status, *severity;
    unsigned long *seq;
    int held, pending, last;  /* slot the consumer holds, newest undelivered, last written */
    unsigned long received, dropped;
    long frames;              /* taken by the consumer (since the last reset) */
    double bytes;
    epicsMutexId lock;
    epicsEventId ready;
} ring_t;

static ring_t ring;
static volatile int ring_stop;
static double work_s;
static double *lat;
static long nlat, caplat;
static volatile int lat_on;

static void ring_cb(struct event_handler_args args)
{
    const struct dbr_time_enum *v = args.dbr;
    unsigned long n;
    int k, slot = -1;
    if (args.status != ECA_NORMAL || !v)
        return;
    n = (unsigned long)args.count < ring.cap ? (unsigned long)args.count : ring.cap;
    epicsMutexMustLock(ring.lock);
    ring.received++;
    for (k = 1; k <= ring.n; k++) { /* round robin over the free slots */
        int i = (ring.last + k) % ring.n;
        if (i != ring.held && i != ring.pending) {
            slot = i;
            break;
        }
    }
    if (slot < 0) { /* only with 2 slots: overwrite the undelivered frame */
        slot = ring.pending;
        ring.pending = -1;
        ring.dropped++;
    }
    epicsMutexUnlock(ring.lock);
    /* the slot is neither held nor pending: only this thread touches it */
    memcpy(ring.buf[slot], dbr_value_ptr(v, args.type), n * sizeof(dbr_enum_t));
    ring.count[slot] = n;
    ring.status[slot] = v->status;
    ring.severity[slot] = v->severity;
    ring.stamp[slot] = v->stamp.secPastEpoch + POSIX_TIME_AT_EPICS_EPOCH + v->stamp.nsec * 1e-9;
    epicsMutexMustLock(ring.lock);
    ring.seq[slot] = ring.received;
    if (ring.pending >= 0)
        ring.dropped++; /* "latest": the waiting frame is replaced, its slot freed */
    ring.pending = slot;
    ring.last = slot;
    epicsMutexUnlock(ring.lock);
    epicsEventSignal(ring.ready);
}

static void ring_consumer(void *unused)
{
    (void)unused;
    while (!ring_stop) {
        epicsEventWaitWithTimeout(ring.ready, 0.2);
        epicsMutexMustLock(ring.lock);
        if (ring.pending < 0) {
            epicsMutexUnlock(ring.lock);
            continue;
        }
        ring.held = ring.pending; /* taking a frame releases the previous one */
        ring.pending = -1;
        ring.frames++;
        ring.bytes += (double)ring.count[ring.held] * sizeof(dbr_enum_t);
        epicsMutexUnlock(ring.lock);
        if (work_s > 0)
            sleep_s(work_s);
    }
}

static void tick_cb(struct event_handler_args args)
{
    const struct dbr_time_double *v = args.dbr;
    struct timespec ts;
    double stamp;
    if (args.status != ECA_NORMAL || !v || !lat_on)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    stamp = v->stamp.secPastEpoch + POSIX_TIME_AT_EPICS_EPOCH + v->stamp.nsec * 1e-9;
    if (nlat < caplat)
        lat[nlat++] = ts.tv_sec + ts.tv_nsec * 1e-9 - stamp;
}

static double cpu_s(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec * 1e-6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec * 1e-6;
}

static double rss_mb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int mode_monitor_ring(int argc, char **argv)
{
    const char *pv = argv[0], *tickpv = argc > 5 && strcmp(argv[5], "-") ? argv[5] : NULL;
    unsigned priority = argc > 6 ? (unsigned)atoi(argv[6]) : CA_PRIORITY_DEFAULT;
    double seconds = atof(argv[1]), warmup = atof(argv[2]);
    int i, nbuf = atoi(argv[3]);
    double c0, t0, r0, used, elapsed, bytes;
    long frames;
    unsigned long received, dropped;
    evid ev;
    work_s = argc > 4 ? atof(argv[4]) / 1e3 : 0.0;
    if (nbuf < 2) {
        fprintf(stderr, "rawca: BUFFERS must be >= 2\n");
        return 1;
    }
    if (tickpv) {
        chid tick = connect1(tickpv, 10.0);
        caplat = (long)((seconds + warmup) * 2000) + 1000;
        lat = malloc(caplat * sizeof(double));
        CHK(ca_create_subscription(DBR_TIME_DOUBLE, 1, tick, DBE_VALUE | DBE_ALARM, tick_cb, NULL, &ev),
            "create_subscription (tick)");
    }
    ring.lock = epicsMutexMustCreate();
    ring.ready = epicsEventMustCreate(epicsEventEmpty);
    ring.held = ring.pending = -1;
    ring.last = nbuf - 1;
    if (strcmp(pv, "-")) {
        chid ch = connect_prio(pv, 10.0, priority);
        ring.n = nbuf;
        ring.cap = ca_element_count(ch);
        ring.buf = calloc(nbuf, sizeof *ring.buf);
        ring.count = calloc(nbuf, sizeof *ring.count);
        ring.stamp = calloc(nbuf, sizeof *ring.stamp);
        ring.status = calloc(nbuf, sizeof *ring.status);
        ring.severity = calloc(nbuf, sizeof *ring.severity);
        ring.seq = calloc(nbuf, sizeof *ring.seq);
        for (i = 0; i < nbuf; i++) {
            /* preallocated and touched, like numpy.zeros buffers */
            ring.buf[i] = calloc(ring.cap, sizeof(dbr_enum_t));
            if (!ring.buf[i]) {
                fprintf(stderr, "rawca: out of memory\n");
                return 2;
            }
            memset(ring.buf[i], 0, ring.cap * sizeof(dbr_enum_t));
        }
        epicsThreadMustCreate("consumer", epicsThreadPriorityMedium,
                              epicsThreadGetStackSize(epicsThreadStackMedium), ring_consumer, NULL);
        CHK(ca_create_subscription(DBR_TIME_ENUM, 0, ch, DBE_VALUE | DBE_ALARM, ring_cb, NULL, &ev),
            "create_subscription");
    }
    ca_flush_io();
    lat_on = 1;
    sleep_s(warmup);
    epicsMutexMustLock(ring.lock);
    ring.frames = 0;
    ring.bytes = 0;
    ring.received = ring.dropped = 0;
    nlat = 0;
    c0 = cpu_s();
    t0 = now();
    r0 = rss_mb();
    epicsMutexUnlock(ring.lock);
    sleep_s(seconds);
    epicsMutexMustLock(ring.lock);
    elapsed = now() - t0;
    used = cpu_s() - c0;
    frames = ring.frames;
    bytes = ring.bytes;
    received = ring.received;
    dropped = ring.dropped;
    lat_on = 0;
    epicsMutexUnlock(ring.lock);
    printf("{\"frames\": %ld, \"fps\": %.3f, \"MBps\": %.3f, ", frames, frames / elapsed,
           bytes / 1e6 / elapsed);
    if (bytes > 0)
        printf("\"cpu_per_GB\": %.6f, ", used / (bytes / 1e9));
    else
        printf("\"cpu_per_GB\": null, ");
    printf("\"cpu\": %.6f, \"rss_growth_MB\": %.3f, \"received\": %lu, \"dropped\": %lu, "
           "\"t0\": %.6f, \"t1\": %.6f", used, rss_mb() - r0, received, dropped, t0, t0 + elapsed);
    if (tickpv && nlat > 0) {
        qsort(lat, nlat, sizeof(double), cmp_double);
        printf(", \"p50_ms\": %.4f, \"p99_ms\": %.4f, \"ticks\": %ld", 1e3 * lat[nlat / 2],
               1e3 * lat[(long)(nlat * 0.99) < nlat - 1 ? (long)(nlat * 0.99) : nlat - 1], nlat);
    }
    printf("}\n");
    fflush(stdout);
    _exit(0); /* no libca teardown under load, like the Python clients' os._exit */
}

/* ---- scale workload (run.py "scale") -------------------------------------- */
static char **read_names(const char *path, int *n)
{
    FILE *f = fopen(path, "r");
    char line[256];
    char **names = NULL;
    int cap = 0;
    *n = 0;
    if (!f) {
        fprintf(stderr, "rawca: cannot open %s\n", path);
        exit(2);
    }
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        if (!len)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            names = realloc(names, cap * sizeof *names);
        }
        names[(*n)++] = strdup(line);
    }
    fclose(f);
    return names;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int mode_caget_list(const char *path)
{
    int i, n;
    char **names = read_names(path, &n);
    chid *chs = calloc(n, sizeof(chid));
    double *vals = calloc(n, sizeof(double));
    double t0, t;
    t0 = now();
    for (i = 0; i < n; i++)
        CHK(ca_create_channel(names[i], NULL, NULL, CA_PRIORITY_DEFAULT, &chs[i]), "create_channel");
    CHK(ca_pend_io(120.0), "pend_io (connect)");
    for (i = 0; i < n; i++)
        CHK(ca_array_get(DBR_DOUBLE, 1, chs[i], &vals[i]), "array_get");
    CHK(ca_pend_io(120.0), "pend_io (get)");
    t = now() - t0;
    print_samples("s", &t, 1, "");
    _exit(0);
}

static double *scale_last;
static long *scale_per;
static volatile long scale_events;

static void scale_cb(struct event_handler_args args)
{
    if (args.status == ECA_NORMAL && args.dbr) {
        size_t i = (size_t)args.usr;
        scale_last[i] = *(const double *)args.dbr;
        scale_per[i]++;
        scale_events++;
    }
}

static int mode_scale_monitor(const char *path, double window)
{
    int i, n;
    char **names = read_names(path, &n);
    chid *chs = calloc(n, sizeof(chid));
    double *start = calloc(n, sizeof(double));
    long *start_per = calloc(n, sizeof(long));
    double rss0, rss1, rss2, t0, connect_s, first_s, c0, w0, cpu, el, gen = 0;
    long received = 0;
    evid ev;
    scale_last = calloc(n, sizeof(double));
    scale_per = calloc(n, sizeof(long));
    for (i = 0; i < n; i++)
        scale_last[i] = -1;
    rss0 = rss_mb();
    t0 = now();
    for (i = 0; i < n; i++)
        CHK(ca_create_channel(names[i], NULL, NULL, CA_PRIORITY_DEFAULT, &chs[i]), "create_channel");
    CHK(ca_pend_io(120.0), "pend_io (connect)");
    connect_s = now() - t0;
    rss1 = rss_mb();
    t0 = now();
    for (i = 0; i < n; i++)
        CHK(ca_create_subscription(DBR_DOUBLE, 1, chs[i], DBE_VALUE | DBE_ALARM, scale_cb,
                                   (void *)(size_t)i, &ev), "create_subscription");
    ca_flush_io();
    for (i = 0; i < n && now() - t0 < 120;) { /* until every channel had its first update */
        if (scale_per[i])
            i++;
        else
            sleep_s(0.01);
    }
    first_s = now() - t0;
    rss2 = rss_mb();
    sleep_s(1.0);
    for (i = 0; i < n; i++) { /* per channel (updates, value), read together */
        start_per[i] = scale_per[i];
        start[i] = scale_last[i];
    }
    c0 = cpu_s();
    w0 = now();
    sleep_s(window);
    el = now() - w0;
    cpu = cpu_s() - c0;
    for (i = 0; i < n; i++) {
        received += scale_per[i] - start_per[i];
        gen += scale_last[i] - start[i];
    }
    printf("{\"n\": %d, \"connect_s\": %.6f, \"first_s\": %.6f, \"rss0_MB\": %.3f, \"rss_conn_MB\": %.3f, "
           "\"rss_sub_MB\": %.3f, \"window_s\": %.3f, \"cpu_s\": %.4f, \"received\": %ld, "
           "\"generated\": %.0f, \"exit_start\": %.6f}\n",
           n, connect_s, first_s, rss0, rss1, rss2, el, cpu, received, gen, wall());
    fflush(stdout);
    return 0; /* exit with every channel and subscription live */
}

static volatile long missing_conn;
static double missing_t0, missing_last;

static void missing_conn_cb(struct connection_handler_args args)
{
    if (args.op == CA_OP_CONN_UP) {
        missing_conn++;
        missing_last = now();
    }
}

static int mode_scale_missing(const char *path, int expect, double timeout, double window)
{
    int i, n;
    char **names = read_names(path, &n);
    chid *chs = calloc(n, sizeof(chid));
    double w0;
    missing_t0 = now();
    for (i = 0; i < n; i++)
        CHK(ca_create_channel(names[i], missing_conn_cb, NULL, CA_PRIORITY_DEFAULT, &chs[i]),
            "create_channel");
    ca_flush_io();
    long at_timeout;
    while (missing_conn < expect && now() - missing_t0 < timeout)
        sleep_s(0.01);
    at_timeout = missing_conn;
    w0 = wall();
    sleep_s(window);
    printf("{\"n\": %d, \"at_timeout\": %ld, \"connected\": %ld, \"rest_s\": %.6f, "
           "\"window_start\": %.6f, \"window_end\": %.6f}\n", n, at_timeout, missing_conn,
           missing_conn ? missing_last - missing_t0 : -1.0, w0, wall());
    fflush(stdout);
    _exit(0);
}

/* ---- libca floors (bench/floors.py) ---------------------------------------- */
/* ---- bench/ophyd_async_bench.py's workload, libca alone ------------------- */
static epicsEventId oab_done;
static epicsMutexId oab_lock;
static int oab_left, oab_failed;
static volatile long oab_events;

static void oab_put_cb(struct event_handler_args args)
{
    int last;
    epicsMutexMustLock(oab_lock);
    oab_failed |= args.status != ECA_NORMAL;
    last = --oab_left == 0;
    epicsMutexUnlock(oab_lock);
    if (last)
        epicsEventSignal(oab_done);
}

static void oab_mon_cb(struct event_handler_args args)
{
    if (args.status == ECA_NORMAL && args.dbr)
        oab_events++; /* one callback thread per circuit: one circuit here */
}

static double median(double *s, int n)
{
    qsort(s, n, sizeof(double), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static int mode_oab(int nr, int nw, int repeats, double window)
{
    chid *r = calloc(nr, sizeof(chid)), *w = calloc(nw, sizeof(chid));
    struct dbr_time_double *vals = calloc(nr, sizeof(struct dbr_time_double));
    double *s = calloc(repeats, sizeof(double));
    double *out = calloc(nw, sizeof(double));
    double t0, connect_s, read_s, set_s, c0, w0, cpu, el;
    long e0;
    char name[64];
    int i, k;
    evid ev;
    oab_done = epicsEventMustCreate(epicsEventEmpty);
    oab_lock = epicsMutexMustCreate();
    t0 = now();
    for (i = 0; i < nr; i++) {
        snprintf(name, sizeof name, "oab:t:%d", i);
        CHK(ca_create_channel(name, NULL, NULL, CA_PRIORITY_DEFAULT, &r[i]), "create_channel");
    }
    for (i = 0; i < nw; i++) {
        snprintf(name, sizeof name, "oab:w:%d", i);
        CHK(ca_create_channel(name, NULL, NULL, CA_PRIORITY_DEFAULT, &w[i]), "create_channel");
    }
    CHK(ca_pend_io(120.0), "pend_io (connect)");
    connect_s = now() - t0;
    for (k = 0; k < repeats; k++) {
        t0 = now();
        for (i = 0; i < nr; i++)
            CHK(ca_array_get(DBR_TIME_DOUBLE, 1, r[i], &vals[i]), "array_get");
        CHK(ca_pend_io(60.0), "pend_io (get)");
        s[k] = now() - t0;
    }
    read_s = median(s, repeats);
    for (k = 0; k < repeats; k++) {
        t0 = now();
        oab_left = nw;
        for (i = 0; i < nw; i++) {
            out[i] = i + k;
            CHK(ca_array_put_callback(DBR_DOUBLE, 1, w[i], &out[i], oab_put_cb, NULL),
                "put_callback");
        }
        ca_flush_io();
        if (epicsEventWaitWithTimeout(oab_done, 60.0) != epicsEventWaitOK || oab_failed) {
            fprintf(stderr, "rawca: oab puts failed or timed out\n");
            return 2;
        }
        s[k] = now() - t0;
    }
    set_s = median(s, repeats);
    for (i = 0; i < nr; i++)
        CHK(ca_create_subscription(DBR_TIME_DOUBLE, 1, r[i], DBE_VALUE | DBE_ALARM, oab_mon_cb,
                                   NULL, &ev), "create_subscription");
    ca_flush_io();
    sleep_s(2.0);
    e0 = oab_events;
    c0 = cpu_s();
    w0 = now();
    sleep_s(window);
    el = now() - w0;
    cpu = cpu_s() - c0;
    printf("{\"unit\": \"oab\", \"samples\": [], \"extra\": {\"connect_s\": %.6f, \"read_s\": %.6f, "
           "\"set_s\": %.6f, \"monitor_cpu_pct\": %.4f, \"monitor_rate\": %.1f}}\n",
           connect_s, read_s, set_s, 100.0 * cpu / el, (oab_events - e0) / el);
    fflush(stdout);
    return 0;
}

static int mode_connect_twice(const char *pv1, const char *pv2)
{
    chid a, b;
    double t0, cold, warm, get, v;
    t0 = now();
    CHK(ca_create_channel(pv1, NULL, NULL, CA_PRIORITY_DEFAULT, &a), "create_channel");
    CHK(ca_pend_io(10.0), "pend_io");
    cold = now() - t0;
    t0 = now();
    CHK(ca_create_channel(pv2, NULL, NULL, CA_PRIORITY_DEFAULT, &b), "create_channel");
    CHK(ca_pend_io(10.0), "pend_io");
    warm = now() - t0;
    t0 = now();
    CHK(ca_get(DBR_DOUBLE, b, &v), "get");
    CHK(ca_pend_io(10.0), "pend_io");
    get = now() - t0;
    printf("{\"cold_s\": %.6f, \"warm_name_s\": %.6f, \"get_s\": %.6f}\n", cold, warm, get);
    fflush(stdout);
    _exit(0);
}

static void put_hdr(unsigned char *p, unsigned cmd, unsigned size, unsigned type, unsigned count,
                    unsigned p1, unsigned p2)
{
    p[0] = cmd >> 8; p[1] = cmd; p[2] = size >> 8; p[3] = size;
    p[4] = type >> 8; p[5] = type; p[6] = count >> 8; p[7] = count;
    p[8] = p1 >> 24; p[9] = p1 >> 16; p[10] = p1 >> 8; p[11] = p1;
    p[12] = p2 >> 24; p[13] = p2 >> 16; p[14] = p2 >> 8; p[15] = p2;
}

static unsigned get32(const unsigned char *p)
{
    return ((unsigned)p[0] << 24) | ((unsigned)p[1] << 16) | ((unsigned)p[2] << 8) | p[3];
}

static void read_full(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0) {
            fprintf(stderr, "rawca: wire: connection closed\n");
            exit(2);
        }
        got += (size_t)r;
    }
}

/* read one CA message (header + payload into buf, which must hold 16 + 4096 bytes) */
static unsigned read_msg(int fd, unsigned char *buf, unsigned *size)
{
    unsigned cmd;
    read_full(fd, buf, 16);
    cmd = (buf[0] << 8) | buf[1];
    *size = (buf[2] << 8) | buf[3];
    if (*size > 4096) {
        fprintf(stderr, "rawca: wire: unexpected payload %u\n", *size);
        exit(2);
    }
    read_full(fd, buf + 16, *size);
    return cmd;
}

static size_t padded(const char *s) { return (strlen(s) + 1 + 7) & ~(size_t)7; }

static int mode_wire_get(int port, const char *pv, int repeats, double window)
{
    unsigned char out[512], in[16 + 4096];
    const char *user = "rawca", *host = "localhost";
    size_t off = 0;
    unsigned sid = 0, size, cmd, ioid = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, i, have_sid = 0;
    struct sockaddr_in sa;
    double *s = calloc(repeats, sizeof(double));
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "rawca: wire: cannot connect to port %d\n", port);
        return 2;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(out, 0, sizeof out);
    put_hdr(out + off, 0, 0, 0, 13, 0, 0); /* VERSION, priority 0, minor 13 */
    off += 16;
    put_hdr(out + off, 20, (unsigned)padded(user), 0, 0, 0, 0); /* CLIENT_NAME */
    strcpy((char *)out + off + 16, user);
    off += 16 + padded(user);
    put_hdr(out + off, 21, (unsigned)padded(host), 0, 0, 0, 0); /* HOST_NAME */
    strcpy((char *)out + off + 16, host);
    off += 16 + padded(host);
    put_hdr(out + off, 18, (unsigned)padded(pv), 0, 0, 1, 13); /* CREATE_CHAN cid 1 */
    strcpy((char *)out + off + 16, pv);
    off += 16 + padded(pv);
    if (send(fd, out, off, 0) != (ssize_t)off) {
        fprintf(stderr, "rawca: wire: send failed\n");
        return 2;
    }
    while (!have_sid) {
        cmd = read_msg(fd, in, &size);
        if (cmd == 18) { /* CREATE_CHAN reply: p2 = sid */
            sid = get32(in + 12);
            have_sid = 1;
        } else if (cmd == 26) { /* CREATE_CH_FAIL */
            fprintf(stderr, "rawca: wire: %s not served on port %d\n", pv, port);
            return 2;
        }
    }
    for (i = -1; i < repeats; i++) { /* i == -1: one warm-up window */
        long n = 0;
        double t0 = now(), t;
        do {
            put_hdr(out, 15, 0, DBR_DOUBLE, 1, sid, ++ioid); /* READ_NOTIFY */
            if (send(fd, out, 16, 0) != 16) {
                fprintf(stderr, "rawca: wire: send failed\n");
                return 2;
            }
            do
                cmd = read_msg(fd, in, &size);
            while (cmd != 15);
            if (get32(in + 12) != ioid || get32(in + 8) != ECA_NORMAL) {
                fprintf(stderr, "rawca: wire: bad reply\n");
                return 2;
            }
            n++;
        } while ((t = now() - t0) < (i < 0 ? 0.1 : window));
        if (i >= 0)
            s[i] = n / t;
    }
    print_samples("gets/s", s, repeats, "");
    close(fd);
    return 0;
}

/* ---- image writer with put callback (array_bench --writer raw) ------------- */
static int mode_put_image(const char *pv, unsigned long count)
{
    chid ch = connect1(pv, 10.0);
    dbr_enum_t *frame;
    unsigned long i;
    long n = 0, cap = 0;
    double t0, *done = NULL;
    if (count < 1 || count > ca_element_count(ch)) {
        fprintf(stderr, "rawca: COUNT must be 1..%lu\n", ca_element_count(ch));
        return 1;
    }
    frame = malloc(count * sizeof(dbr_enum_t));
    for (i = 0; i < count; i++)
        frame[i] = (dbr_enum_t)(i & 0xffff);
    put_done = epicsEventMustCreate(epicsEventEmpty);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("ready\n");
    fflush(stdout);
    t0 = now();
    while (!stop) {
        frame[0] = (dbr_enum_t)(n & 0xffff);
        put_wait(ch, DBR_ENUM, count, frame);
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            done = realloc(done, cap * sizeof(double));
            if (!done) {
                fprintf(stderr, "rawca: out of memory\n");
                return 2;
            }
        }
        done[n++] = now();
    }
    printf("{\"puts\": %ld, \"seconds\": %.3f, \"rate\": %.1f, \"done\": [", n, now() - t0,
           n / (now() - t0));
    for (i = 0; i < (unsigned long)n; i++)
        printf("%s%.6f", i ? ", " : "", done[i]);
    printf("]}\n");
    fflush(stdout);
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
    if (!strcmp(mode, "wire_get") && argc > 5) /* no libca context */
        return mode_wire_get(atoi(argv[2]), argv[3], atoi(argv[4]), atof(argv[5]));
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
    if (!strcmp(mode, "monitor_ring")) {
        if (argc < 6) {
            fprintf(stderr, "usage: rawca monitor_ring PV SECONDS WARMUP BUFFERS [WORK_MS [TICKPV "
                    "[PRIORITY]]]\n");
            return 1;
        }
        return mode_monitor_ring(argc - 2, argv + 2);
    }
    if (!strcmp(mode, "connect_twice") && argc > 3)
        return mode_connect_twice(argv[2], argv[3]);
    if (!strcmp(mode, "caget_list"))
        return mode_caget_list(argv[2]);
    if (!strcmp(mode, "scale_monitor") && argc > 3)
        return mode_scale_monitor(argv[2], atof(argv[3]));
    if (!strcmp(mode, "scale_missing") && argc > 5)
        return mode_scale_missing(argv[2], atoi(argv[3]), atof(argv[4]), atof(argv[5]));
    if (!strcmp(mode, "oab") && argc > 5)
        return mode_oab(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
    if (!strcmp(mode, "put_image") && argc > 3)
        return mode_put_image(argv[2], strtoul(argv[3], NULL, 10));
    fprintf(stderr, "rawca: unknown mode %s\n", mode);
    return 1;
}
