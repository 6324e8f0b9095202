/* The model registry, background loading and publication; see models.h. */
#include "models.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "call.h"
#include "log.h"
#include "repository.h"

/* A detached Ed25519 signature is 64 bytes; anything bigger is not one. */
#define SIG_MAX_BYTES 1024

uint64_t eied_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *eied_model_state_name(eied_model_state_t state)
{
    switch (state) {
    case EIED_MODEL_LOADING:
        return "LOADING";
    case EIED_MODEL_READY:
        return "READY";
    case EIED_MODEL_UNAVAILABLE:
        return "UNAVAILABLE";
    case EIED_MODEL_UNLOADED:
        return "UNLOADED";
    }
    return "UNKNOWN";
}

void eied_version_ref(eied_version_t *v)
{
    atomic_fetch_add(&v->refs, 1);
}

eie_net_t *eied_version_net(const eied_version_t *v, const char *backend,
                            eie_engine_t **engine_out)
{
    if (backend == NULL || backend[0] == '\0' ||
        strcmp(backend, eie_engine_backend(v->engine)) == 0) {
        *engine_out = v->engine;
        return v->net;
    }
    for (size_t i = 0; i < v->n_alt; i++) {
        if (strcmp(backend, eie_engine_backend(v->alt_engines[i])) == 0) {
            *engine_out = v->alt_engines[i];
            return v->alt_nets[i];
        }
    }
    return NULL;
}

static void version_free(eied_version_t *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n_alt; i++)
        eie_net_free(v->alt_nets[i]);
    eie_net_free(v->net);
    eie_model_free(v->model);
    free(v);
    /* A retired version frees megabytes at once; hand them back to the system so memory
       after many swaps returns to one loaded set instead of staying in malloc's arenas. */
    malloc_trim(0);
}

void eied_version_unref(eied_version_t *v)
{
    if (v != NULL && atomic_fetch_sub(&v->refs, 1) == 1)
        version_free(v);
}

/* ---- registry ------------------------------------------------------------------ */

static bool read_public_keys(eied_models_t *models, const char *list)
{
    char buf[EIED_CONFIG_STR_MAX];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *path = strtok_r(buf, ",", &save); path != NULL; path = strtok_r(NULL, ",", &save)) {
        while (*path == ' ')
            path++;
        if (*path == '\0')
            continue;
        if (models->n_public_keys == sizeof models->public_keys / sizeof models->public_keys[0]) {
            eied_log(EIED_LOG_ERROR, "too many public keys (at most 8)", NULL);
            return false;
        }
        FILE *f = fopen(path, "r");
        EVP_PKEY *key = f != NULL ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
        if (f != NULL)
            fclose(f);
        if (key == NULL || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
            eied_log(EIED_LOG_ERROR, "public_keys: not an Ed25519 public key in PEM", "path", path,
                     "error", f == NULL ? strerror(errno) : "unreadable or wrong type", NULL);
            EVP_PKEY_free(key);
            return false;
        }
        models->public_keys[models->n_public_keys++] = key;
    }
    return true;
}

eied_models_t *eied_models_create(eied_server_t *srv, const eied_config_t *cfg)
{
    eied_models_t *models = calloc(1, sizeof *models);
    if (models == NULL)
        return NULL;
    models->srv = srv;
    models->cfg = cfg;
    if (!read_public_keys(models, cfg->public_keys))
        goto error;
    if (cfg->require_signed && models->n_public_keys == 0) {
        eied_log(EIED_LOG_ERROR, "require_signed is on but public_keys names no key", NULL);
        goto error;
    }
    /* the default backend first, then every other one a model asks for */
    const char *wanted[1 + 2 * EIED_CONFIG_MAX_MODELS];
    size_t n_wanted = 0;
    wanted[n_wanted++] = cfg->backend;
    for (size_t i = 0; i < cfg->n_model_backends; i++)
        wanted[n_wanted++] = cfg->model_backends[i].path;
    char extra[EIED_CONFIG_STR_MAX];
    snprintf(extra, sizeof extra, "%s", cfg->extra_backends);
    char *save = NULL;
    for (char *b = strtok_r(extra, ", ", &save); b != NULL && n_wanted < 1 + 2 * EIED_CONFIG_MAX_MODELS;
         b = strtok_r(NULL, ", ", &save))
        wanted[n_wanted++] = b;
    for (size_t w = 0; w < n_wanted; w++) {
        bool have = false;
        for (size_t e = 0; e < models->n_engines; e++)
            have |= strcmp(eie_engine_backend(models->engines[e]), wanted[w]) == 0;
        if (have)
            continue;
        if (models->n_engines == sizeof models->engines / sizeof models->engines[0]) {
            eied_log(EIED_LOG_ERROR, "too many backends", NULL);
            goto error;
        }
        eie_engine_opts_t opts = eie_engine_opts_default();
        opts.backend = wanted[w];
        opts.n_pes = (unsigned)cfg->pes;
        opts.cpu_column_only = !cfg->row_form;
        opts.cpu_kernel = cfg->cpu_kernel;
        opts.max_layout_bytes = cfg->max_layout_bytes;
        opts.max_layout_ratio = cfg->max_layout_ratio;
        opts.max_sequence = (unsigned)cfg->max_sequence;
        opts.sim_fifo_depth = (unsigned)cfg->sim_fifo_depth;
        opts.sim_pipeline_depth = (unsigned)cfg->sim_pipeline_depth;
        opts.sim_clock_mhz = (double)cfg->sim_clock_mhz;
        eie_error_t err;
        eie_engine_t *engine;
        if (eie_engine_init(&opts, &engine, &err) != EIE_STATUS_OK) {
            eied_log(EIED_LOG_ERROR, "cannot start the engine", "backend", wanted[w], "error",
                     err.msg, NULL);
            goto error;
        }
        models->engines[models->n_engines++] = engine;
        char pes[16];
        snprintf(pes, sizeof pes, "%u", eie_engine_pes(engine));
        eied_log(EIED_LOG_INFO, "engine started", "backend", eie_engine_backend(engine), "pes",
                 pes, NULL);
    }
    return models;
error:
    eied_models_free(models);
    return NULL;
}

void eied_models_free(eied_models_t *models)
{
    if (models == NULL)
        return;
    for (eied_model_t *m = models->head, *next; m != NULL; m = next) {
        next = m->next;
        for (size_t i = 0; i < m->n_versions; i++)
            eied_version_unref(m->versions[i]);
        free(m); /* its batch timer was closed with the loop (eied_models_close_handles) */
    }
    for (size_t i = 0; i < models->n_public_keys; i++)
        EVP_PKEY_free(models->public_keys[i]);
    for (size_t e = 0; e < models->n_engines; e++)
        eie_engine_free(models->engines[e]);
    free(models);
}

void eied_models_close_handles(eied_models_t *models)
{
    for (eied_model_t *m = models->head; m != NULL; m = m->next)
        if (!uv_is_closing((uv_handle_t *)&m->batch_timer))
            uv_close((uv_handle_t *)&m->batch_timer, NULL);
}

eie_engine_t *eied_models_engine_for(eied_models_t *models, const char *name)
{
    const eied_config_t *cfg = models->cfg;
    for (size_t i = 0; i < cfg->n_model_backends; i++) {
        if (strcmp(cfg->model_backends[i].name, name) != 0)
            continue;
        for (size_t e = 0; e < models->n_engines; e++)
            if (strcmp(eie_engine_backend(models->engines[e]), cfg->model_backends[i].path) == 0)
                return models->engines[e];
    }
    return models->engines[0];
}

eied_model_t *eied_models_find(eied_models_t *models, const char *name)
{
    for (eied_model_t *m = models->head; m != NULL; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

eied_model_t *eied_models_get(eied_models_t *models, const char *name, bool create)
{
    eied_model_t *m = eied_models_find(models, name);
    if (m != NULL || !create)
        return m;
    m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    snprintf(m->name, sizeof m->name, "%s", name);
    m->srv = models->srv;
    atomic_init(&m->queued, 0);
    m->state = EIED_MODEL_LOADING;
    uv_timer_init(models->srv->loop, &m->batch_timer);
    m->batch_timer.data = m;
    m->next = models->head;
    models->head = m;
    return m;
}

static void forgotten_closed(uv_handle_t *h)
{
    free(h->data);
}

void eied_models_forget(eied_models_t *models, eied_model_t *m)
{
    if (m->n_versions > 0 || m->n_loading > 0 || m->pending_head != NULL ||
        m->inflight_batches > 0 || atomic_load(&m->queued) > 0 || m->batch_timer_armed)
        return; /* requests still hold it: the next scan tries again */
    for (eied_model_t **p = &models->head; *p != NULL; p = &(*p)->next) {
        if (*p == m) {
            *p = m->next;
            break;
        }
    }
    eied_log(EIED_LOG_INFO, "model forgotten (removed from the repository)", "model", m->name,
             NULL);
    uv_close((uv_handle_t *)&m->batch_timer, forgotten_closed);
}

bool eied_models_all_ready(const eied_models_t *models)
{
    if (models->loads_pending > 0)
        return false;
    for (const eied_model_t *m = models->head; m != NULL; m = m->next)
        if (m->state != EIED_MODEL_READY && m->state != EIED_MODEL_UNLOADED)
            return false;
    return true;
}

eied_version_t *eied_model_version(const eied_model_t *model, uint64_t v)
{
    if (v == 0)
        return model->current;
    for (size_t i = 0; i < model->n_versions; i++)
        if (model->versions[i]->version == v)
            return model->versions[i];
    return NULL;
}

bool eied_model_is_loading(const eied_model_t *model, uint64_t version)
{
    for (size_t i = 0; i < model->n_loading; i++)
        if (model->loading[i] == version)
            return true;
    return false;
}

static bool same_file(const eied_file_id_t *a, const eied_file_id_t *b)
{
    return a->size == b->size && a->mtime_ns == b->mtime_ns && a->ino == b->ino &&
           a->sig_size == b->sig_size && a->sig_mtime_ns == b->sig_mtime_ns &&
           a->mode == b->mode;
}

bool eied_model_failed_before(const eied_model_t *model, uint64_t version,
                              const eied_file_id_t *file)
{
    for (size_t i = 0; i < model->n_failed; i++)
        if (model->failed[i].version == version && same_file(&model->failed[i].file, file))
            return true;
    return false;
}

static void remember_failure(eied_model_t *m, uint64_t version, const eied_file_id_t *file,
                             const char *reason)
{
    size_t i = 0;
    while (i < m->n_failed && m->failed[i].version != version)
        i++;
    if (i == m->n_failed) {
        if (m->n_failed == EIED_MAX_FAILED) { /* forget the oldest */
            memmove(&m->failed[0], &m->failed[1], (EIED_MAX_FAILED - 1) * sizeof m->failed[0]);
            m->n_failed--;
        }
        i = m->n_failed++;
    }
    m->failed[i].version = version;
    m->failed[i].file = *file;
    snprintf(m->failed[i].reason, sizeof m->failed[i].reason, "%s", reason);
}

void eied_models_forget_failures(eied_models_t *models)
{
    for (eied_model_t *m = models->head; m != NULL; m = m->next)
        m->n_failed = 0;
}

static void forget_failure(eied_model_t *m, uint64_t version)
{
    for (size_t i = 0; i < m->n_failed; i++) {
        if (m->failed[i].version == version) {
            m->failed[i] = m->failed[--m->n_failed];
            return;
        }
    }
}

static void update_state(eied_model_t *m)
{
    m->current = m->n_versions > 0 ? m->versions[m->n_versions - 1] : NULL;
    if (m->current != NULL)
        m->state = EIED_MODEL_READY;
    else if (m->state != EIED_MODEL_UNLOADED)
        m->state = m->n_loading > 0 ? EIED_MODEL_LOADING : EIED_MODEL_UNAVAILABLE;
}

void eied_models_retire(eied_models_t *models, eied_model_t *m, uint64_t version)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n_versions; i++) {
        eied_version_t *v = m->versions[i];
        if (version == 0 || v->version == version) {
            char num[32];
            snprintf(num, sizeof num, "%llu", (unsigned long long)v->version);
            eied_log(EIED_LOG_INFO, "version retired", "model", m->name, "version", num, NULL);
            models->bytes_published -= v->bytes;
            eied_version_unref(v); /* requests in flight keep it alive until they finish */
        } else {
            m->versions[k++] = v;
        }
    }
    m->n_versions = k;
    update_state(m);
}

bool eied_models_unload(eied_models_t *models, const char *name, char *why, size_t why_len)
{
    eied_model_t *m = eied_models_find(models, name);
    if (m == NULL || m->state == EIED_MODEL_UNLOADED) {
        snprintf(why, why_len, "model '%s' is not loaded", name);
        return false;
    }
    eied_models_retire(models, m, 0);
    m->n_desired = 0;
    m->state = EIED_MODEL_UNLOADED;
    snprintf(m->reason, sizeof m->reason, "unloaded");
    eied_log(EIED_LOG_INFO, "model unloaded", "model", name, NULL);
    return true;
}

/* ---- background loading ----------------------------------------------------------- */

typedef struct load_req {
    uv_work_t work;
    eied_models_t *models;
    char name[EIED_MODEL_NAME_MAX];
    char path[EIED_CONFIG_STR_MAX];
    uint64_t version;
    bool from_repo;
    eied_file_id_t file;
    eie_engine_t *engine;
    eied_version_t *result;
    bool transient; /* the file changed while being read: retry, do not remember */
    eie_error_t err;
} load_req_t;

static bool stat_id(const char *path, eied_file_id_t *id)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return false;
    id->size = (uint64_t)sb.st_size;
    id->mtime_ns = (uint64_t)sb.st_mtim.tv_sec * 1000000000u + (uint64_t)sb.st_mtim.tv_nsec;
    id->ino = (uint64_t)sb.st_ino;
    id->mode = (uint64_t)sb.st_mode;
    return true;
}

/* The model file and its signature as one identity (signature fields 0 when absent). */
bool eied_file_id_read(const char *path, eied_file_id_t *id_out);
bool eied_file_id_read(const char *path, eied_file_id_t *id_out)
{
    eied_file_id_t id = {0};
    if (!stat_id(path, &id))
        return false;
    char sig[EIED_CONFIG_STR_MAX + 8];
    snprintf(sig, sizeof sig, "%s.sig", path);
    eied_file_id_t sid = {0};
    if (stat_id(sig, &sid)) {
        id.sig_size = sid.size;
        id.sig_mtime_ns = sid.mtime_ns;
    }
    *id_out = id;
    return true;
}

static uint8_t *read_all(const char *path, uint64_t limit, size_t *len_out, eie_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        eie_error_set(err, EIE_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    uint8_t *buf = NULL;
    if (fstat(fileno(f), &sb) != 0 || (uint64_t)sb.st_size > limit) {
        eie_error_set(err, EIE_STATUS_LIMIT, "%s: %lld bytes is over the limit of %llu", path,
                      (long long)sb.st_size, (unsigned long long)limit);
        goto out;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        eie_error_set(err, EIE_STATUS_NO_MEMORY, "%s: out of memory", path);
        goto out;
    }
    *len_out = fread(buf, 1, (size_t)sb.st_size, f);
    if (*len_out != (size_t)sb.st_size) {
        eie_error_set(err, EIE_STATUS_IO, "%s: short read", path);
        free(buf);
        buf = NULL;
    }
out:
    fclose(f);
    return buf;
}

/* Ed25519 over the whole file, against each configured key (OpenSSL EVP). */
static bool verify_signature(load_req_t *req, const uint8_t *data, size_t len, bool *signed_out)
{
    eied_models_t *models = req->models;
    char sig_path[EIED_CONFIG_STR_MAX + 8];
    snprintf(sig_path, sizeof sig_path, "%s.sig", req->path);
    *signed_out = false;
    if (req->file.sig_size == 0) {
        if (models->cfg->require_signed) {
            eie_error_set(&req->err, EIE_STATUS_PERMISSION_DENIED,
                          "%s: unsigned (require_signed is on and %s is missing)", req->path,
                          sig_path);
            return false;
        }
        return true;
    }
    size_t sig_len = 0;
    uint8_t *sig = read_all(sig_path, SIG_MAX_BYTES, &sig_len, &req->err);
    if (sig == NULL)
        return false;
    bool ok = false;
    for (size_t i = 0; i < models->n_public_keys && !ok; i++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        ok = ctx != NULL &&
             EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, models->public_keys[i]) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, data, len) == 1;
        EVP_MD_CTX_free(ctx);
    }
    free(sig);
    if (ok) {
        *signed_out = true;
        return true;
    }
    if (models->n_public_keys == 0 && !models->cfg->require_signed)
        return true; /* nothing to check against; the signature is informational */
    eie_error_set(&req->err, EIE_STATUS_PERMISSION_DENIED,
                  "%s: signature %s does not verify with any of the %zu configured public keys",
                  req->path, sig_path, models->n_public_keys);
    return false;
}

const char *const eied_version_prop_keys[EIED_VERSION_PROPS] = {
    "description", "backend", "layers",    "fc_layers",  "weights",
    "nonzeros",    "density", "code_bits", "file_bytes", "compression_ratio"};

/* ModelMetadata's properties, worked out once when the version loads. */
static void version_describe(eied_version_t *v)
{
    uint64_t weights = 0, nnz = 0, file_bytes = eie_model_file_bytes(v->model);
    unsigned fc_layers = 0, min_bits = 8, max_bits = 0;
    size_t n_layers = eie_model_layer_count(v->model);
    for (size_t i = 0; i < n_layers; i++) {
        eie_layer_info_t li;
        if (eie_model_layer_info(v->model, i, &li) != EIE_STATUS_OK ||
            (li.kind != EIE_LAYER_FC && li.kind != EIE_LAYER_CONV2D &&
             li.kind != EIE_LAYER_LSTM))
            continue;
        fc_layers += li.kind == EIE_LAYER_FC;
        /* conv weights count once (the matrix), not per output position */
        weights += (uint64_t)li.rows * li.cols;
        nnz += li.nnz;
        if (li.code_bits < min_bits)
            min_bits = li.code_bits;
        if (li.code_bits > max_bits)
            max_bits = li.code_bits;
    }
    snprintf(v->props[0], sizeof v->props[0], "%s", eie_model_description(v->model));
    snprintf(v->props[1], sizeof v->props[1], "%s", eie_engine_backend(v->engine));
    snprintf(v->props[2], sizeof v->props[2], "%zu", n_layers);
    snprintf(v->props[3], sizeof v->props[3], "%u", fc_layers);
    snprintf(v->props[4], sizeof v->props[4], "%" PRIu64, weights);
    snprintf(v->props[5], sizeof v->props[5], "%" PRIu64, nnz);
    snprintf(v->props[6], sizeof v->props[6], "%.6f",
             weights ? (double)nnz / (double)weights : 0.0);
    if (min_bits == max_bits)
        snprintf(v->props[7], sizeof v->props[7], "%u", min_bits);
    else
        snprintf(v->props[7], sizeof v->props[7], "%u-%u", min_bits, max_bits);
    snprintf(v->props[8], sizeof v->props[8], "%" PRIu64, file_bytes);
    snprintf(v->props[9], sizeof v->props[9], "%.2f",
             file_bytes ? (double)weights * 4.0 / (double)file_bytes : 0.0);
}

/*
 * A warm-up proves the net computes before anyone depends on it: one run on
 * zeros (the biases alone) and one on ones (every weight), and every output
 * must be finite. A file can hold finite weights whose products or sums
 * overflow float (a codebook value of 3e38); such a model could only ever
 * answer NaN or infinity, so it does not serve.
 */
static bool warm_up(load_req_t *req, eied_version_t *v)
{
    /* A warm-up run proves the net computes before anyone depends on it: one
     * sample of all zeros, then of all ones, through every input into every
     * output; an output that is not finite means the weights overflow float
     * and the version could only ever answer NaN. */
    size_t n_in = eie_net_input_count(v->net), n_out = eie_net_output_count(v->net);
    uint64_t total = 0;
    for (size_t i = 0; i < n_in; i++)
        total += eie_net_input_elements(v->net, i);
    for (size_t i = 0; i < n_out; i++)
        total += eie_net_output_elements(v->net, i);
    float *buf = calloc(total ? total : 1, sizeof(float));
    float **io = calloc(n_in + n_out, sizeof *io);
    bool ok = buf != NULL && io != NULL;
    if (!ok)
        eie_error_set(&req->err, EIE_STATUS_NO_MEMORY, "out of memory");
    else {
        float *at = buf;
        for (size_t i = 0; i < n_in + n_out; i++) {
            io[i] = at;
            at += i < n_in ? eie_net_input_elements(v->net, i)
                           : eie_net_output_elements(v->net, i - n_in);
        }
    }
    for (int pass = 0; ok && pass < 2; pass++) {
        for (size_t i = 0; i < n_in; i++)
            for (uint64_t e = 0; e < eie_net_input_elements(v->net, i); e++)
                io[i][e] = (float)pass;
        if (eie_net_run_multi(v->net, (const float *const *)io, 1, io + n_in, NULL,
                              &req->err) != EIE_STATUS_OK) {
            eie_error_prefix(&req->err, "%s: warm-up run failed: ", req->path);
            ok = false;
            break;
        }
        for (size_t o = 0; ok && o < n_out; o++) {
            for (uint64_t e = 0; e < eie_net_output_elements(v->net, o); e++) {
                if (!isfinite(io[n_in + o][e])) {
                    eie_error_set(&req->err, EIE_STATUS_BAD_FORMAT,
                                  "%s: warm-up on an input of all %s gave output %zu element "
                                  "%llu = %g: the weights overflow float",
                                  req->path, pass ? "ones" : "zeros", o,
                                  (unsigned long long)e, (double)io[n_in + o][e]);
                    ok = false;
                    break;
                }
            }
        }
    }
    free(buf);
    free(io);
    return ok;
}

/* libuv pool thread: everything that can be done once happens here. */
static void load_work(uv_work_t *work)
{
    load_req_t *req = work->data;
    const eied_config_t *cfg = req->models->cfg;
    uint64_t t0 = eied_now_ns();
    eie_limits_t limits = eie_limits_default();
    eied_file_id_t before, after;
    size_t len = 0;
    uint8_t *data = NULL;
    if (!eied_file_id_read(req->path, &before)) {
        eie_error_set(&req->err, EIE_STATUS_IO, "%s: cannot stat: %s", req->path,
                      strerror(errno));
        return;
    }
    req->file = before;
    data = read_all(req->path, limits.max_file_bytes, &len, &req->err);
    if (data == NULL)
        return;
    /* Only complete files count: one that changed while we read it is retried, not served. */
    if (!eied_file_id_read(req->path, &after) || !same_file(&before, &after) ||
        len != before.size) {
        req->transient = true;
        eie_error_set(&req->err, EIE_STATUS_UNAVAILABLE, "%s: changed while being read; retrying",
                      req->path);
        goto out;
    }
    bool is_signed;
    if (!verify_signature(req, data, len, &is_signed))
        goto out;
    eied_version_t *v = calloc(1, sizeof *v);
    if (v == NULL) {
        eie_error_set(&req->err, EIE_STATUS_NO_MEMORY, "out of memory");
        goto out;
    }
    atomic_init(&v->refs, 1);
    snprintf(v->name, sizeof v->name, "%s", req->name);
    snprintf(v->path, sizeof v->path, "%s", req->path);
    v->version = req->version;
    v->file = before;
    v->engine = req->engine;
    if (eie_model_load_memory(data, len, &limits, &v->model, &req->err) != EIE_STATUS_OK ||
        eie_net_init(v->engine, v->model, &v->net, &req->err) != EIE_STATUS_OK) {
        eie_error_prefix(&req->err, "%s: ", req->path);
        version_free(v);
        goto out;
    }
    /* With several backends in use, the version is prepared on each, so a request can pick. */
    for (size_t e = 0; e < req->models->n_engines; e++) {
        eie_engine_t *engine = req->models->engines[e];
        if (engine == v->engine)
            continue;
        if (eie_net_init(engine, v->model, &v->alt_nets[v->n_alt], &req->err) != EIE_STATUS_OK) {
            eie_error_prefix(&req->err, "%s: on backend %s: ", req->path,
                             eie_engine_backend(engine));
            version_free(v);
            goto out;
        }
        v->alt_engines[v->n_alt++] = engine;
    }
    if (cfg->warmup && !warm_up(req, v)) {
        version_free(v);
        goto out;
    }
    v->bytes = eie_net_layout_bytes(v->net) + len;
    for (size_t i = 0; i < v->n_alt; i++)
        v->bytes += eie_net_layout_bytes(v->alt_nets[i]);
    v->load_seconds = (double)(eied_now_ns() - t0) / 1e9;
    version_describe(v);
    req->result = v;
out:
    free(data);
}

static void insert_version(eied_models_t *models, eied_model_t *m, eied_version_t *v)
{
    /* a reload of the same version number replaces it */
    for (size_t i = 0; i < m->n_versions; i++) {
        if (m->versions[i]->version == v->version) {
            models->bytes_published -= m->versions[i]->bytes;
            eied_version_unref(m->versions[i]);
            m->versions[i] = v;
            models->bytes_published += v->bytes;
            return;
        }
    }
    if (m->n_versions == EIED_MAX_VERSIONS) { /* the policy keeps fewer; drop the oldest */
        models->bytes_published -= m->versions[0]->bytes;
        eied_version_unref(m->versions[0]);
        memmove(&m->versions[0], &m->versions[1], (EIED_MAX_VERSIONS - 1) * sizeof(void *));
        m->n_versions--;
    }
    size_t i = m->n_versions;
    while (i > 0 && m->versions[i - 1]->version > v->version) {
        m->versions[i] = m->versions[i - 1];
        i--;
    }
    m->versions[i] = v;
    m->n_versions++;
    models->bytes_published += v->bytes;
}

static bool is_desired(const eied_model_t *m, uint64_t version)
{
    for (size_t i = 0; i < m->n_desired; i++)
        if (m->desired[i] == version)
            return true;
    return false;
}

/* Bytes the publication of v frees: the version it replaces and those the policy drops. */
static uint64_t bytes_retired_by(const eied_model_t *m, const eied_version_t *v)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < m->n_versions; i++) {
        const eied_version_t *old = m->versions[i];
        if (old->version == v->version || (m->from_repo && !is_desired(m, old->version)) ||
            (!m->from_repo))
            bytes += old->bytes;
    }
    return bytes;
}

/* Copies text into out (of size len), each occurrence of needle replaced by with. */
static void replace_all(char *out, size_t len, const char *text, const char *needle,
                        const char *with)
{
    size_t o = 0, nlen = strlen(needle), wlen = strlen(with);
    while (*text != '\0' && o + 1 < len) {
        if (nlen > 0 && strncmp(text, needle, nlen) == 0) {
            size_t n = wlen < len - 1 - o ? wlen : len - 1 - o;
            memcpy(out + o, with, n);
            o += n;
            text += nlen;
        } else {
            out[o++] = *text++;
        }
    }
    out[o] = '\0';
}

static void load_done(uv_work_t *work, int status)
{
    load_req_t *req = work->data;
    eied_models_t *models = req->models;
    eied_model_t *m = eied_models_find(models, req->name);
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)req->version);
    models->loads_pending--;
    if (m != NULL) {
        for (size_t i = 0; i < m->n_loading; i++)
            if (m->loading[i] == req->version) {
                m->loading[i] = m->loading[--m->n_loading];
                break;
            }
    }
    const char *why = status != 0 ? "load cancelled" : req->err.msg;
    uint64_t budget = models->cfg->memory_budget;
    if (req->result != NULL && m != NULL && m->state == EIED_MODEL_UNLOADED) {
        why = "unloaded while loading";
        eied_version_unref(req->result);
        req->result = NULL;
    } else if (req->result != NULL && m != NULL && budget > 0 &&
               models->bytes_published - bytes_retired_by(m, req->result) + req->result->bytes >
                   budget) {
        snprintf(req->err.msg, sizeof req->err.msg,
                 "%s: needs %llu bytes; %llu of the memory_budget %llu are in use", req->path,
                 (unsigned long long)req->result->bytes,
                 (unsigned long long)models->bytes_published, (unsigned long long)budget);
        why = req->err.msg;
        eied_version_unref(req->result);
        req->result = NULL;
    }
    if (req->result == NULL || status != 0 || m == NULL) {
        eied_log(req->transient ? EIED_LOG_WARN : EIED_LOG_ERROR, "model load failed", "model",
                 req->name, "version", num, "path", req->path, "error", why, NULL);
        if (m != NULL && !req->transient) {
            atomic_fetch_add(&models->load_failures, 1);
            /* clients read the reason (RepositoryIndex, ModelInfer's UNAVAILABLE): it names
               the model and version, never where the file lives; the log has the path */
            char file[EIED_MODEL_NAME_MAX + 64];
            snprintf(file, sizeof file, "%s/%s/model.eie", m->name, num);
            snprintf(m->reason, sizeof m->reason, "version %s: ", num);
            const char *base = strrchr(req->path, '/');
            replace_all(m->reason + strlen(m->reason), sizeof m->reason - strlen(m->reason), why,
                        req->path, m->from_repo ? file : base != NULL ? base + 1 : req->path);
            remember_failure(m, req->version, &req->file, m->reason);
        }
        if (m != NULL)
            update_state(m); /* a serving version stays untouched */
        eied_version_unref(req->result);
        /* The policy looks again: an older version that loads serves instead. */
        if (m != NULL && m->from_repo && !req->transient)
            eied_repository_rescan(models->srv);
    } else {
        /* Publish: requests route on this thread, so this store is the atomic swap; the
           versions it retires live on until their last request finishes. */
        insert_version(models, m, req->result);
        forget_failure(m, req->version);
        atomic_fetch_add(&models->loads_ok, 1);
        m->reason[0] = '\0';
        char secs[32], bytes[32];
        snprintf(secs, sizeof secs, "%.3f", req->result->load_seconds);
        snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)req->result->bytes);
        eied_log(EIED_LOG_INFO, "version published", "model", m->name, "version", num, "path",
                 req->path, "load_seconds", secs, "bytes", bytes, NULL);
        /* the policy decides what else still serves */
        for (size_t i = m->n_versions; i-- > 0;) {
            uint64_t ver = m->versions[i]->version;
            if (ver != req->version && (m->from_repo ? !is_desired(m, ver) : true))
                eied_models_retire(models, m, ver);
        }
        update_state(m);
    }
    free(req);
    if (models->on_load_done != NULL)
        models->on_load_done(models->srv);
}

static bool start_load(eied_models_t *models, eied_model_t *m, uint64_t version,
                       const char *path, char *why, size_t why_len)
{
    if (eied_model_is_loading(m, version)) {
        snprintf(why, why_len, "model '%s' version %llu is already loading", m->name,
                 (unsigned long long)version);
        return false;
    }
    if (m->n_loading == EIED_MAX_VERSIONS) {
        snprintf(why, why_len, "model '%s': too many loads in flight", m->name);
        return false;
    }
    load_req_t *req = calloc(1, sizeof *req);
    if (req == NULL) {
        snprintf(why, why_len, "out of memory");
        return false;
    }
    req->models = models;
    req->work.data = req;
    req->version = version;
    req->from_repo = m->from_repo;
    req->engine = eied_models_engine_for(models, m->name);
    snprintf(req->name, sizeof req->name, "%s", m->name);
    snprintf(req->path, sizeof req->path, "%s", path);
    int rc = uv_queue_work(models->srv->loop, &req->work, load_work, load_done);
    if (rc != 0) {
        snprintf(why, why_len, "cannot queue the load: %s", uv_strerror(rc));
        free(req);
        return false;
    }
    m->loading[m->n_loading++] = version;
    models->loads_pending++;
    if (m->state == EIED_MODEL_UNLOADED || m->current == NULL)
        m->state = EIED_MODEL_LOADING;
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)version);
    eied_log(EIED_LOG_INFO, "loading model", "model", m->name, "version", num, "path", path,
             NULL);
    return true;
}

bool eied_models_reload(eied_models_t *models, eied_model_t *m, char *why, size_t why_len)
{
    uint64_t next = m->current != NULL ? m->current->version + 1 : 1;
    if (m->n_loading > 0) {
        snprintf(why, why_len, "model '%s' is already loading", m->name);
        return false;
    }
    return start_load(models, m, next, m->path, why, why_len);
}

bool eied_models_load_version(eied_models_t *models, eied_model_t *m, uint64_t version,
                              const char *path, const eied_file_id_t *file, char *why,
                              size_t why_len)
{
    (void)file; /* the loader reads the identity again, before and after reading */
    if (models->cfg->load_mode == EIED_LOAD_RESOURCE) {
        /* resource-preserving: retire what the policy no longer wants before loading */
        for (size_t i = m->n_versions; i-- > 0;)
            if (!is_desired(m, m->versions[i]->version) || m->versions[i]->version == version)
                eied_models_retire(models, m, m->versions[i]->version);
    }
    return start_load(models, m, version, path, why, why_len);
}

void eied_models_load_configured(eied_models_t *models, const eied_config_t *cfg)
{
    char why[EIED_REASON_MAX];
    for (size_t i = 0; i < cfg->n_models; i++) {
        eied_model_t *m = eied_models_get(models, cfg->models[i].name, true);
        if (m == NULL)
            continue;
        snprintf(m->path, sizeof m->path, "%s", cfg->models[i].path);
        if (!eied_models_reload(models, m, why, sizeof why))
            eied_log(EIED_LOG_ERROR, "cannot load model", "model", m->name, "error", why, NULL);
    }
}
