/* The model registry: names, published versions, failures, the memory account; see
   models.h. Loading is loader.c's. */
#include "models.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "clock.h"
#include "log.h"

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

eied_models_t *eied_models_create(const eied_config_t *cfg)
{
    eied_models_t *models = calloc(1, sizeof *models);
    if (models == NULL)
        return NULL;
    models->cfg = cfg;
    return models;
}

void eied_models_free(eied_models_t *models)
{
    if (models == NULL)
        return;
    for (eied_model_t *m = models->head, *next; m != NULL; m = next) {
        next = m->next;
        for (size_t i = 0; i < m->n_versions; i++)
            eied_version_unref(m->versions[i]);
        free(m);
    }
    free(models);
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
    atomic_init(&m->queued, 0);
    m->state = EIED_MODEL_LOADING;
    m->next = models->head;
    models->head = m;
    return m;
}

void eied_models_forget(eied_models_t *models, eied_model_t *m)
{
    if (m->n_versions > 0 || m->n_loading > 0 || m->batch_queue != NULL ||
        atomic_load(&m->queued) > 0)
        return; /* requests still hold it: the next scan tries again */
    for (eied_model_t **p = &models->head; *p != NULL; p = &(*p)->next) {
        if (*p == m) {
            *p = m->next;
            break;
        }
    }
    eied_log(EIED_LOG_INFO, "model forgotten (removed from the repository)", "model", m->name,
             NULL);
    free(m);
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

bool eied_file_id_same(const eied_file_id_t *a, const eied_file_id_t *b)
{
    return a->size == b->size && a->mtime_ns == b->mtime_ns && a->ino == b->ino &&
           a->sig_size == b->sig_size && a->sig_mtime_ns == b->sig_mtime_ns &&
           a->mode == b->mode;
}

bool eied_model_failed_before(const eied_model_t *model, uint64_t version,
                              const eied_file_id_t *file)
{
    for (size_t i = 0; i < model->n_failed; i++)
        if (model->failed[i].version == version && eied_file_id_same(&model->failed[i].file, file))
            return true;
    return false;
}

void eied_model_remember_failure(eied_model_t *m, uint64_t version, const eied_file_id_t *file,
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

void eied_model_forget_failure(eied_model_t *m, uint64_t version)
{
    for (size_t i = 0; i < m->n_failed; i++) {
        if (m->failed[i].version == version) {
            m->failed[i] = m->failed[--m->n_failed];
            return;
        }
    }
}

void eied_model_update_state(eied_model_t *m)
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
    eied_model_update_state(m);
}

eie_status_t eied_models_unload(eied_models_t *models, const char *name, eie_error_t *err)
{
    eied_model_t *m = eied_models_find(models, name);
    if (m == NULL || m->state == EIED_MODEL_UNLOADED)
        return eie_error_set(err, EIE_STATUS_NOT_FOUND, "model '%s' is not loaded", name);
    eied_models_retire(models, m, 0);
    m->n_desired = 0;
    m->state = EIED_MODEL_UNLOADED;
    snprintf(m->reason, sizeof m->reason, "unloaded");
    eied_log(EIED_LOG_INFO, "model unloaded", "model", name, NULL);
    return EIE_STATUS_OK;
}

/* ---- files and publication ------------------------------------------------------ */

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

void eied_models_insert_version(eied_models_t *models, eied_model_t *m, eied_version_t *v)
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

bool eied_model_is_desired(const eied_model_t *m, uint64_t version)
{
    for (size_t i = 0; i < m->n_desired; i++)
        if (m->desired[i] == version)
            return true;
    return false;
}

/* Bytes the publication of v frees: the version it replaces and those the policy drops. */
uint64_t eied_model_bytes_retired_by(const eied_model_t *m, const eied_version_t *v)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < m->n_versions; i++) {
        const eied_version_t *old = m->versions[i];
        if (old->version == v->version || (m->from_repo && !eied_model_is_desired(m, old->version)) ||
            (!m->from_repo))
            bytes += old->bytes;
    }
    return bytes;
}

