/*
 * eiectl simulate: run a model on the simulated EIE accelerator (eie/sim.h)
 * and print what the hardware would do: per layer and in total the cycles,
 * time, load-balance efficiency, SRAM reads, energy and GOPS, and how far
 * its 16-bit fixed-point result is from the cpu backend's float result.
 * --sweep varies the PE count or the FIFO depth (tables, and an SVG chart
 * with --plot); --benchmark runs the calibration suite against the EIE
 * paper's Table IV (engine/sim/README.md).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eie/eie.h"
#include "eie/file.h"
#include "eie/sim.h"
#include "eiectl.h"
#include "input.h"
#include "report.h"

#define MAX_SWEEP 32

static void usage(FILE *out)
{
    fprintf(out,
            "usage: eiectl simulate MODEL.eie [--pes N] [--fifo D] [--pipeline S]\n"
            "                       [--act-regs R] [--clock-mhz F] [--input FILE] [--json]\n"
            "       eiectl simulate MODEL.eie --sweep pes=16,32,64,128,256 [--plot OUT.svg]\n"
            "       eiectl simulate MODEL.eie --sweep fifo=1,2,4,8,16,32 [--plot OUT.svg]\n"
            "       eiectl simulate --benchmark [--pes N] [--fifo D] [--seed S]\n"
            "       eiectl simulate --structure MODEL[,MODEL..] --data DIR [--limit N]\n\n"
            "Run a model on the simulated EIE accelerator (16-bit fixed point, cycle model,\n"
            "Table II energy) and compare its output with the cpu backend's.\n\n"
            "  --pes N         processing elements (default 64; 1..%u)\n"
            "  --fifo D        activation FIFO depth per PE (default 8; 1..%u)\n"
            "  --pipeline S    arithmetic pipeline stages (default 4; 1..%u)\n"
            "  --act-regs R    activations per PE register file (default 64; 1..%u);\n"
            "                  longer vectors run in batches through the activation SRAM\n"
            "  --clock-mhz F   clock in MHz (default 800)\n"
            "  --input FILE    input_dim numbers (text, separated by spaces, commas or\n"
            "                  newlines); default: a fixed input, half zeros, rest in (0, 1]\n"
            "  --json          machine-readable output\n"
            "  --sweep K=LIST  run once per value of K (pes or fifo), print speedup and\n"
            "                  load efficiency\n"
            "  --plot OUT.svg  with --sweep: write a chart of speedup and efficiency\n"
            "  --benchmark     the calibration suite: the nine EIE layers vs the paper's\n"
            "                  Table IV, then efficiency vs FIFO depth and vs PEs on Alex-8\n"
            "  --seed S        with --benchmark: the synthetic layers' seed (default 1)\n"
            "  --structure F   measure the structured workload's row and column spreads\n"
            "                  and activation correlation on trained networks F (comma-\n"
            "                  separated; a dense layer is pruned to 10%% by magnitude, a\n"
            "                  pruned one, e.g. from eiectl compress --data, keeps its\n"
            "                  mask), with ReLU activations on --data DIR's t10k split\n"
            "                  (--limit N examples; default all)\n",
            EIE_SIM_MAX_PES, EIE_SIM_MAX_FIFO, EIE_SIM_MAX_PIPELINE, EIE_SIM_MAX_ACT_REGS);
}

static int parse_uint(const char *s, unsigned long max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '-' || end == s || *end != '\0' || errno != 0 || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* Reads n numbers from a text file into x (at most EIECTL_INPUT_MAX_BYTES, as infer's input). */
static int read_input(const char *path, float *x, size_t n)
{
    uint8_t *text;
    size_t len;
    eie_error_t err;
    if (eie_file_read_ex(path, EIECTL_INPUT_MAX_BYTES, EIE_FILE_STREAMS, &text, &len, &err) !=
        EIE_STATUS_OK) {
        fprintf(stderr, "eiectl simulate: %s\n", err.msg);
        return -1;
    }
    size_t i = 0;
    char tok[64];
    size_t tl = 0;
    int rc = 0;
    for (size_t at = 0; at <= len; at++) {
        int c = at < len ? text[at] : EOF;
        if (c == EOF || c == ' ' || c == ',' || c == '\n' || c == '\t' || c == '\r') {
            if (tl > 0) {
                tok[tl] = '\0';
                char *end;
                float v = strtof(tok, &end);
                if (*end != '\0' || i >= n) {
                    fprintf(stderr, "eiectl simulate: %s: %s\n", path,
                            i >= n ? "more numbers than the model's input_dim" : "not a number");
                    rc = -1;
                    break;
                }
                x[i++] = v;
                tl = 0;
            }
        } else if (tl + 1 < sizeof tok) {
            tok[tl++] = (char)c;
        }
    }
    free(text);
    if (rc == 0 && i != n) {
        fprintf(stderr, "eiectl simulate: %s has %zu numbers, the model takes %zu\n", path, i, n);
        rc = -1;
    }
    return rc;
}

static void default_input(float *x, size_t n)
{
    uint64_t s = 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(s >> 11) / 9007199254740992.0;
        x[i] = u < 0.5 ? 0.0f : (float)(2.0 * (u - 0.5)) + 1e-3f;
    }
}

static void pe_stats(const eie_sim_layer_report_t *l, uint64_t *mn, double *mean, uint64_t *mx)
{
    *mn = UINT64_MAX;
    *mx = 0;
    double sum = 0;
    for (unsigned p = 0; p < l->n_pes; p++) {
        uint64_t b = l->pe_busy[p];
        *mn = b < *mn ? b : *mn;
        *mx = b > *mx ? b : *mx;
        sum += (double)b;
    }
    *mean = l->n_pes ? sum / l->n_pes : 0;
    if (l->n_pes == 0)
        *mn = 0;
}

static void print_layer_row(const char *name, const eie_sim_layer_report_t *l)
{
    printf("%-7s %6u %6u %7llu %9llu %8llu %9llu %9llu %5.3f %8.2f %8.3f %7.2f %5llu\n", name,
           l->cols, l->rows, (unsigned long long)l->broadcasts, (unsigned long long)l->entries,
           (unsigned long long)l->fillers, (unsigned long long)l->cycles,
           (unsigned long long)l->ideal_cycles, l->efficiency, l->time_us, l->energy_uj, l->gops,
           (unsigned long long)l->saturations);
}

static void print_report(const eie_sim_report_t *r)
{
    const eie_sim_params_t *p = &r->params;
    printf("EIE simulator: %u PEs, FIFO %u, pipeline %u, %u activations per PE register file, "
           "%g MHz\n\n",
           p->n_pes, p->fifo_depth, p->pipeline_depth, p->act_regs, p->clock_mhz);
    printf("%-7s %6s %6s %7s %9s %8s %9s %9s %5s %8s %8s %7s %5s\n", "layer", "in", "out",
           "bcast", "entries", "fillers", "cycles", "ideal", "eff", "us", "uJ", "GOPS", "sat");
    char name[32];
    for (size_t i = 0; i < r->n_layers; i++) {
        snprintf(name, sizeof name, "%zu", r->layers[i].layer);
        print_layer_row(name, &r->layers[i]);
    }
    print_layer_row("total", &r->total);
    printf("\n%-7s %-14s %9s %11s %9s %9s %7s %9s %9s %9s\n", "layer", "Q in/w/out",
           "ptr reads", "spmat words", "stalls", "waits", "batches", "busy min", "busy mean",
           "busy max");
    for (size_t i = 0; i <= r->n_layers; i++) {
        const eie_sim_layer_report_t *l = i < r->n_layers ? &r->layers[i] : &r->total;
        uint64_t mn, mx;
        double mean;
        pe_stats(l, &mn, &mean, &mx);
        char q[32] = "-";
        if (i < r->n_layers) {
            snprintf(name, sizeof name, "%zu", l->layer);
            snprintf(q, sizeof q, "Q.%d/Q.%d/Q.%d", l->in_frac, l->weight_frac, l->out_frac);
        } else {
            snprintf(name, sizeof name, "total");
        }
        printf("%-7s %-14s %9llu %11llu %9llu %9llu %7llu %9llu %9.1f %9llu\n", name, q,
               (unsigned long long)l->ptr_reads, (unsigned long long)l->spmat_reads,
               (unsigned long long)l->lnzd_stalls, (unsigned long long)l->lnzd_waits,
               (unsigned long long)l->act_batches, (unsigned long long)mn, mean,
               (unsigned long long)mx);
    }
    printf("(idle cycles of a PE = cycles - busy; stalls: the LNZD waited on a full FIFO;\n"
           " waits: on its tree or a batch load; batches: input x output batches through the\n"
           " activation SRAM; Q.f = 16-bit value with f fraction bits)\n");
}

static void json_layer(const eie_sim_layer_report_t *l, int with_q)
{
    printf("{\"layer\":%zu,\"in\":%u,\"out\":%u,", l->layer, l->cols, l->rows);
    if (with_q)
        printf("\"q_in_frac\":%d,\"q_weight_frac\":%d,\"q_out_frac\":%d,", l->in_frac,
               l->weight_frac, l->out_frac);
    printf("\"broadcasts\":%llu,\"entries\":%llu,\"fillers\":%llu,\"macs\":%llu,"
           "\"cycles\":%llu,\"ideal_cycles\":%llu,\"balanced_cycles\":%llu,\"efficiency\":%.6f,"
           "\"lnzd_stalls\":%llu,\"lnzd_waits\":%llu,\"act_batches\":%llu,\"ptr_reads\":%llu,"
           "\"spmat_reads\":%llu,\"saturations\":%llu,"
           "\"time_us\":%.6f,\"energy_uj\":%.6f,\"gops\":%.4f,\"pe_busy\":[",
           (unsigned long long)l->broadcasts, (unsigned long long)l->entries,
           (unsigned long long)l->fillers, (unsigned long long)l->macs,
           (unsigned long long)l->cycles, (unsigned long long)l->ideal_cycles,
           (unsigned long long)l->balanced_cycles, l->efficiency,
           (unsigned long long)l->lnzd_stalls, (unsigned long long)l->lnzd_waits,
           (unsigned long long)l->act_batches, (unsigned long long)l->ptr_reads,
           (unsigned long long)l->spmat_reads, (unsigned long long)l->saturations, l->time_us,
           l->energy_uj, l->gops);
    for (unsigned p = 0; p < l->n_pes; p++)
        printf("%s%llu", p ? "," : "", (unsigned long long)l->pe_busy[p]);
    printf("]}");
}

/* The cpu backend's float result for the same input; max |diff| and max |diff| / max(1, |y|). */
static int compare_cpu(const eie_model_t *m, const float *x, const float *y, double *abs_out,
                       double *rel_out)
{
    eie_engine_opts_t o = eie_engine_opts_default();
    eie_engine_t *e = NULL;
    eie_net_t *net = NULL;
    eie_error_t err;
    size_t n = eie_model_output_dim(m);
    float *ref = malloc(n * sizeof *ref);
    int rc = -1;
    if (ref == NULL || eie_engine_init(&o, &e, &err) != EIE_STATUS_OK ||
        eie_net_init(e, m, &net, &err) != EIE_STATUS_OK ||
        eie_net_run(net, x, 1, ref, NULL, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl simulate: cpu backend: %s\n", ref ? err.msg : "out of memory");
        goto done;
    }
    *abs_out = *rel_out = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)y[i] - (double)ref[i]);
        double s = fabs((double)ref[i]) > 1.0 ? fabs((double)ref[i]) : 1.0;
        *abs_out = d > *abs_out ? d : *abs_out;
        *rel_out = d / s > *rel_out ? d / s : *rel_out;
    }
    rc = 0;
done:
    eie_net_free(net);
    eie_engine_free(e);
    free(ref);
    return rc;
}

static int run_once(const eie_model_t *m, const eie_sim_params_t *p, const float *x, float *y,
                    eie_sim_report_t *rep)
{
    eie_sim_t *sim;
    eie_error_t err;
    if (eie_sim_init(m, p, &sim, &err) != EIE_STATUS_OK ||
        eie_sim_run(sim, x, y, rep, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl simulate: %s\n", err.msg);
        return -1;
    }
    eie_sim_free(sim);
    return 0;
}

/* ---- the SVG chart ---------------------------------------------------------- */

/* One panel: a line of ys over evenly spaced x labels, y axis from 0 to ymax. */
static void svg_panel(FILE *f, int top, const char *title, const char *ylabel,
                      const unsigned *xs, const double *ys, size_t n, double ymax,
                      const char *color, const char *xlabel)
{
    const int left = 70, width = 480, height = 220;
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"15\" font-weight=\"bold\">%s</text>\n", left,
            top - 12, title);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", left, top,
            left, top + height);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", left,
            top + height, left + width, top + height);
    for (int t = 0; t <= 4; t++) {
        double v = ymax * t / 4.0;
        int yy = top + height - (int)(height * t / 4.0);
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>\n", left, yy,
                left + width, yy);
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%.2f</text>\n",
                left - 6, yy + 4, v);
    }
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %d %d)\">%s</text>\n",
            left - 48, top + height / 2, left - 48, top + height / 2, ylabel);
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
    for (size_t i = 0; i < n; i++) {
        double px = left + (n > 1 ? (double)width * (double)i / (double)(n - 1) : width / 2.0);
        double py = top + height - height * (ys[i] / ymax);
        fprintf(f, "%.1f,%.1f ", px, py);
    }
    fprintf(f, "\"/>\n");
    for (size_t i = 0; i < n; i++) {
        double px = left + (n > 1 ? (double)width * (double)i / (double)(n - 1) : width / 2.0);
        double py = top + height - height * (ys[i] / ymax);
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", px, py, color);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">%.2f</text>\n",
                px, py - 8, ys[i]);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%u</text>\n",
                px, top + height + 16, xs[i]);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%s</text>\n",
            left + width / 2, top + height + 34, xlabel);
}

static int write_svg(const char *path, const char *model, const char *key, const unsigned *xs,
                     const double *speedup, const double *eff, size_t n)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "eiectl simulate: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    double smax = 1.0;
    for (size_t i = 0; i < n; i++)
        smax = speedup[i] > smax ? speedup[i] : smax;
    smax = ceil(smax * 1.1);
    const char *xlabel = strcmp(key, "pes") == 0 ? "processing elements (PEs)"
                                                 : "activation FIFO depth";
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"640\" "
               "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"300\" y=\"22\" font-size=\"13\" text-anchor=\"middle\">EIE simulator: "
               "%s sweep on ", key);
    for (const char *c = model; *c; c++)
        fputs(*c == '<' ? "&lt;" : *c == '&' ? "&amp;" : (char[2]){*c, 0}, f);
    fprintf(f, "</text>\n");
    svg_panel(f, 60, "Speedup (cycles of the first point / cycles)", "speedup", xs, speedup, n,
              smax, "#1f77b4", xlabel);
    svg_panel(f, 370, "Load-balance efficiency", "efficiency", xs, eff, n, 1.0, "#d62728",
              xlabel);
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "eiectl simulate: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static int parse_sweep(const char *arg, char *key, unsigned *vals, size_t *n)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || (size_t)(eq - arg) >= 8)
        return eiectl_usage_error("simulate", "--sweep wants pes=LIST or fifo=LIST, not '%s'",
                                  arg);
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    if (strcmp(key, "pes") != 0 && strcmp(key, "fifo") != 0)
        return eiectl_usage_error("simulate", "--sweep: unknown parameter '%s' (pes or fifo)",
                                  key);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", eq + 1);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        unsigned long max = strcmp(key, "pes") == 0 ? EIE_SIM_MAX_PES : EIE_SIM_MAX_FIFO;
        if (*n == MAX_SWEEP)
            return eiectl_usage_error("simulate", "--sweep: at most %d values", MAX_SWEEP);
        if (parse_uint(tok, max, &vals[*n]) != 0 || vals[*n] == 0)
            return eiectl_usage_error("simulate", "--sweep %s: value '%s' not in 1..%lu", key,
                                      tok, max);
        (*n)++;
    }
    if (*n == 0)
        return eiectl_usage_error("simulate", "--sweep %s: no values", key);
    return 0;
}

static int run_sweep(const eie_model_t *m, const char *path, eie_sim_params_t base,
                     const char *key, const unsigned *vals, size_t n, const float *x, float *y,
                     const char *plot, int json)
{
    double speedup[MAX_SWEEP], eff[MAX_SWEEP];
    uint64_t first = 0;
    if (json)
    {
        printf("{\"model\":");
        eiectl_json_string(stdout, path);
        printf(",\"sweep\":\"%s\",\"points\":[", key);
    }
    else
        printf("%-6s %10s %9s %8s %6s %9s %9s\n", key, "cycles", "us", "speedup", "eff",
               "uJ", "GOPS");
    for (size_t i = 0; i < n; i++) {
        eie_sim_params_t p = base;
        if (strcmp(key, "pes") == 0)
            p.n_pes = vals[i];
        else
            p.fifo_depth = vals[i];
        eie_sim_report_t r;
        if (run_once(m, &p, x, y, &r) != 0)
            return 1;
        if (i == 0)
            first = r.total.cycles;
        speedup[i] = (double)first / (double)r.total.cycles;
        eff[i] = r.total.efficiency;
        if (json)
            printf("%s{\"%s\":%u,\"cycles\":%llu,\"time_us\":%.6f,\"speedup\":%.6f,"
                   "\"efficiency\":%.6f,\"energy_uj\":%.6f,\"gops\":%.4f}",
                   i ? "," : "", key, vals[i], (unsigned long long)r.total.cycles,
                   r.total.time_us, speedup[i], eff[i], r.total.energy_uj, r.total.gops);
        else
            printf("%-6u %10llu %9.2f %8.2f %6.3f %9.3f %9.2f\n", vals[i],
                   (unsigned long long)r.total.cycles, r.total.time_us, speedup[i], eff[i],
                   r.total.energy_uj, r.total.gops);
        eie_sim_report_clear(&r);
    }
    if (json)
        printf("]}\n");
    if (plot != NULL) {
        if (write_svg(plot, path, key, vals, speedup, eff, n) != 0)
            return 1;
        if (!json)
            printf("wrote %s\n", plot);
    }
    return 0;
}

/* ---- the calibration suite ------------------------------------------------- */

/* One table of the nine layers on one workload; JSON items or text rows. */
static int bench_table(const eie_sim_params_t *p, eie_sim_bench_workload_t wl, uint64_t seed,
                       int json)
{
    size_t n;
    const eie_sim_bench_layer_t *L = eie_sim_bench_layers(&n);
    eie_error_t err;
    int within = 0;
    if (!json)
        printf("%-8s %11s %8s %8s %8s %6s %4s | %7s %7s %6s | %7s %8s %7s\n", "layer", "size",
               "entries", "cycles", "ideal", "eff", "bat", "sim us", "paper", "ratio", "theo us",
               "paper", "p.eff");
    for (size_t i = 0; i < n; i++) {
        eie_sim_report_t r;
        if (eie_sim_bench_run(&L[i], p, wl, seed, &r, &err) != EIE_STATUS_OK) {
            fprintf(stderr, "eiectl simulate: %s: %s\n", L[i].name, err.msg);
            return -1;
        }
        const eie_sim_layer_report_t *t = &r.total;
        double theo = (double)t->balanced_cycles / p->clock_mhz;
        double ratio = t->time_us / L[i].paper_actual_us;
        within += fabs(ratio - 1.0) <= 0.15;
        if (json) {
            printf("%s{\"name\":\"%s\",\"in\":%u,\"out\":%u,\"entries\":%llu,\"macs\":%llu,"
                   "\"cycles\":%llu,"
                   "\"balanced_cycles\":%llu,\"ideal_cycles\":%llu,\"efficiency\":%.4f,"
                   "\"act_batches\":%llu,\"lnzd_waits\":%llu,"
                   "\"time_us\":%.3f,\"paper_actual_us\":%.1f,\"theoretical_us\":%.3f,"
                   "\"paper_theoretical_us\":%.1f,\"energy_uj\":%.4f}",
                   i ? "," : "", L[i].name, L[i].in, L[i].out, (unsigned long long)t->entries,
                   (unsigned long long)t->macs, (unsigned long long)t->cycles,
                   (unsigned long long)t->balanced_cycles,
                   (unsigned long long)t->ideal_cycles, t->efficiency,
                   (unsigned long long)t->act_batches, (unsigned long long)t->lnzd_waits,
                   t->time_us, L[i].paper_actual_us, theo, L[i].paper_theoretical_us,
                   t->energy_uj);
        } else {
            char size[24];
            snprintf(size, sizeof size, "%ux%u", L[i].in, L[i].out);
            printf("%-8s %11s %8llu %8llu %8llu %6.3f %4llu | %7.1f %7.1f %6.2f | %7.1f %8.1f "
                   "%7.2f\n",
                   L[i].name, size, (unsigned long long)t->entries,
                   (unsigned long long)t->cycles, (unsigned long long)t->ideal_cycles,
                   t->efficiency, (unsigned long long)t->act_batches, t->time_us,
                   L[i].paper_actual_us, ratio, theo, L[i].paper_theoretical_us,
                   L[i].paper_theoretical_us / L[i].paper_actual_us);
        }
        eie_sim_report_clear(&r);
    }
    if (!json)
        printf("within 15%% of the paper's actual time: %d of %zu layers\n", within, n);
    return within;
}

static int run_benchmark(eie_sim_params_t p, uint64_t seed, int json)
{
    const eie_sim_bench_layer_t *L;
    size_t n;
    L = eie_sim_bench_layers(&n);
    eie_error_t err;
    if (!json)
        printf("EIE calibration against Table IV: %u PEs, FIFO %u, %u activations per PE "
               "register file, %g MHz\n\n"
               "Workload 1: Table III sizes and densities, uniform random mask\n",
               p.n_pes, p.fifo_depth, p.act_regs, p.clock_mhz);
    else
        printf("{\"params\":{\"pes\":%u,\"fifo\":%u,\"act_regs\":%u,\"clock_mhz\":%g},"
               "\"layers\":[",
               p.n_pes, p.fifo_depth, p.act_regs, p.clock_mhz);
    if (bench_table(&p, EIE_SIM_BENCH_TABLE3, seed, json) < 0)
        return 1;
    if (!json)
        printf("\nWorkload 2: entries matched to the paper's theoretical time (nonzero inputs' "
               "columns denser)\n");
    else
        printf("],\"layers_matched\":[");
    if (bench_table(&p, EIE_SIM_BENCH_MATCHED, seed, json) < 0)
        return 1;
    eie_sim_bench_structure_t sd = eie_sim_bench_structure_default();
    if (!json)
        printf("\nWorkload 3: structured, a trained layer's row and column scales pruned by "
               "magnitude,\ninputs on denser columns more often nonzero (row sigma %.3f, "
               "column sigma %.3f, rho %.3f)\n",
               sd.row_sigma, sd.col_sigma, sd.act_rho);
    else
        printf("],\"structure\":{\"row_sigma\":%.4f,\"col_sigma\":%.4f,\"act_rho\":%.4f},"
               "\"layers_structured\":[",
               sd.row_sigma, sd.col_sigma, sd.act_rho);
    if (bench_table(&p, EIE_SIM_BENCH_STRUCTURED, seed, json) < 0)
        return 1;
    if (!json)
        printf("(ratio = simulated / paper actual; theo = entries / PEs at the clock; p.eff = "
               "paper theoretical / actual; bat = input x output batches through the "
               "activation SRAM)\n");
    /* EIE_FACTS calibration point: efficiency on Alex-8 vs FIFO depth and vs PEs. */
    static const unsigned fifos[] = {1, 2, 4, 8, 16, 32}, pes[] = {16, 32, 64, 128, 256};
    static const double paper_fifo[] = {0.70, 0.80, 0.87, 0.90, 0.91, 0.91},
                        paper_pes[] = {0.95, 0.94, 0.90, 0.81, 0.66};
    for (int s = 0; s < 2; s++) {
        const unsigned *v = s == 0 ? fifos : pes;
        const double *paper = s == 0 ? paper_fifo : paper_pes;
        size_t nv = s == 0 ? 6 : 5;
        if (json)
            printf("],\"alex8_%s\":[", s == 0 ? "fifo" : "pes");
        else
            printf("\nAlex-8 (workload 2) load efficiency vs %s\n%-6s %8s %6s %6s %8s\n",
                   s == 0 ? "FIFO depth (64 PEs)" : "PEs (FIFO 8)", s == 0 ? "fifo" : "pes",
                   "cycles", "eff", "paper", "speedup");
        uint64_t first = 0;
        for (size_t i = 0; i < nv; i++) {
            eie_sim_params_t q = p;
            if (s == 0)
                q.fifo_depth = v[i];
            else
                q.n_pes = v[i];
            eie_sim_report_t r;
            if (eie_sim_bench_run(&L[2], &q, EIE_SIM_BENCH_MATCHED, seed, &r, &err) !=
                EIE_STATUS_OK) {
                fprintf(stderr, "eiectl simulate: %s\n", err.msg);
                return 1;
            }
            if (i == 0)
                first = r.total.cycles;
            double sp = (double)first / (double)r.total.cycles;
            if (json)
                printf("%s{\"%s\":%u,\"cycles\":%llu,\"efficiency\":%.4f,\"paper\":%.2f}",
                       i ? "," : "", s == 0 ? "fifo" : "pes", v[i],
                       (unsigned long long)r.total.cycles, r.total.efficiency, paper[i]);
            else
                printf("%-6u %8llu %6.3f %6.2f %8.2f\n", v[i],
                       (unsigned long long)r.total.cycles, r.total.efficiency, paper[i], sp);
            eie_sim_report_clear(&r);
        }
    }
    if (json)
        printf("]}\n");
    return 0;
}

int eiectl_cmd_simulate(int argc, char **argv)
{
    const char *path = NULL, *input = NULL, *plot = NULL, *sweep = NULL;
    const char *structure = NULL, *data = NULL;
    int json = 0, bench = 0;
    unsigned seed = 1, limit = 0;
    eie_sim_params_t p = eie_sim_params_default();
    if (eiectl_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--benchmark") == 0) {
            bench = 1;
        } else if ((strcmp(a, "--pes") == 0 || strcmp(a, "--fifo") == 0 ||
                    strcmp(a, "--pipeline") == 0 || strcmp(a, "--act-regs") == 0 ||
                    strcmp(a, "--seed") == 0 || strcmp(a, "--limit") == 0) &&
                   has) {
            unsigned v;
            if (parse_uint(argv[++i], 4000000000ul, &v) != 0)
                return eiectl_usage_error("simulate", "%s: '%s' is not a count", a, argv[i]);
            *(strcmp(a, "--pes") == 0        ? &p.n_pes
              : strcmp(a, "--fifo") == 0     ? &p.fifo_depth
              : strcmp(a, "--pipeline") == 0 ? &p.pipeline_depth
              : strcmp(a, "--act-regs") == 0 ? &p.act_regs
              : strcmp(a, "--limit") == 0    ? &limit
                                             : &seed) = v;
        } else if (strcmp(a, "--clock-mhz") == 0 && has) {
            char *end;
            p.clock_mhz = strtod(argv[++i], &end);
            if (end == argv[i] || *end != '\0')
                return eiectl_usage_error("simulate", "--clock-mhz: '%s' is not a number",
                                          argv[i]);
        } else if (strcmp(a, "--input") == 0 && has) {
            input = argv[++i];
        } else if (strcmp(a, "--plot") == 0 && has) {
            plot = argv[++i];
        } else if (strcmp(a, "--sweep") == 0 && has) {
            sweep = argv[++i];
        } else if (strcmp(a, "--structure") == 0 && has) {
            structure = argv[++i];
        } else if (strcmp(a, "--data") == 0 && has) {
            data = argv[++i];
        } else if (a[0] == '-') {
            return eiectl_usage_error("simulate", "unknown option or missing value: '%s'", a);
        } else if (path == NULL) {
            path = a;
        } else {
            return eiectl_usage_error("simulate", "one model file only");
        }
    }
    eie_error_t err;
    if (eie_sim_params_check(&p, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl simulate: %s\n", err.msg);
        return 2;
    }
    if (bench)
        return run_benchmark(p, seed, json);
    if (structure != NULL) {
        if (data == NULL)
            return eiectl_usage_error("simulate", "--structure needs --data DIR");
        return eiectl_structure(structure, data, limit);
    }
    if (path == NULL)
        return eiectl_usage_error("simulate", "missing MODEL.eie (or --benchmark)");
    if (plot != NULL && sweep == NULL)
        return eiectl_usage_error("simulate", "--plot needs --sweep");
    char key[8];
    unsigned vals[MAX_SWEEP];
    size_t nvals = 0;
    if (sweep != NULL) {
        int rc = parse_sweep(sweep, key, vals, &nvals);
        if (rc != 0)
            return rc;
    }
    eie_model_t *m;
    if (eie_model_load_file(path, NULL, &m, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl simulate: %s (%s)\n", err.msg, eie_status_name(err.status));
        return 1;
    }
    int rc = 1;
    size_t din = eie_model_input_dim(m), dout = eie_model_output_dim(m);
    float *x = malloc(din * sizeof *x), *y = malloc(dout * sizeof *y);
    if (x == NULL || y == NULL) {
        fprintf(stderr, "eiectl simulate: out of memory\n");
        goto done;
    }
    if (input != NULL) {
        if (read_input(input, x, din) != 0)
            goto done;
    } else {
        default_input(x, din);
    }
    if (sweep != NULL) {
        rc = run_sweep(m, path, p, key, vals, nvals, x, y, plot, json);
        goto done;
    }
    eie_sim_report_t r;
    if (run_once(m, &p, x, y, &r) != 0)
        goto done;
    double dabs = 0, drel = 0;
    int cmp = compare_cpu(m, x, y, &dabs, &drel);
    if (json) {
        printf("{\"model\":");
        eiectl_json_string(stdout, path);
        printf(",\"params\":{\"pes\":%u,\"fifo\":%u,\"pipeline\":%u,\"act_regs\":%u,"
               "\"clock_mhz\":%g},\"layers\":[",
               p.n_pes, p.fifo_depth, p.pipeline_depth, p.act_regs, p.clock_mhz);
        for (size_t i = 0; i < r.n_layers; i++) {
            printf(i ? "," : "");
            json_layer(&r.layers[i], 1);
        }
        printf("],\"total\":");
        json_layer(&r.total, 0);
        if (cmp == 0)
            printf(",\"vs_cpu\":{\"max_abs_diff\":%.9g,\"max_rel_diff\":%.9g}", dabs, drel);
        printf("}\n");
    } else {
        print_report(&r);
        if (cmp == 0)
            printf("\nvs cpu backend (float): max |diff| %.3g, max |diff|/max(1,|y|) %.3g "
                   "(bound 2^-5 = 0.031, engine/sim/README.md)\n",
                   dabs, drel);
    }
    eie_sim_report_clear(&r);
    rc = cmp == 0 ? 0 : 1;
done:
    free(x);
    free(y);
    eie_model_free(m);
    return rc;
}
