/*
 * Mini-batch SGD with momentum and weight decay, and evaluation.
 *
 * Every mini-batch is cut into EIE_TRAIN_SHARDS fixed shards; threads take
 * shards round-robin and each shard has its own gradient buffer, summed in
 * shard order afterwards. The arithmetic is therefore the same on one core or
 * many, and --seed alone decides the result.
 */
#include "eie/train.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "train/backprop.h"
#include "train/rng.h"

#define EIE_TRAIN_SHARDS 4
#define EIE_EVAL_CHUNK   256

eie_train_opts_t eie_train_opts_default(void)
{
    return (eie_train_opts_t){
        .epochs = 10,
        .batch = 64,
        .lr = 0.05f,
        .lr_decay = 0.9f,
        .momentum = 0.9f,
        .weight_decay = 1e-4f,
        .codebook_lr = 1e-4f,
        .seed = 1,
        .threads = 0,
        .stage = "train",
    };
}

static unsigned pick_threads(unsigned want, unsigned most)
{
    if (want == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        want = n > 0 ? (unsigned)n : 1;
    }
    return want < most ? want : most;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ */
/* Threads over shards                                                 */

typedef struct shard_job {
    const eie_mlp_t *mlp;
    float *const *wts;
    const float *x;
    const uint8_t *labels;
    size_t n;
    eie_bp_ws_t *ws;
    eie_mlp_grad_t *grad; /* NULL: forward only */
    double loss;
} shard_job_t;

typedef struct shard_worker {
    shard_job_t *jobs;
    size_t n_jobs, first, step;
} shard_worker_t;

static void *shard_worker_main(void *arg)
{
    shard_worker_t *w = arg;
    for (size_t s = w->first; s < w->n_jobs; s += w->step) {
        shard_job_t *j = &w->jobs[s];
        j->loss = j->n ? eie_bp_run(j->mlp, j->wts, j->x, j->labels, j->n, j->ws, j->grad) : 0.0;
    }
    return NULL;
}

/* Runs jobs on threads (the caller's thread included); falls back to fewer threads. */
static void shards_run(shard_job_t *jobs, size_t n_jobs, unsigned threads)
{
    pthread_t tid[EIE_TRAIN_SHARDS];
    shard_worker_t workers[EIE_TRAIN_SHARDS];
    unsigned started = 0;
    if (threads > n_jobs)
        threads = (unsigned)n_jobs;
    for (unsigned t = 0; t < threads; t++)
        workers[t] = (shard_worker_t){jobs, n_jobs, t, threads};
    for (unsigned t = 1; t < threads; t++) {
        if (pthread_create(&tid[t], NULL, shard_worker_main, &workers[t]) != 0)
            break;
        started = t;
    }
    if (started + 1 < threads) {
        /* Could not start every thread: the caller's thread does the rest. */
        for (unsigned t = started + 1; t < threads; t++)
            shard_worker_main(&workers[t]);
    }
    shard_worker_main(&workers[0]);
    for (unsigned t = 1; t <= started; t++)
        pthread_join(tid[t], NULL);
}

/* ------------------------------------------------------------------ */
/* Training                                                            */

typedef struct velocity {
    float *w, *b, *c;
} velocity_t;

static void apply_update(eie_mlp_t *mlp, eie_mlp_grad_t *g, velocity_t *v, float lr, float mom,
                         float wd, float codebook_lr)
{
    for (size_t i = 0; i < mlp->n_layers; i++) {
        eie_mlp_layer_t *l = &mlp->layers[i];
        if (!eie_mlp_layer_has_weights(l))
            continue;
        size_t n = (size_t)l->rows * l->cols;
        float *dw = g->dw[i];
        for (uint32_t k = 0; k < l->rows; k++) {
            v[i].b[k] = mom * v[i].b[k] - lr * g->db[i][k];
            l->b[k] += v[i].b[k];
        }
        if (l->codes != NULL) {
            /*
             * Deep Compression sec. 3.1: the gradient of a shared centroid is
             * the sum of the gradients of the weights that use it. Code 0 is
             * the pruned weight and stays 0.
             */
            size_t k_count = (size_t)1 << l->code_bits;
            double cg[256] = {0};
            for (size_t k = 0; k < n; k++)
                cg[l->codes[k]] += dw[k];
            for (size_t k = 1; k < k_count; k++) {
                v[i].c[k] = mom * v[i].c[k] - codebook_lr * (float)cg[k];
                l->codebook[k] += v[i].c[k];
            }
            for (size_t k = 0; k < n; k++)
                l->w[k] = l->codebook[l->codes[k]];
            continue;
        }
        float *w = l->w, *vw = v[i].w;
        for (size_t k = 0; k < n; k++) {
            vw[k] = mom * vw[k] - lr * (dw[k] + wd * w[k]);
            w[k] += vw[k];
        }
        if (l->mask != NULL) {
            /* Pruned connections stay pruned (NIPS 2015 sec. 3.3). */
            const uint8_t *m = l->mask;
            for (size_t k = 0; k < n; k++)
                if (!m[k])
                    w[k] = vw[k] = 0.0f;
        }
    }
}

static void velocity_free(velocity_t *v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].w);
        free(v[i].b);
        free(v[i].c);
    }
    free(v);
}

static velocity_t *velocity_init(const eie_mlp_t *mlp)
{
    velocity_t *v = calloc(mlp->n_layers ? mlp->n_layers : 1, sizeof *v);
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < mlp->n_layers; i++) {
        const eie_mlp_layer_t *l = &mlp->layers[i];
        if (!eie_mlp_layer_has_weights(l))
            continue;
        v[i].w = calloc((size_t)l->rows * l->cols, sizeof(float));
        v[i].b = calloc(l->rows, sizeof(float));
        v[i].c = calloc(256, sizeof(float));
        if (v[i].w == NULL || v[i].b == NULL || v[i].c == NULL) {
            velocity_free(v, mlp->n_layers);
            return NULL;
        }
    }
    return v;
}

eie_status_t eie_train(eie_mlp_t *mlp, const eie_dataset_t *ds, const eie_train_opts_t *opts,
                       eie_train_stats_t *stats_out, eie_error_t *err)
{
    eie_status_t st = eie_dataset_check(ds, mlp, err);
    if (st != EIE_STATUS_OK)
        return st;
    if (opts->batch == 0 || opts->batch > 65536)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "batch size %u outside 1..65536",
                             opts->batch);
    if (!(opts->lr >= 0.0f) || !(opts->momentum >= 0.0f && opts->momentum < 1.0f))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "learning rate %g or momentum %g out of range", (double)opts->lr,
                             (double)opts->momentum);
    for (size_t i = 0; i < mlp->n_layers; i++) {
        const eie_mlp_layer_t *l = &mlp->layers[i];
        if (eie_mlp_layer_has_weights(l) && l->codes && (l->code_bits < 1 || l->code_bits > 8))
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "layer %zu: %u code bits outside 1..8", i, l->code_bits);
    }
    size_t batch = opts->batch < ds->count ? opts->batch : ds->count;
    uint32_t in = mlp->input_dim;
    size_t shard_cap = (batch + EIE_TRAIN_SHARDS - 1) / EIE_TRAIN_SHARDS;
    unsigned threads = pick_threads(opts->threads, EIE_TRAIN_SHARDS);

    shard_job_t jobs[EIE_TRAIN_SHARDS] = {0};
    velocity_t *vel = velocity_init(mlp);
    float **wts = eie_bp_transposes(mlp);
    float *xb = malloc(batch * in * sizeof *xb);
    uint8_t *yb = malloc(batch);
    uint32_t *order = malloc(ds->count * sizeof *order);
    st = EIE_STATUS_NO_MEMORY;
    if (vel == NULL || wts == NULL || xb == NULL || yb == NULL || order == NULL) {
        eie_error_set(err, st, "out of memory for training");
        goto done;
    }
    for (size_t s = 0; s < EIE_TRAIN_SHARDS; s++) {
        if ((st = eie_bp_ws_init(mlp, shard_cap, 1, &jobs[s].ws, err)) != EIE_STATUS_OK ||
            (st = eie_mlp_grad_init(mlp, &jobs[s].grad, err)) != EIE_STATUS_OK)
            goto done;
        jobs[s].mlp = mlp;
        jobs[s].wts = wts;
    }
    for (uint32_t i = 0; i < ds->count; i++)
        order[i] = i;

    eie_rng_t rng;
    eie_rng_seed(&rng, opts->seed);
    double t0 = now_seconds(), epoch_loss = 0.0;
    float lr = opts->lr;
    size_t n_batches = (ds->count + batch - 1) / batch;
    for (unsigned e = 0; e < opts->epochs; e++) {
        /* Fisher-Yates shuffle from the seeded generator. */
        for (uint32_t i = ds->count; i > 1; i--) {
            uint32_t j = (uint32_t)eie_rng_below(&rng, i);
            uint32_t t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
        double loss_sum = 0.0;
        for (size_t bi = 0; bi < n_batches; bi++) {
            size_t start = bi * batch;
            size_t n = ds->count - start < batch ? ds->count - start : batch;
            for (size_t r = 0; r < n; r++) {
                uint32_t k = order[start + r];
                memcpy(xb + r * in, ds->images + (size_t)k * in, in * sizeof *xb);
                yb[r] = ds->labels[k];
            }
            for (size_t s = 0; s < EIE_TRAIN_SHARDS; s++) {
                size_t a = n * s / EIE_TRAIN_SHARDS, b = n * (s + 1) / EIE_TRAIN_SHARDS;
                jobs[s].x = xb + a * in;
                jobs[s].labels = yb + a;
                jobs[s].n = b - a;
            }
            shards_run(jobs, EIE_TRAIN_SHARDS, threads);
            /* Sum the shards' gradients in shard order, then average. */
            eie_mlp_grad_t *g = NULL;
            float scale = 1.0f / (float)n;
            for (size_t s = 0; s < EIE_TRAIN_SHARDS; s++) {
                loss_sum += jobs[s].loss;
                if (jobs[s].n == 0)
                    continue;
                if (g == NULL) {
                    g = jobs[s].grad;
                    continue;
                }
                for (size_t i = 0; i < mlp->n_layers; i++) {
                    const eie_mlp_layer_t *l = &mlp->layers[i];
                    if (!eie_mlp_layer_has_weights(l))
                        continue;
                    size_t nw = (size_t)l->rows * l->cols;
                    float *dst = g->dw[i];
                    const float *src = jobs[s].grad->dw[i];
                    for (size_t k = 0; k < nw; k++)
                        dst[k] += src[k];
                    for (uint32_t k = 0; k < l->rows; k++)
                        g->db[i][k] += jobs[s].grad->db[i][k];
                }
            }
            for (size_t i = 0; i < mlp->n_layers; i++) {
                const eie_mlp_layer_t *l = &mlp->layers[i];
                if (!eie_mlp_layer_has_weights(l))
                    continue;
                size_t nw = (size_t)l->rows * l->cols;
                for (size_t k = 0; k < nw; k++)
                    g->dw[i][k] *= scale;
                for (uint32_t k = 0; k < l->rows; k++)
                    g->db[i][k] *= scale;
            }
            apply_update(mlp, g, vel, lr, opts->momentum, opts->weight_decay, opts->codebook_lr);
            eie_bp_transposes_update(mlp, wts);
            if (opts->progress && (bi % 16 == 0 || bi + 1 == n_batches))
                opts->progress(opts->progress_user, opts->stage ? opts->stage : "train", e + 1,
                               opts->epochs, bi + 1, n_batches, loss_sum / (double)(start + n));
        }
        epoch_loss = loss_sum / (double)ds->count;
        if (!isfinite(epoch_loss)) {
            st = eie_error_set(err, EIE_STATUS_FAILED_PRECONDITION,
                               "training diverged in epoch %u (loss %g); lower the learning rate %g",
                               e + 1, epoch_loss, (double)lr);
            goto done;
        }
        lr *= opts->lr_decay;
    }
    if (stats_out) {
        stats_out->last_loss = epoch_loss;
        stats_out->seconds = now_seconds() - t0;
    }
    st = EIE_STATUS_OK;
done:
    for (size_t s = 0; s < EIE_TRAIN_SHARDS; s++) {
        eie_bp_ws_free(jobs[s].ws, mlp);
        eie_mlp_grad_free(jobs[s].grad);
    }
    eie_bp_transposes_free(mlp, wts);
    velocity_free(vel, mlp->n_layers);
    free(xb);
    free(yb);
    free(order);
    return st;
}

/* ------------------------------------------------------------------ */
/* Evaluation                                                          */

typedef struct eval_worker {
    const eie_mlp_t *mlp;
    float *const *wts;
    const eie_dataset_t *ds;
    size_t first_chunk, step;
    eie_bp_ws_t *ws;
    eie_eval_t ev; /* this worker's counts; loss summed, not averaged */
} eval_worker_t;

void eie_eval_add(eie_eval_t *ev, const float *scores, uint8_t label)
{
    uint32_t higher = 0;
    for (uint32_t k = 0; k < ev->classes; k++)
        higher += scores[k] > scores[label] || (scores[k] == scores[label] && k < label);
    ev->count++;
    ev->class_total[label]++;
    ev->class_correct[label] += higher == 0;
    ev->top5_hits += higher < 5;
}

void eie_eval_merge(eie_eval_t *ev, const eie_eval_t *part)
{
    ev->count += part->count;
    ev->top5_hits += part->top5_hits;
    ev->loss += part->loss;
    for (uint32_t k = 0; k < ev->classes; k++) {
        ev->class_total[k] += part->class_total[k];
        ev->class_correct[k] += part->class_correct[k];
    }
}

void eie_eval_finish(eie_eval_t *ev)
{
    uint32_t top1 = 0;
    for (uint32_t k = 0; k < ev->classes; k++)
        top1 += ev->class_correct[k];
    ev->top1 = ev->count ? (double)top1 / ev->count : 0.0;
    ev->top5 = ev->count ? (double)ev->top5_hits / ev->count : 0.0;
}

static void *eval_worker_main(void *arg)
{
    eval_worker_t *w = arg;
    const eie_dataset_t *ds = w->ds;
    uint32_t in = w->mlp->input_dim, classes = ds->classes;
    size_t chunks = (ds->count + EIE_EVAL_CHUNK - 1) / EIE_EVAL_CHUNK;
    for (size_t c = w->first_chunk; c < chunks; c += w->step) {
        size_t a = c * EIE_EVAL_CHUNK;
        size_t n = ds->count - a < EIE_EVAL_CHUNK ? ds->count - a : EIE_EVAL_CHUNK;
        w->ev.loss +=
            eie_bp_run(w->mlp, w->wts, ds->images + a * in, ds->labels + a, n, w->ws, NULL);
        for (size_t r = 0; r < n; r++)
            eie_eval_add(&w->ev, w->ws->probs + r * classes, ds->labels[a + r]);
    }
    return NULL;
}

eie_status_t eie_evaluate(const eie_mlp_t *mlp, const eie_dataset_t *ds, unsigned threads,
                          eie_eval_t *eval_out, eie_error_t *err)
{
    eie_status_t st = eie_dataset_check(ds, mlp, err);
    if (st != EIE_STATUS_OK)
        return st;
    if (ds->count == 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "empty dataset");
    threads = pick_threads(threads, EIE_TRAIN_SHARDS);
    eval_worker_t workers[EIE_TRAIN_SHARDS] = {0};
    pthread_t tid[EIE_TRAIN_SHARDS];
    unsigned started = 1;
    float **wts = eie_bp_transposes(mlp);
    if (wts == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for evaluation");
    for (unsigned t = 0; t < threads; t++) {
        workers[t] = (eval_worker_t){.mlp = mlp, .wts = wts, .ds = ds, .first_chunk = t,
                                     .step = threads, .ev = {.classes = ds->classes}};
        if ((st = eie_bp_ws_init(mlp, EIE_EVAL_CHUNK, 0, &workers[t].ws, err)) != EIE_STATUS_OK)
            goto done;
    }
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, eval_worker_main, &workers[started]) != 0)
            break;
    for (unsigned t = started; t < threads; t++)
        eval_worker_main(&workers[t]);
    eval_worker_main(&workers[0]);
    for (unsigned t = 1; t < started; t++)
        pthread_join(tid[t], NULL);

    memset(eval_out, 0, sizeof *eval_out);
    eval_out->classes = ds->classes;
    for (unsigned t = 0; t < threads; t++)
        eie_eval_merge(eval_out, &workers[t].ev);
    eie_eval_finish(eval_out);
    eval_out->loss /= ds->count;
    st = EIE_STATUS_OK;
done:
    for (unsigned t = 0; t < threads; t++)
        eie_bp_ws_free(workers[t].ws, mlp);
    eie_bp_transposes_free(mlp, wts);
    return st;
}
