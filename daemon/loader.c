/*
 * The loader: engine start-up, and loading a model version in the
 * background (file read, signature check, checksum, Huffman decode, per-PE
 * layout, warm-up run) on a libuv pool thread, then publication into the
 * registry on the loop under the memory budget; see loader.h.
 */
#include "loader.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "eie/file.h"
#include "log.h"

static bool read_public_keys(eied_loader_t *loader, const char *list)
{
    char buf[EIED_CONFIG_STR_MAX];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *path = strtok_r(buf, ",", &save); path != NULL; path = strtok_r(NULL, ",", &save)) {
        while (*path == ' ')
            path++;
        if (*path == '\0')
            continue;
        if (loader->n_public_keys == sizeof loader->public_keys / sizeof loader->public_keys[0]) {
            eied_log(EIED_LOG_ERROR, "too many public keys (at most 8)", NULL);
            return false;
        }
        eie_error_t err;
        eie_pubkey_t *key;
        if (eie_pubkey_read(path, &key, &err) != EIE_STATUS_OK) {
            eied_log(EIED_LOG_ERROR, "public_keys: not an Ed25519 public key in PEM", "path", path,
                     "error", err.msg, NULL);
            return false;
        }
        loader->public_keys[loader->n_public_keys++] = key;
    }
    return true;
}

eied_loader_t *eied_loader_create(uv_loop_t *loop, const eied_config_t *cfg,
                                  eied_models_t *models)
{
    eied_loader_t *loader = calloc(1, sizeof *loader);
    if (loader == NULL)
        return NULL;
    loader->loop = loop;
    loader->cfg = cfg;
    loader->models = models;
    if (!read_public_keys(loader, cfg->public_keys))
        goto error;
    if (cfg->require_signed && loader->n_public_keys == 0) {
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
        for (size_t e = 0; e < loader->n_engines; e++)
            have |= strcmp(eie_engine_backend(loader->engines[e]), wanted[w]) == 0;
        if (have)
            continue;
        if (loader->n_engines == sizeof loader->engines / sizeof loader->engines[0]) {
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
        opts.sim_act_regs = (unsigned)cfg->sim_act_regs;
        eie_error_t err;
        eie_engine_t *engine;
        /* [engine.<backend>] last: a backend's own options win over the old flat keys */
        if (eied_config_backend_opts(cfg, &opts, &err) != EIE_STATUS_OK ||
            eie_engine_init(&opts, &engine, &err) != EIE_STATUS_OK) {
            eied_log(EIED_LOG_ERROR, "cannot start the engine", "backend", wanted[w], "error",
                     err.msg, NULL);
            goto error;
        }
        loader->engines[loader->n_engines++] = engine;
        char pes[16];
        snprintf(pes, sizeof pes, "%u", eie_engine_pes(engine));
        eied_log(EIED_LOG_INFO, "engine started", "backend", eie_engine_backend(engine), "pes", pes,
                 "settings", eie_engine_describe(engine), NULL);
    }
    return loader;
error:
    eied_loader_free(loader);
    return NULL;
}

void eied_loader_free(eied_loader_t *loader)
{
    if (loader == NULL)
        return;
    for (size_t i = 0; i < loader->n_public_keys; i++)
        eie_pubkey_free(loader->public_keys[i]);
    for (size_t e = 0; e < loader->n_engines; e++)
        eie_engine_free(loader->engines[e]);
    free(loader);
}

eie_engine_t *eied_loader_engine_for(eied_loader_t *loader, const char *name)
{
    const eied_config_t *cfg = loader->cfg;
    for (size_t i = 0; i < cfg->n_model_backends; i++) {
        if (strcmp(cfg->model_backends[i].name, name) != 0)
            continue;
        for (size_t e = 0; e < loader->n_engines; e++)
            if (strcmp(eie_engine_backend(loader->engines[e]), cfg->model_backends[i].path) == 0)
                return loader->engines[e];
    }
    return loader->engines[0];
}

typedef struct load_req {
    uv_work_t work;
    eied_loader_t *loader;
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
    eied_loader_t *loader = req->loader;
    const eied_config_t *cfg = loader->cfg;
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
    if (eie_file_read(req->path, limits.max_file_bytes, &data, &len, &req->err) != EIE_STATUS_OK)
        return;
    /* Only complete files count: one that changed while we read it is retried, not served. */
    if (!eied_file_id_read(req->path, &after) || !eied_file_id_same(&before, &after) ||
        len != before.size) {
        req->transient = true;
        eie_error_set(&req->err, EIE_STATUS_UNAVAILABLE, "%s: changed while being read; retrying",
                      req->path);
        goto out;
    }
    /* Ed25519 over the whole file, against each configured key */
    bool is_signed;
    if (eie_model_signature_check(req->path, NULL, data, len,
                                  (const eie_pubkey_t *const *)loader->public_keys,
                                  loader->n_public_keys, cfg->require_signed, &is_signed,
                                  &req->err) != EIE_STATUS_OK)
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
        eied_version_unref(v);
        goto out;
    }
    /* With several backends in use, the version is prepared on each, so a request can pick. */
    for (size_t e = 0; e < loader->n_engines; e++) {
        eie_engine_t *engine = loader->engines[e];
        if (engine == v->engine)
            continue;
        if (eie_net_init(engine, v->model, &v->alt_nets[v->n_alt], &req->err) != EIE_STATUS_OK) {
            eie_error_prefix(&req->err, "%s: on backend %s: ", req->path,
                             eie_engine_backend(engine));
            eied_version_unref(v);
            goto out;
        }
        v->alt_engines[v->n_alt++] = engine;
    }
    if (cfg->warmup && !warm_up(req, v)) {
        eied_version_unref(v);
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
    eied_loader_t *loader = req->loader;
    eied_models_t *models = loader->models;
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
    uint64_t budget = loader->cfg->memory_budget;
    if (req->result != NULL && m != NULL && m->state == EIED_MODEL_UNLOADED) {
        why = "unloaded while loading";
        eied_version_unref(req->result);
        req->result = NULL;
    } else if (req->result != NULL && m != NULL && budget > 0 &&
               models->bytes_published - eied_model_bytes_retired_by(m, req->result) + req->result->bytes >
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
            eied_model_remember_failure(m, req->version, &req->file, m->reason);
        }
        if (m != NULL)
            eied_model_update_state(m); /* a serving version stays untouched */
        eied_version_unref(req->result);
        /* The policy looks again: an older version that loads serves instead. */
        if (m != NULL && m->from_repo && !req->transient && loader->on_repo_load_failed != NULL)
            loader->on_repo_load_failed(loader->hooks_ctx);
    } else {
        /* Publish: requests route on this thread, so this store is the atomic swap; the
           versions it retires live on until their last request finishes. */
        eied_models_insert_version(models, m, req->result);
        eied_model_forget_failure(m, req->version);
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
            if (ver != req->version && (m->from_repo ? !eied_model_is_desired(m, ver) : true))
                eied_models_retire(models, m, ver);
        }
        eied_model_update_state(m);
    }
    free(req);
    if (loader->on_load_done != NULL)
        loader->on_load_done(loader->hooks_ctx);
}

/* Every refusal here is UNAVAILABLE: the same request can succeed a little later. */
static eie_status_t start_load(eied_loader_t *loader, eied_model_t *m, uint64_t version,
                               const char *path, eie_error_t *err)
{
    if (eied_model_is_loading(m, version))
        return eie_error_set(err, EIE_STATUS_UNAVAILABLE,
                             "model '%s' version %llu is already loading", m->name,
                             (unsigned long long)version);
    if (m->n_loading == EIED_MAX_VERSIONS)
        return eie_error_set(err, EIE_STATUS_UNAVAILABLE, "model '%s': too many loads in flight",
                             m->name);
    load_req_t *req = calloc(1, sizeof *req);
    if (req == NULL)
        return eie_error_set(err, EIE_STATUS_UNAVAILABLE, "out of memory");
    req->loader = loader;
    req->work.data = req;
    req->version = version;
    req->from_repo = m->from_repo;
    req->engine = eied_loader_engine_for(loader, m->name);
    snprintf(req->name, sizeof req->name, "%s", m->name);
    snprintf(req->path, sizeof req->path, "%s", path);
    int rc = uv_queue_work(loader->loop, &req->work, load_work, load_done);
    if (rc != 0) {
        free(req);
        return eie_error_set(err, EIE_STATUS_UNAVAILABLE, "cannot queue the load: %s",
                             uv_strerror(rc));
    }
    m->loading[m->n_loading++] = version;
    loader->models->loads_pending++;
    if (m->state == EIED_MODEL_UNLOADED || m->current == NULL)
        m->state = EIED_MODEL_LOADING;
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)version);
    eied_log(EIED_LOG_INFO, "loading model", "model", m->name, "version", num, "path", path,
             NULL);
    return EIE_STATUS_OK;
}

eie_status_t eied_loader_reload(eied_loader_t *loader, eied_model_t *m, eie_error_t *err)
{
    uint64_t next = m->current != NULL ? m->current->version + 1 : 1;
    if (m->n_loading > 0)
        return eie_error_set(err, EIE_STATUS_UNAVAILABLE, "model '%s' is already loading",
                             m->name);
    return start_load(loader, m, next, m->path, err);
}

eie_status_t eied_loader_load_version(eied_loader_t *loader, eied_model_t *m, uint64_t version,
                                      const char *path, const eied_file_id_t *file,
                                      eie_error_t *err)
{
    (void)file; /* the loader reads the identity again, before and after reading */
    if (loader->cfg->load_mode == EIED_LOAD_RESOURCE) {
        /* resource-preserving: retire what the policy no longer wants before loading */
        for (size_t i = m->n_versions; i-- > 0;)
            if (!eied_model_is_desired(m, m->versions[i]->version) || m->versions[i]->version == version)
                eied_models_retire(loader->models, m, m->versions[i]->version);
    }
    return start_load(loader, m, version, path, err);
}

void eied_loader_load_configured(eied_loader_t *loader)
{
    const eied_config_t *cfg = loader->cfg;
    eie_error_t err;
    for (size_t i = 0; i < cfg->n_models; i++) {
        eied_model_t *m = eied_models_get(loader->models, cfg->models[i].name, true);
        if (m == NULL)
            continue;
        snprintf(m->path, sizeof m->path, "%s", cfg->models[i].path);
        if (eied_loader_reload(loader, m, &err) != EIE_STATUS_OK)
            eied_log(EIED_LOG_ERROR, "cannot load model", "model", m->name, "error", err.msg,
                     NULL);
    }
}
