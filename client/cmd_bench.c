/*
 * eiectl bench: a ghz-like load generator for ModelInfer and health Check.
 *
 * With two cores shared with the daemon, a thread per worker would spend the
 * machine on context switches. Instead a few threads each own a completion
 * queue and drive many outstanding calls on it: a "worker" is a slot with
 * one call in flight; when its call completes the slot records the latency
 * and starts the next call. Slots are spread over the threads and over N
 * channels, each with its own TCP connection. Every latency of a successful
 * call is recorded, so percentiles are exact (beyond 16 Mi calls a uniform
 * reservoir sample is kept and the report says so); min, max and mean are
 * always exact.
 *
 * With --rps the calls start on a schedule, as ghz's --rps does: call k
 * (counted over all threads) starts at k / R seconds after the first, or
 * when a slot is free if that is later, so the concurrency bounds what is
 * in flight and the rate what is sent. A slot whose call is not yet due
 * waits in its thread's queue of due times, and the thread's completion
 * queue wakes at the earliest of them. Latency is from a call's own start.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eiectl.h"
#include "health.pb-c.h"
#include "input.h"
#include "remote.h"
#include "report.h"

#define BENCH_MAX_CONCURRENCY 10000
#define BENCH_MAX_CONNECTIONS 1000
#define BENCH_MAX_THREADS 16
#define BENCH_MAX_COUNT 1000000000ULL
#define BENCH_MAX_DURATION_S 3600.0
#define BENCH_MAX_BATCH 65536
#define BENCH_MAX_RPS 1e6
/* Latencies kept for percentiles: 128 MiB of uint64. */
#define BENCH_MAX_SAMPLES ((size_t)16 << 20)
/* Status codes 0..16 and one bucket for anything else. */
#define BENCH_CODES 18
/* The first failed call's message kept for the report, bytes with the NUL. */
#define BENCH_ERROR_MAX 512

static volatile sig_atomic_t bench_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    bench_interrupted = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct bench bench_t;
typedef struct bench_thread bench_thread_t;

/* A slot waiting for its call's start time (--rps). */
typedef struct bench_due {
    struct bench_slot *slot;
    uint64_t at_ns;
} bench_due_t;

typedef struct bench_slot {
    bench_thread_t *t;
    grpc_channel *channel;
    grpc_call *call; /* NULL when idle */
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code code;
    grpc_slice details;
    uint64_t start_ns;
} bench_slot_t;

struct bench_thread {
    pthread_t thread;
    bench_t *b;
    grpc_completion_queue *cq;
    bench_slot_t **slots;
    size_t nslots;
    /* --rps: slots whose calls are not yet due, oldest first (a ring of
       nslots: due times rise in the order the thread took them). */
    bench_due_t *due;
    size_t due_head, due_count;
    uint64_t *lat; /* latencies of OK calls (ns), a reservoir once full */
    size_t nlat, cap_lat, max_lat;
    uint64_t ok_seen, rng;
    uint64_t codes[BENCH_CODES];
    uint64_t min_ns, max_ns;
    double sum_ns;
    bool ran; /* its thread ran and shut its queue down */
    /* The thread's first failed call: its code (-1: none) and the server's
       words, so that a run of failures says why. */
    int first_code;
    uint64_t first_ns; /* when it ended, to pick the run's first */
    char first_msg[BENCH_ERROR_MAX];
};

struct bench {
    grpc_slice method;
    grpc_slice payload;
    const grpc_metadata *md;
    size_t md_count;
    double timeout_s;
    uint64_t count;  /* -n; 0 with -z */
    uint64_t end_ns; /* -z; 0 with -n */
    double interval_ns; /* --rps: 1e9 / R between call starts; 0 = no schedule */
    uint64_t start_ns;  /* when call 0 is due */
    atomic_uint_fast64_t issued;
};

/* Whether another call may start (budget left and no Ctrl-C), and with
 * --rps when it is due (*at_ns; 0 = now). */
static bool bench_take(bench_t *b, uint64_t *at_ns)
{
    *at_ns = 0;
    if (bench_interrupted)
        return false;
    if (b->interval_ns > 0) {
        uint64_t k = atomic_fetch_add(&b->issued, 1);
        *at_ns = b->start_ns + (uint64_t)((double)k * b->interval_ns);
        return b->count ? k < b->count : *at_ns < b->end_ns;
    }
    if (b->count)
        return atomic_fetch_add(&b->issued, 1) < b->count;
    return now_ns() < b->end_ns;
}

static void slot_record(bench_slot_t *s, grpc_status_code code, uint64_t ns)
{
    bench_thread_t *t = s->t;
    t->codes[(unsigned)code < BENCH_CODES - 1 ? (unsigned)code : BENCH_CODES - 1]++;
    if (code != GRPC_STATUS_OK) {
        if (t->first_code < 0) {
            size_t n = GRPC_SLICE_LENGTH(s->details);
            if (n >= sizeof t->first_msg)
                n = sizeof t->first_msg - 1;
            memcpy(t->first_msg, GRPC_SLICE_START_PTR(s->details), n);
            t->first_msg[n] = 0;
            t->first_code = (int)code;
            t->first_ns = now_ns();
        }
        return;
    }
    t->sum_ns += (double)ns;
    if (t->ok_seen == 0 || ns < t->min_ns)
        t->min_ns = ns;
    if (ns > t->max_ns)
        t->max_ns = ns;
    t->ok_seen++;
    if (t->nlat < t->max_lat) {
        if (t->nlat == t->cap_lat) {
            size_t cap = t->cap_lat ? t->cap_lat * 2 : 4096;
            if (cap > t->max_lat)
                cap = t->max_lat;
            uint64_t *v = realloc(t->lat, cap * sizeof *v);
            if (v == NULL) {
                t->max_lat = t->nlat; /* keep what fits: becomes a reservoir */
                goto reservoir;
            }
            t->lat = v;
            t->cap_lat = cap;
        }
        t->lat[t->nlat++] = ns;
        return;
    }
reservoir:
    if (t->nlat == 0)
        return;
    /* Algorithm R: each of the ok_seen latencies stays with probability nlat/ok_seen. */
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    uint64_t j = t->rng % t->ok_seen;
    if (j < t->nlat)
        t->lat[j] = ns;
}

static void slot_release(bench_slot_t *s)
{
    if (s->recv != NULL)
        grpc_byte_buffer_destroy(s->recv);
    grpc_byte_buffer_destroy(s->send);
    grpc_slice_unref(s->details);
    grpc_metadata_array_destroy(&s->initial_md);
    grpc_metadata_array_destroy(&s->trailing_md);
    grpc_call_unref(s->call);
    s->call = NULL;
    s->send = s->recv = NULL;
}

/* Starts one call on the slot; false (and the failure counted) if it could not start. */
static bool slot_start(bench_slot_t *s)
{
    bench_t *b = s->t->b;
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis((int64_t)(b->timeout_s * 1000), GPR_TIMESPAN));
    s->call = grpc_channel_create_call(s->channel, NULL, GRPC_PROPAGATE_DEFAULTS, s->t->cq,
                                       b->method, NULL, deadline, NULL);
    s->send = grpc_raw_byte_buffer_create(&b->payload, 1);
    s->recv = NULL;
    grpc_metadata_array_init(&s->initial_md);
    grpc_metadata_array_init(&s->trailing_md);
    s->code = GRPC_STATUS_UNKNOWN;
    s->details = grpc_empty_slice();

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = b->md_count;
    ops[0].data.send_initial_metadata.metadata = (grpc_metadata *)b->md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &s->trailing_md;
    ops[5].data.recv_status_on_client.status = &s->code;
    ops[5].data.recv_status_on_client.status_details = &s->details;
    s->start_ns = now_ns();
    if (grpc_call_start_batch(s->call, ops, 6, s, NULL) != GRPC_CALL_OK) {
        slot_record(s, GRPC_STATUS_INTERNAL, 0);
        slot_release(s);
        return false;
    }
    return true;
}

/* Starts a call on s now, or queues s until at_ns; false if the call could
 * not start (counted as failed). */
static bool slot_begin(bench_slot_t *s, uint64_t at_ns)
{
    bench_thread_t *t = s->t;
    if (at_ns > now_ns()) {
        t->due[(t->due_head + t->due_count) % t->nslots] = (bench_due_t){s, at_ns};
        t->due_count++;
        return true;
    }
    return slot_start(s);
}

/* Starts the queued slots that are due; returns how many of them could not
 * start. */
static size_t start_due(bench_thread_t *t)
{
    size_t failed = 0;
    uint64_t now = now_ns();
    while (t->due_count > 0 && t->due[t->due_head].at_ns <= now) {
        bench_slot_t *s = t->due[t->due_head].slot;
        t->due_head = (t->due_head + 1) % t->nslots;
        t->due_count--;
        if (!slot_start(s))
            failed++;
    }
    return failed;
}

static void *bench_thread_main(void *arg)
{
    bench_thread_t *t = arg;
    size_t active = 0; /* slots with a call in flight or due */
    bool cancelled = false;
    uint64_t at;
    for (size_t i = 0; i < t->nslots; i++)
        if (bench_take(t->b, &at) && slot_begin(t->slots[i], at))
            active++;
    while (active > 0) {
        /* Wake up now and then to notice Ctrl-C, and when a queued call is due. */
        gpr_timespec wake = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(100, GPR_TIMESPAN));
        if (t->due_count > 0) {
            uint64_t now = now_ns(), at_ns = t->due[t->due_head].at_ns;
            int64_t wait_ns = at_ns > now ? (int64_t)(at_ns - now) : 0;
            if (wait_ns < 100000000)
                wake = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                    gpr_time_from_nanos(wait_ns, GPR_TIMESPAN));
        }
        grpc_event ev = grpc_completion_queue_next(t->cq, wake, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            if (bench_interrupted && !cancelled) {
                for (size_t i = 0; i < t->nslots; i++)
                    if (t->slots[i]->call != NULL)
                        grpc_call_cancel(t->slots[i]->call, NULL);
                active -= t->due_count; /* not started: nothing to wait for */
                t->due_count = 0;
                cancelled = true;
            }
            active -= start_due(t);
            continue;
        }
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        bench_slot_t *s = ev.tag;
        uint64_t end = now_ns();
        slot_record(s, ev.success ? s->code : GRPC_STATUS_UNKNOWN, end - s->start_ns);
        slot_release(s);
        active -= start_due(t);
        while (bench_take(t->b, &at)) {
            if (slot_begin(s, at))
                goto next;
        }
        active--;
    next:;
    }
    grpc_completion_queue_shutdown(t->cq);
    while (grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    return NULL;
}

/* Waits until ch is READY or the deadline passes; returns whether it is READY. */
static bool channel_wait_ready(grpc_channel *ch, double timeout_s)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis((int64_t)(timeout_s * 1000),
                                                              GPR_TIMESPAN));
    bool ready = false;
    for (;;) {
        grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch, 1);
        if (st == GRPC_CHANNEL_READY) {
            ready = true;
            break;
        }
        if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), deadline) >= 0)
            break;
        grpc_channel_watch_connectivity_state(ch, st, deadline, cq, NULL);
        grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    return ready;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: eiectl bench --model NAME [--method infer|health] [-c CONCURRENCY]\n"
            "                    [--connections N] [-n COUNT | -z DURATION] [--batch B]\n"
            "                    [--input-file FILE] [--json] [--addr HOST:PORT] [--timeout S]\n"
            "                    [--token-file FILE] [--threads T] [--rps R]\n\n"
            "Load-tests eied like ghz: C calls in flight at all times over N connections,\n"
            "until COUNT calls are done or DURATION has passed (Ctrl-C stops early and\n"
            "still reports). Prints requests/s, the exact latency percentiles of the\n"
            "successful calls and the count of each status code.\n\n"
            "  -m, --model NAME       model for ModelInfer (required with --method infer)\n"
            "  -M, --method M         infer (ModelInfer, default) or health (grpc.health.v1\n"
            "                         Check, to compare with gRPC's own cost)\n"
            "  -c, --concurrency C    calls in flight (default 50, at most %d)\n"
            "      --connections N    TCP connections (default 1, at most C)\n"
            "  -n, --count COUNT      total calls (default 200, at most 1e9)\n"
            "  -z, --duration D       run for D (e.g. 10s, 500ms, 2m; at most 1h)\n"
            "  -b, --batch B          rows per request (default 1, or the input file's rows)\n"
            "  -f, --input-file FILE  rows to send (.npy, .json, .csv); default: uniform\n"
            "                         random values in [0, 1) of the model's input width\n"
            "      --threads T        client threads driving the calls (default: CPUs, at most 8)\n"
            "  -r, --rps R            start calls at R a second (as ghz --rps), at most C in\n"
            "                         flight; latency at a given load, not only at saturation\n"
            "  -j, --json             print one JSON object (latencies in ns)\n" EIECTL_REMOTE_HELP
            "\nExit status: 0 if every call succeeded, 1 if any failed, 2 usage error.\n",
            BENCH_MAX_CONCURRENCY);
}

static bool parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    if (s[0] == '-' || s[0] == '\0')
        return false;
    double v = strtod(s, &end); /* accepts 1e6 as well as 1000000 */
    if (*end != '\0' || !(v >= (double)min && v <= (double)max) || v != (double)(uint64_t)v)
        return false;
    *out = (uint64_t)v;
    return true;
}

/* The request bytes of the chosen method, packed once and shared by every call. */
static bool build_payload(const char *method, const char *model, const eiectl_model_input_t *mi,
                          const eiectl_input_t *file, size_t batch, grpc_slice *payload_out)
{
    if (strcmp(method, "health") == 0) {
        Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        size_t n = protobuf_c_message_get_packed_size(&req.base);
        *payload_out = grpc_slice_malloc(n);
        protobuf_c_message_pack(&req.base, GRPC_SLICE_START_PTR(*payload_out));
        return true;
    }
    size_t cols = mi->features, count = batch * cols;
    float *v = malloc(count * sizeof *v + 1);
    if (v == NULL)
        return false;
    if (file != NULL && file->rows > 0) {
        for (size_t r = 0; r < batch; r++)
            memcpy(v + r * cols, file->data + (r % file->rows) * cols, cols * sizeof *v);
    } else {
        uint64_t x = 0x9E3779B97F4A7C15u; /* fixed seed: runs send the same values */
        for (size_t i = 0; i < count; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v[i] = (float)(x >> 40) / (float)(1u << 24);
        }
    }
    eiectl_infer_request_t req;
    bool ok = eiectl_infer_request_init(&req, model, "", "", mi->name, v, batch, cols);
    free(v);
    if (!ok)
        return false;
    if (mi->rank > 2) /* an N-D input ([B, 1, 28, 28], a sequence's [T, 1, I]) in its shape */
        eiectl_infer_request_set_shape(&req, mi->rank, mi->shape);
    size_t n = protobuf_c_message_get_packed_size(&req.msg.base);
    *payload_out = grpc_slice_malloc(n);
    protobuf_c_message_pack(&req.msg.base, GRPC_SLICE_START_PTR(*payload_out));
    eiectl_infer_request_free(&req);
    return true;
}

typedef struct bench_args {
    eiectl_remote_opts_t ro;
    const char *model, *method, *input_file;
    uint64_t concurrency, connections, count, threads, batch;
    double duration_s, rps; /* rps 0: no schedule */
    bool json;
} bench_args_t;

/* The code name of a status count's index (the last one: any other code). */
static const char *code_name(int c)
{
    return c >= 0 && c < BENCH_CODES - 1 ? eiectl_rpc_code_name((grpc_status_code)c) : "OTHER";
}

static void print_report(const bench_args_t *a, size_t threads, const uint64_t *codes,
                         uint64_t total, uint64_t ok_seen, const eiectl_latency_summary_t *ls,
                         double elapsed_s, bool sampled, const bench_thread_t *first)
{
    double rps = elapsed_s > 0 ? (double)total / elapsed_s : 0.0;
    if (a->json) {
        fputs("{\"method\":", stdout);
        eiectl_json_string(stdout, a->method);
        fputs(",\"model\":", stdout);
        eiectl_json_string(stdout, strcmp(a->method, "infer") == 0 ? a->model : "");
        printf(",\"batch\":%" PRIu64 ",\"concurrency\":%" PRIu64 ",\"connections\":%" PRIu64
               ",\"threads\":%zu,\"count\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"duration_s\":",
               a->batch, a->concurrency, a->connections, threads, total, ok_seen);
        eiectl_json_double(stdout, elapsed_s);
        fputs(",\"rps_target\":", stdout);
        if (a->rps > 0)
            eiectl_json_double(stdout, a->rps);
        else
            fputs("null", stdout);
        fputs(",\"requests_per_second\":", stdout);
        eiectl_json_double(stdout, rps);
        printf(",\"latency_ns\":{\"min\":%" PRIu64 ",\"mean\":", ls->min);
        eiectl_json_double(stdout, ls->mean);
        printf(",\"p50\":%" PRIu64 ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"max\":%" PRIu64
               "},\"latency_samples\":%zu,\"interrupted\":%s,\"status\":{",
               ls->p50, ls->p90, ls->p99, ls->max, ls->count, bench_interrupted ? "true" : "false");
        bool first_code = true;
        for (int c = 0; c < BENCH_CODES; c++) {
            if (codes[c] == 0)
                continue;
            printf("%s\"%s\":%" PRIu64, first_code ? "" : ",", code_name(c), codes[c]);
            first_code = false;
        }
        fputs("},\"first_error\":", stdout);
        if (first != NULL) {
            fputs("{\"code\":", stdout);
            eiectl_json_string(stdout, code_name(first->first_code));
            fputs(",\"message\":", stdout);
            eiectl_json_string(stdout, first->first_msg);
            fputs("}", stdout);
        } else {
            fputs("null", stdout);
        }
        fputs("}\n", stdout);
        return;
    }
    printf("Summary:\n");
    if (strcmp(a->method, "infer") == 0) {
        printf("  Call:         inference.GRPCInferenceService.ModelInfer (model ");
        eiectl_print_cell(stdout, a->model, 0);
        printf(", batch %" PRIu64 ")\n", a->batch);
    } else {
        printf("  Call:         grpc.health.v1.Health.Check\n");
    }
    printf("  Concurrency:  %" PRIu64 " over %" PRIu64 " connection(s), %zu thread(s)\n",
           a->concurrency, a->connections, threads);
    if (a->rps > 0)
        printf("  Rate:         %.2f calls/s scheduled\n", a->rps);
    printf("  Count:        %" PRIu64 "%s\n", total, bench_interrupted ? " (interrupted)" : "");
    printf("  Total:        %.2f ms\n", elapsed_s * 1e3);
    printf("  Requests/sec: %.2f\n\n", rps);
    if (ls->count > 0) {
        printf("Latency of successful calls (ms):\n");
        printf("  min   %10.3f\n  mean  %10.3f\n  p50   %10.3f\n  p90   %10.3f\n"
               "  p99   %10.3f\n  max   %10.3f\n",
               ls->min / 1e6, ls->mean / 1e6, ls->p50 / 1e6, ls->p90 / 1e6, ls->p99 / 1e6,
               ls->max / 1e6);
        if (sampled)
            printf("  (percentiles from a uniform sample of %zu of %" PRIu64 " calls)\n",
                   ls->count, ok_seen);
        printf("\n");
    }
    printf("Status code distribution:\n");
    for (int c = 0; c < BENCH_CODES; c++)
        if (codes[c] != 0)
            printf("  [%s]%*s%" PRIu64 " responses\n", code_name(c),
                   (int)(20 - strlen(code_name(c))), "", codes[c]);
    if (first != NULL) {
        printf("\nFirst error: [%s] ", code_name(first->first_code));
        eiectl_print_cell(stdout, first->first_msg, 0);
        printf("\n");
    }
}

static int bench_run(bench_args_t *a)
{
    int rc = 1;
    eiectl_input_t file = {0};
    eie_error_t err;
    if (a->input_file != NULL &&
        eiectl_input_load(a->input_file, EIECTL_INPUT_AUTO, &file, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl bench: %s\n", err.msg);
        return 1;
    }
    bool is_infer = strcmp(a->method, "infer") == 0;
    if (a->batch == 0 && is_infer)
        a->batch = file.rows > 0 ? file.rows : 1;

    eiectl_rpc_t rpc;
    if (!eiectl_remote_open("bench", &a->ro, &rpc)) {
        eiectl_input_free(&file);
        return 1;
    }
    eiectl_model_input_t mi = {.features = 0};
    bench_t b = {0};
    bench_thread_t *threads = NULL;
    bench_slot_t *slots = NULL;
    grpc_channel **channels = NULL;
    size_t nthreads = (size_t)a->threads, nchan = 0;
    bool payload = false;

    if (is_infer) {
        if (!eiectl_model_input_fetch("bench", &rpc, a->ro.addr, a->model, "", &mi))
            goto done;
        if (file.rows > 0 && file.cols != mi.features) {
            fprintf(stderr, "eiectl bench: %s has %zu values per row; model '%s' input '%s' "
                    "takes %zu\n", a->input_file, file.cols, a->model, mi.name, mi.features);
            goto done;
        }
        if (a->batch * mi.features > EIECTL_INPUT_MAX_VALUES) {
            fprintf(stderr, "eiectl bench: --batch %" PRIu64 " x %zu features is more than the "
                    "%zu values allowed\n", a->batch, mi.features, EIECTL_INPUT_MAX_VALUES);
            goto done;
        }
    }
    if (!build_payload(a->method, a->model, &mi, &file, (size_t)a->batch, &b.payload)) {
        fprintf(stderr, "eiectl bench: out of memory\n");
        goto done;
    }
    payload = true;
    b.method = grpc_slice_from_static_string(
        is_infer ? "/inference.GRPCInferenceService/ModelInfer" : "/grpc.health.v1.Health/Check");
    b.md = rpc.md;
    b.md_count = rpc.md_count;
    b.timeout_s = a->ro.timeout_s;
    atomic_init(&b.issued, 0);

    channels = calloc(a->connections, sizeof *channels);
    slots = calloc(a->concurrency, sizeof *slots);
    threads = calloc(nthreads, sizeof *threads);
    if (channels == NULL || slots == NULL || threads == NULL) {
        fprintf(stderr, "eiectl bench: out of memory\n");
        goto done;
    }
    for (nchan = 0; nchan < a->connections; nchan++) {
        channels[nchan] = eiectl_channel_create(&rpc.conn, true);
        if (channels[nchan] == NULL) {
            fprintf(stderr, "eiectl bench: cannot open a channel to %s\n", a->ro.addr);
            goto done;
        }
    }
    /* Connect first, so the first calls do not measure the TCP and HTTP/2 handshakes. */
    for (size_t i = 0; i < nchan; i++)
        if (!channel_wait_ready(channels[i], a->ro.timeout_s))
            fprintf(stderr, "eiectl bench: connection %zu to %s is not ready; calls on it will "
                    "fail\n", i, a->ro.addr);

    size_t per_thread_samples = BENCH_MAX_SAMPLES / nthreads;
    for (size_t i = 0; i < nthreads; i++) {
        threads[i].b = &b;
        threads[i].cq = grpc_completion_queue_create_for_next(NULL);
        threads[i].max_lat = per_thread_samples;
        threads[i].rng = 0x2545F4914F6CDD1Du + i;
        threads[i].first_code = -1;
        threads[i].slots = calloc(a->concurrency / nthreads + 1, sizeof *threads[i].slots);
        threads[i].due = calloc(a->concurrency / nthreads + 1, sizeof *threads[i].due);
        if (threads[i].slots == NULL || threads[i].due == NULL) {
            fprintf(stderr, "eiectl bench: out of memory\n");
            goto done;
        }
    }
    for (size_t w = 0; w < a->concurrency; w++) {
        bench_thread_t *t = &threads[w % nthreads];
        slots[w].t = t;
        slots[w].channel = channels[w % nchan];
        t->slots[t->nslots++] = &slots[w];
    }

    b.start_ns = now_ns();
    b.interval_ns = a->rps > 0 ? 1e9 / a->rps : 0;
    if (a->duration_s > 0) {
        b.count = 0;
        b.end_ns = b.start_ns + (uint64_t)(a->duration_s * 1e9);
    } else {
        b.count = a->count;
    }
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    bench_interrupted = 0;
    sigaction(SIGINT, &sa, &old);
    uint64_t t0 = b.start_ns; /* so a scheduled run's time is at least its schedule's */
    size_t started = 0;
    for (; started < nthreads; started++) {
        if (pthread_create(&threads[started].thread, NULL, bench_thread_main, &threads[started]))
            break;
        threads[started].ran = true;
    }
    if (started < nthreads) {
        fprintf(stderr, "eiectl bench: cannot start thread %zu\n", started);
        bench_interrupted = 1;
    }
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i].thread, NULL);
    double elapsed = (double)(now_ns() - t0) / 1e9;
    sigaction(SIGINT, &old, NULL);

    /* Merge the threads' records. */
    uint64_t codes[BENCH_CODES] = {0}, total = 0, ok_seen = 0, min_ns = UINT64_MAX, max_ns = 0;
    double sum_ns = 0;
    size_t nlat = 0;
    for (size_t i = 0; i < nthreads; i++) {
        for (int c = 0; c < BENCH_CODES; c++)
            codes[c] += threads[i].codes[c];
        nlat += threads[i].nlat;
        ok_seen += threads[i].ok_seen;
        sum_ns += threads[i].sum_ns;
        if (threads[i].ok_seen && threads[i].min_ns < min_ns)
            min_ns = threads[i].min_ns;
        if (threads[i].max_ns > max_ns)
            max_ns = threads[i].max_ns;
    }
    for (int c = 0; c < BENCH_CODES; c++)
        total += codes[c];
    uint64_t *all = malloc((nlat ? nlat : 1) * sizeof *all);
    eiectl_latency_summary_t ls;
    if (all == NULL) {
        fprintf(stderr, "eiectl bench: out of memory\n");
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < nthreads; i++) {
        if (threads[i].nlat)
            memcpy(all + k, threads[i].lat, threads[i].nlat * sizeof *all);
        k += threads[i].nlat;
    }
    eiectl_latency_summarize(all, nlat, &ls);
    free(all);
    if (ok_seen > 0) {
        /* The sample cannot miss these; a reservoir could. */
        ls.min = min_ns;
        ls.max = max_ns;
        ls.mean = sum_ns / (double)ok_seen;
    }
    const bench_thread_t *first = NULL;
    for (size_t i = 0; i < nthreads; i++)
        if (threads[i].first_code >= 0 && (first == NULL || threads[i].first_ns < first->first_ns))
            first = &threads[i];
    print_report(a, nthreads, codes, total, ok_seen, &ls, elapsed, nlat < ok_seen, first);
    fflush(stdout);
    rc = total > 0 && ok_seen == total ? 0 : 1;

done:
    if (threads != NULL) {
        for (size_t i = 0; i < nthreads; i++) {
            if (threads[i].cq != NULL && !threads[i].ran) {
                /* A queue must be shut down and drained before it is destroyed. */
                grpc_completion_queue_shutdown(threads[i].cq);
                while (grpc_completion_queue_next(threads[i].cq,
                                                  gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
                           .type != GRPC_QUEUE_SHUTDOWN)
                    ;
            }
            if (threads[i].cq != NULL)
                grpc_completion_queue_destroy(threads[i].cq);
            free(threads[i].slots);
            free(threads[i].due);
            free(threads[i].lat);
        }
    }
    free(threads);
    free(slots);
    for (size_t i = 0; i < nchan; i++)
        grpc_channel_destroy(channels[i]);
    free(channels);
    if (payload)
        grpc_slice_unref(b.payload);
    eiectl_rpc_close(&rpc);
    eiectl_input_free(&file);
    return rc;
}

int eiectl_cmd_bench(int argc, char **argv)
{
    enum { OPT_CONNECTIONS = 1000, OPT_THREADS };
    static const struct option opts[] = {
        EIECTL_REMOTE_LONG_OPTS,
        {"model", required_argument, NULL, 'm'},
        {"method", required_argument, NULL, 'M'},
        {"concurrency", required_argument, NULL, 'c'},
        {"connections", required_argument, NULL, OPT_CONNECTIONS},
        {"count", required_argument, NULL, 'n'},
        {"duration", required_argument, NULL, 'z'},
        {"batch", required_argument, NULL, 'b'},
        {"input-file", required_argument, NULL, 'f'},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"rps", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bench_args_t a = {.method = "infer", .concurrency = 50, .connections = 1};
    eiectl_remote_opts_init(&a.ro);
    bool have_n = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "a:t:T:m:M:c:n:z:b:f:r:jh", opts, NULL)) != -1) {
        int r = eiectl_remote_opt("bench", opt, optarg, &a.ro);
        if (r == 2)
            return 2;
        if (r == 1)
            continue;
        switch (opt) {
        case 'm':
            a.model = optarg;
            break;
        case 'M':
            if (strcmp(optarg, "infer") != 0 && strcmp(optarg, "health") != 0)
                return eiectl_usage_error("bench", "--method '%s' is not infer or health",
                                          optarg);
            a.method = optarg;
            break;
        case 'c':
            if (!parse_count(optarg, 1, BENCH_MAX_CONCURRENCY, &a.concurrency))
                return eiectl_usage_error("bench", "-c '%s' is not a concurrency in [1, %d]",
                                          optarg, BENCH_MAX_CONCURRENCY);
            break;
        case OPT_CONNECTIONS:
            if (!parse_count(optarg, 1, BENCH_MAX_CONNECTIONS, &a.connections))
                return eiectl_usage_error("bench", "--connections '%s' is not a count in "
                                          "[1, %d]", optarg, BENCH_MAX_CONNECTIONS);
            break;
        case 'n':
            if (!parse_count(optarg, 1, BENCH_MAX_COUNT, &a.count))
                return eiectl_usage_error("bench", "-n '%s' is not a count in [1, 1e9]", optarg);
            have_n = true;
            break;
        case 'z':
            if (!eiectl_parse_seconds(optarg, BENCH_MAX_DURATION_S, &a.duration_s))
                return eiectl_usage_error("bench", "-z '%s' is not a duration in (0, 1h]",
                                          optarg);
            break;
        case 'b':
            if (!parse_count(optarg, 1, BENCH_MAX_BATCH, &a.batch))
                return eiectl_usage_error("bench", "--batch '%s' is not a row count in [1, %d]",
                                          optarg, BENCH_MAX_BATCH);
            break;
        case 'f':
            a.input_file = optarg;
            break;
        case OPT_THREADS:
            if (!parse_count(optarg, 1, BENCH_MAX_THREADS, &a.threads))
                return eiectl_usage_error("bench", "--threads '%s' is not a count in [1, %d]",
                                          optarg, BENCH_MAX_THREADS);
            break;
        case 'r': {
            char *end;
            a.rps = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(a.rps > 0 && a.rps <= BENCH_MAX_RPS))
                return eiectl_usage_error("bench", "--rps '%s' is not a rate in (0, 1e6] calls "
                                          "a second", optarg);
            break;
        }
        case 'j':
            a.json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc)
        return eiectl_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    bool infer = strcmp(a.method, "infer") == 0;
    if (infer && (a.model == NULL || a.model[0] == '\0'))
        return eiectl_usage_error("bench", "--model is required with --method infer");
    if (!infer && (a.batch != 0 || a.input_file != NULL))
        return eiectl_usage_error("bench", "--batch and --input-file need --method infer");
    if (have_n && a.duration_s > 0)
        return eiectl_usage_error("bench", "give -n or -z, not both");
    if (!have_n && a.duration_s == 0)
        a.count = 200;
    if (a.connections > a.concurrency)
        return eiectl_usage_error("bench", "--connections %" PRIu64 " is more than the "
                                  "concurrency %" PRIu64, a.connections, a.concurrency);
    if (a.threads == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        /* Measured on 2 cores next to the daemon: 2 threads beat 1, more add nothing. */
        a.threads = cpus < 1 ? 1 : cpus > 8 ? 8 : (uint64_t)cpus;
    }
    if (a.threads > a.concurrency)
        a.threads = a.concurrency;
    return bench_run(&a);
}
