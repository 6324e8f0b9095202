/* eiectl stats: Triton's statistics extension (ModelStatistics). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "eiectl.h"
#include "remote.h"
#include "report.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: eiectl stats [--model NAME] [--version V] [--json] [--addr HOST:PORT]\n"
                 "                    [--timeout S] [--token-file FILE]\n\n"
                 "Prints eied's per-model statistics (ModelStatistics): inference and\n"
                 "execution (batch) counts, successes, failures, and the average queue and\n"
                 "compute (input + infer + output) time per request.\n\n"
                 "  -m, --model NAME       one model (default: all)\n"
                 "  -V, --version V        one version of it\n"
                 "  -j, --json             print the full statistics as JSON (durations in ns)\n"
                 EIECTL_REMOTE_HELP);
}

static const Inference__StatisticDuration zero_duration = INFERENCE__STATISTIC_DURATION__INIT;

static const Inference__StatisticDuration *dur(const Inference__StatisticDuration *d)
{
    return d != NULL ? d : &zero_duration;
}

/* Average of a cumulative duration in milliseconds; 0 when nothing was counted. */
static double avg_ms(const Inference__StatisticDuration *d)
{
    d = dur(d);
    return d->count ? (double)d->ns / (double)d->count / 1e6 : 0.0;
}

static void json_duration(FILE *out, const char *key, const Inference__StatisticDuration *d)
{
    d = dur(d);
    fprintf(out, "\"%s\":{\"count\":%" PRIu64 ",\"ns\":%" PRIu64 "}", key, d->count, d->ns);
}

static void print_json(const Inference__ModelStatisticsResponse *r)
{
    fputs("{\"model_stats\":[", stdout);
    for (size_t i = 0; i < r->n_model_stats; i++) {
        const Inference__ModelStatistics *m = r->model_stats[i];
        const Inference__InferStatistics *s = m->inference_stats;
        fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
        eiectl_json_string(stdout, m->name);
        fputs(",\"version\":", stdout);
        eiectl_json_string(stdout, m->version);
        printf(",\"last_inference\":%" PRIu64 ",\"inference_count\":%" PRIu64
               ",\"execution_count\":%" PRIu64 ",\"inference_stats\":{",
               m->last_inference, m->inference_count, m->execution_count);
        json_duration(stdout, "success", s ? s->success : NULL);
        fputc(',', stdout);
        json_duration(stdout, "fail", s ? s->fail : NULL);
        fputc(',', stdout);
        json_duration(stdout, "queue", s ? s->queue : NULL);
        fputc(',', stdout);
        json_duration(stdout, "compute_input", s ? s->compute_input : NULL);
        fputc(',', stdout);
        json_duration(stdout, "compute_infer", s ? s->compute_infer : NULL);
        fputc(',', stdout);
        json_duration(stdout, "compute_output", s ? s->compute_output : NULL);
        fputs("},\"batch_stats\":[", stdout);
        for (size_t b = 0; b < m->n_batch_stats; b++) {
            const Inference__InferBatchStatistics *bs = m->batch_stats[b];
            printf("%s{\"batch_size\":%" PRIu64 ",", b ? "," : "", bs->batch_size);
            json_duration(stdout, "compute_input", bs->compute_input);
            fputc(',', stdout);
            json_duration(stdout, "compute_infer", bs->compute_infer);
            fputc(',', stdout);
            json_duration(stdout, "compute_output", bs->compute_output);
            fputc('}', stdout);
        }
        fputs("],\"memory_usage\":[", stdout);
        for (size_t u = 0; u < m->n_memory_usage; u++) {
            const Inference__MemoryUsage *mu = m->memory_usage[u];
            fputs(u ? ",{\"type\":" : "{\"type\":", stdout);
            eiectl_json_string(stdout, mu->type);
            printf(",\"id\":%" PRId64 ",\"byte_size\":%" PRIu64 "}", mu->id, mu->byte_size);
        }
        fputs("]}", stdout);
    }
    fputs("]}\n", stdout);
}

static void print_table(const Inference__ModelStatisticsResponse *r)
{
    int wn = 5, wv = 7;
    for (size_t i = 0; i < r->n_model_stats; i++) {
        int n = (int)strlen(r->model_stats[i]->name), v = (int)strlen(r->model_stats[i]->version);
        wn = n > wn && n <= 40 ? n : wn;
        wv = v > wv && v <= 40 ? v : wv;
    }
    printf("%-*s  %-*s  %12s  %12s  %12s  %8s  %12s  %14s\n", wn, "MODEL", wv, "VERSION",
           "INFERENCES", "EXECUTIONS", "SUCCESS", "FAIL", "AVG_QUEUE_MS", "AVG_COMPUTE_MS");
    for (size_t i = 0; i < r->n_model_stats; i++) {
        const Inference__ModelStatistics *m = r->model_stats[i];
        const Inference__InferStatistics *s = m->inference_stats;
        eiectl_print_cell(stdout, m->name, wn + 2);
        eiectl_print_cell(stdout, m->version, wv + 2);
        double compute = s ? avg_ms(s->compute_input) + avg_ms(s->compute_infer) +
                                 avg_ms(s->compute_output)
                           : 0.0;
        printf("%12" PRIu64 "  %12" PRIu64 "  %12" PRIu64 "  %8" PRIu64 "  %12.3f  %14.3f\n",
               m->inference_count, m->execution_count, s ? dur(s->success)->count : 0,
               s ? dur(s->fail)->count : 0, s ? avg_ms(s->queue) : 0.0, compute);
    }
}

int eiectl_cmd_stats(int argc, char **argv)
{
    eiectl_remote_opts_t ro;
    eiectl_model_opts_t mo;
    int status = eiectl_model_opts_parse("stats", argc, argv, usage, &ro, &mo);
    if (status >= 0)
        return status;
    const char *model = mo.model != NULL ? mo.model : "", *version = mo.version;
    bool json = mo.json;
    if (optind < argc)
        return eiectl_usage_error("stats", "unexpected argument '%s'", argv[optind]);
    if (version[0] != '\0' && model[0] == '\0')
        return eiectl_usage_error("stats", "--version needs --model");

    eiectl_rpc_t rpc;
    if (!eiectl_remote_open("stats", &ro, &rpc))
        return 1;
    Inference__ModelStatisticsRequest req = INFERENCE__MODEL_STATISTICS_REQUEST__INIT;
    req.name = (char *)model;
    req.version = (char *)version;
    ProtobufCMessage *resp = NULL;
    eiectl_rpc_status_t st;
    int rc = 1;
    if (eiectl_rpc_call(&rpc, "/inference.GRPCInferenceService/ModelStatistics", &req.base,
                        &inference__model_statistics_response__descriptor, &resp, &st)) {
        if (json)
            print_json((Inference__ModelStatisticsResponse *)resp);
        else
            print_table((Inference__ModelStatisticsResponse *)resp);
        rc = fflush(stdout) == 0 ? 0 : 1;
        protobuf_c_message_free_unpacked(resp, NULL);
    } else {
        eiectl_remote_print_error("stats", ro.addr, &st);
    }
    eiectl_rpc_close(&rpc);
    return rc;
}
