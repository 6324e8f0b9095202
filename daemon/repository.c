/* The model repository: scanning, watching, version policies; see repository.h. */
#include "repository.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "log.h"
#include "models.h"

#define RESCAN_DEBOUNCE_MS 50
/* A repository folder with more entries than this is not read further (scan memory). */
#define SCAN_MAX_ENTRIES 65536



typedef struct scan_version {
    uint64_t version;
    eied_file_id_t file;
} scan_version_t;

typedef struct scan_model {
    char name[EIED_MODEL_NAME_MAX];
    scan_version_t *versions; /* the newest max_versions, unsorted */
    size_t n_versions, cap_versions;
    size_t n_ignored;     /* version folders beyond max_versions */
    uint64_t newest_ignored;
    int error;            /* errno when the folder could not be read: not a deletion */
} scan_model_t;

typedef struct scan {
    uv_work_t work;
    eied_repository_t *repo;
    char root[EIED_CONFIG_STR_MAX];
    size_t max_versions;
    bool follow_symlinks;
    scan_model_t *models;
    size_t n_models, cap_models;
    bool truncated; /* SCAN_MAX_ENTRIES reached: nothing is taken as deleted */
    char error[512];
} scan_t;

struct eied_repository {
    uv_loop_t *loop;
    const eied_config_t *cfg;
    eied_models_t *models;
    eied_loader_t *loader;
    void (*on_scanned)(void *ctx); /* after each scan: readiness may change */
    void *ctx;
    uv_timer_t poll_timer, debounce_timer;
    uv_fs_event_t root_watch;
    struct watch {
        uv_fs_event_t ev;
        char name[EIED_MODEL_NAME_MAX];
        bool active;
    } *model_watch; /* max_models of them */
    size_t n_watch;
    bool scanning, rescan_wanted, started, first_scan_done;
    /* explicit mode: models loaded by request (the others stay out) */
    char (*explicit_models)[EIED_MODEL_NAME_MAX]; /* max_models of them */
    size_t n_explicit;
    uint64_t refused; /* model folders over max_models in the last scan */
};

uint64_t eied_repository_refused(const eied_repository_t *r)
{
    return r != NULL ? r->refused : 0;
}

static bool valid_model_name(const char *name)
{
    if (name[0] == '\0' || name[0] == '.' || strlen(name) >= EIED_MODEL_NAME_MAX)
        return false;
    size_t n = strlen(name);
    if ((n > 4 && strcmp(name + n - 4, ".tmp") == 0) ||
        (n > 8 && strcmp(name + n - 8, ".partial") == 0))
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
            return false;
    return true;
}

/* A version folder is a positive integer without leading zeros: "1", "42". */
static bool parse_version(const char *name, uint64_t *v)
{
    if (name[0] < '1' || name[0] > '9' || strlen(name) > 18)
        return false;
    for (const char *p = name; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    *v = strtoull(name, NULL, 10);
    return true;
}

/* ---- pool thread: read the directories ------------------------------------------ */

/* Keeps the newest max_versions versions: "latest N" must see the newest ones. */
static void keep_version(scan_t *s, scan_model_t *m, uint64_t v, const eied_file_id_t *file)
{
    if (m->n_versions == s->max_versions) {
        size_t oldest = 0;
        for (size_t i = 1; i < m->n_versions; i++)
            if (m->versions[i].version < m->versions[oldest].version)
                oldest = i;
        m->n_ignored++;
        uint64_t dropped = m->versions[oldest].version;
        if (dropped > v) {
            dropped = v;
        } else {
            m->versions[oldest].version = v;
            m->versions[oldest].file = *file;
        }
        if (dropped > m->newest_ignored)
            m->newest_ignored = dropped;
        return;
    }
    if (m->n_versions == m->cap_versions) {
        size_t cap = m->cap_versions ? m->cap_versions * 2 : 4;
        scan_version_t *grown = realloc(m->versions, cap * sizeof *grown);
        if (grown == NULL)
            return;
        m->versions = grown;
        m->cap_versions = cap;
    }
    m->versions[m->n_versions].version = v;
    m->versions[m->n_versions].file = *file;
    m->n_versions++;
}

/* True if path, resolved, stays inside root (also resolved). */
static bool inside(const char *root, const char *path)
{
    char rroot[PATH_MAX], rpath[PATH_MAX];
    if (realpath(root, rroot) == NULL || realpath(path, rpath) == NULL)
        return false;
    size_t n = strlen(rroot);
    return strncmp(rroot, rpath, n) == 0 && (rpath[n] == '/' || rpath[n] == '\0');
}

static void scan_model_dir(scan_t *s, const char *name)
{
    char dir[EIED_CONFIG_STR_MAX + EIED_MODEL_NAME_MAX + 2];
    snprintf(dir, sizeof dir, "%s/%s", s->root, name);
    if (s->n_models == s->cap_models) {
        size_t cap = s->cap_models ? s->cap_models * 2 : 64;
        scan_model_t *grown = realloc(s->models, cap * sizeof *grown);
        if (grown == NULL) {
            s->truncated = true;
            return;
        }
        s->models = grown;
        s->cap_models = cap;
    }
    scan_model_t *m = &s->models[s->n_models++];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    DIR *d = opendir(dir);
    if (d == NULL) {
        m->error = errno != 0 ? errno : EIO;
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        uint64_t v;
        if (!parse_version(e->d_name, &v)) {
            if (e->d_name[0] != '.')
                eied_log(EIED_LOG_DEBUG, "repository: ignoring entry (versions are positive "
                                         "integers)",
                         "model", name, "entry", e->d_name, NULL);
            continue;
        }
        char path[sizeof dir + 64];
        snprintf(path, sizeof path, "%s/%s/model.eie", dir, e->d_name);
        eied_file_id_t file;
        if (!eied_file_id_read(path, &file))
            continue; /* no complete model.eie (yet): not a version */
        if (!s->follow_symlinks && !inside(s->root, path)) {
            eied_log(EIED_LOG_ERROR,
                     "repository: refusing a version that leads out of the repository "
                     "(repository.follow_symlinks = true allows it)",
                     "model", name, "version", e->d_name, NULL);
            continue;
        }
        keep_version(s, m, v, &file);
    }
    closedir(d);
}

static void scan_work(uv_work_t *work)
{
    scan_t *s = work->data;
    DIR *d = opendir(s->root);
    if (d == NULL) {
        snprintf(s->error, sizeof s->error, "%s: cannot open: %s", s->root, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (s->n_models == SCAN_MAX_ENTRIES) {
            s->truncated = true;
            break;
        }
        if (!valid_model_name(e->d_name)) {
            eied_log(EIED_LOG_INFO, "repository: ignoring entry (not a model name)", "entry",
                     e->d_name, NULL);
            continue;
        }
        char path[EIED_CONFIG_STR_MAX + 300];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", s->root, e->d_name);
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            scan_model_dir(s, e->d_name);
    }
    closedir(d);
}

/* ---- loop thread: decide ------------------------------------------------------------ */

static const eied_policy_t *policy_for(const eied_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_policies; i++)
        if (strcmp(cfg->policies[i].model, name) == 0)
            return &cfg->policies[i].policy;
    return &cfg->version_policy;
}

static int cmp_version_desc(const void *a, const void *b)
{
    uint64_t x = ((const scan_version_t *)a)->version, y = ((const scan_version_t *)b)->version;
    return x < y ? 1 : x > y ? -1 : 0;
}

static bool explicitly_loaded(eied_repository_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_explicit; i++)
        if (strcmp(r->explicit_models[i], name) == 0)
            return true;
    return false;
}

/* Brings one model in line with what is on disk and what its policy wants. */
static void apply_model(eied_repository_t *r, const scan_model_t *sm)
{
    eied_models_t *models = r->models;
    const eied_config_t *cfg = r->cfg;
    eied_model_t *m = eied_models_get(models, sm->name, true);
    if (m == NULL)
        return;
    m->from_repo = true;
    snprintf(m->path, sizeof m->path, "%s/%s", cfg->repository, sm->name);
    if (m->state == EIED_MODEL_UNLOADED && cfg->control_mode == EIED_CONTROL_EXPLICIT &&
        !explicitly_loaded(r, sm->name))
        return;

    if (sm->n_ignored > 0) {
        char n[32], newest[32], limit[32];
        snprintf(n, sizeof n, "%zu", sm->n_ignored);
        snprintf(newest, sizeof newest, "%llu", (unsigned long long)sm->newest_ignored);
        snprintf(limit, sizeof limit, "%llu", (unsigned long long)cfg->max_versions);
        eied_log(EIED_LOG_ERROR,
                 "repository: more version folders than repository.max_versions; the oldest "
                 "are ignored",
                 "model", sm->name, "ignored", n, "newest_ignored", newest, "max_versions", limit,
                 NULL);
    }
    scan_version_t *sorted = sm->versions; /* the scan's own copy: sorting it is fine */
    if (sm->n_versions > 0) /* a model whose every version was refused has no array */
        qsort(sorted, sm->n_versions, sizeof sorted[0], cmp_version_desc);
    const eied_policy_t *p = policy_for(cfg, sm->name);
    m->n_desired = 0;
    for (size_t i = 0; i < sm->n_versions && m->n_desired < EIED_MAX_VERSIONS; i++) {
        /* "latest N" means the newest N that load: one that failed (and has not changed
           since) does not hide an older good one, at start as at run time. */
        bool want = p->kind == EIED_POLICY_ALL ||
                    (p->kind == EIED_POLICY_LATEST && m->n_desired < p->count &&
                     !(eied_model_failed_before(m, sorted[i].version, &sorted[i].file) &&
                       eied_model_version(m, sorted[i].version) == NULL));
        for (size_t k = 0; p->kind == EIED_POLICY_SPECIFIC && k < p->n_versions; k++)
            if (p->versions[k] == sorted[i].version)
                want = true;
        if (want)
            m->desired[m->n_desired++] = sorted[i].version;
    }
    if (m->state == EIED_MODEL_UNLOADED)
        m->state = EIED_MODEL_LOADING;

    bool any_desired_serving = false;
    for (size_t i = 0; i < sm->n_versions; i++) {
        const scan_version_t *sv = &sorted[i];
        bool desired = false;
        for (size_t k = 0; k < m->n_desired; k++)
            desired |= m->desired[k] == sv->version;
        if (!desired)
            continue;
        eied_version_t *v = eied_model_version(m, sv->version);
        bool changed = v != NULL && memcmp(&v->file, &sv->file, sizeof sv->file) != 0;
        if (v != NULL && !changed) {
            any_desired_serving = true;
            continue;
        }
        if (v != NULL)
            any_desired_serving = true; /* the old bytes serve until the new ones are ready */
        if (eied_model_is_loading(m, sv->version) ||
            eied_model_failed_before(m, sv->version, &sv->file))
            continue;
        char path[EIED_CONFIG_STR_MAX + 300];
        eie_error_t err;
        snprintf(path, sizeof path, "%s/%llu/model.eie", m->path,
                 (unsigned long long)sv->version);
        if (eied_loader_load_version(r->loader, m, sv->version, path, &sv->file, &err) !=
            EIE_STATUS_OK)
            eied_log(EIED_LOG_ERROR, "repository: cannot load", "model", m->name, "error",
                     err.msg, NULL);
    }
    /* Availability first: versions the policy dropped go once a wanted one serves. */
    if (any_desired_serving || m->n_desired == 0) {
        for (size_t i = m->n_versions; i-- > 0;) {
            uint64_t ver = m->versions[i]->version;
            bool desired = false;
            for (size_t k = 0; k < m->n_desired; k++)
                desired |= m->desired[k] == ver;
            if (!desired && !(m->n_desired == 0 && eied_model_is_loading(m, ver)))
                eied_models_retire(models, m, ver);
        }
    }
    if (m->n_versions == 0 && m->n_loading == 0 && m->n_desired == 0) {
        if (sm->n_versions == 0)
            snprintf(m->reason, sizeof m->reason, "no version folder with a model.eie in '%s'",
                     m->name);
        m->state = EIED_MODEL_UNAVAILABLE; /* else the reason of the last failure stays */
    }
}

static void watch_model_dirs(eied_repository_t *r, const scan_t *s);

/* A model the registry already serves from the repository (it keeps its place). */
static bool known_model(eied_repository_t *r, const char *name)
{
    eied_model_t *m = eied_models_find(r->models, name);
    return m != NULL && m->from_repo && m->state != EIED_MODEL_UNLOADED;
}

/* A folder that could not be read is an error to report, never a deletion. */
static void report_unreadable(eied_repository_t *r, const scan_model_t *sm)
{
    eied_model_t *m = eied_models_find(r->models, sm->name);
    eied_log(EIED_LOG_ERROR, "repository: cannot read a model folder; what serves stays",
             "model", sm->name, "error", strerror(sm->error), NULL);
    if (m == NULL) {
        /* Unreadable from the first scan on: a row in RepositoryIndex says
         * so, and the next scan that can read the folder loads it. */
        m = eied_models_get(r->models, sm->name, true);
        if (m == NULL)
            return;
        m->from_repo = true;
        m->state = EIED_MODEL_UNAVAILABLE;
        snprintf(m->path, sizeof m->path, "%s/%s", r->cfg->repository, sm->name);
    }
    if (m->from_repo)
        snprintf(m->reason, sizeof m->reason, "model folder '%s' cannot be read: %s", sm->name,
                 strerror(sm->error));
}

static void apply_scan(eied_repository_t *r, scan_t *s)
{
    const eied_config_t *cfg = r->cfg;
    bool follow = cfg->control_mode != EIED_CONTROL_EXPLICIT;
    /* Models already served keep their place; new ones fill what max_models leaves. */
    size_t served = 0;
    for (size_t i = 0; i < s->n_models; i++)
        served += known_model(r, s->models[i].name);
    uint64_t refused = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < s->n_models; i++) {
            scan_model_t *sm = &s->models[i];
            bool known = known_model(r, sm->name);
            if ((pass == 0) != known || !(follow || explicitly_loaded(r, sm->name)))
                continue;
            if (sm->error != 0) {
                report_unreadable(r, sm);
                continue;
            }
            if (!known) {
                if (served >= cfg->max_models) {
                    char limit[32];
                    snprintf(limit, sizeof limit, "%llu", (unsigned long long)cfg->max_models);
                    eied_log(EIED_LOG_ERROR,
                             "repository: model limit reached; not loading a new model "
                             "(raise repository.max_models)",
                             "model", sm->name, "max_models", limit, NULL);
                    refused++;
                    continue;
                }
                served++;
            }
            apply_model(r, sm);
        }
    }
    r->refused = refused;
    if (s->truncated) {
        eied_log(EIED_LOG_ERROR, "repository: too many entries to read them all; no model is "
                                 "taken as removed",
                 "path", cfg->repository, NULL);
        return;
    }
    /* models whose folder is gone: unload (poll mode follows the repository) */
    uint64_t now = eied_now_ns();
    for (eied_model_t *m = r->models->head, *next; m != NULL; m = next) {
        next = m->next;
        if (!m->from_repo)
            continue;
        bool present = false;
        for (size_t i = 0; i < s->n_models && !present; i++)
            present = strcmp(s->models[i].name, m->name) == 0;
        if (present) {
            m->removed_ns = 0;
            continue;
        }
        if (m->state != EIED_MODEL_UNLOADED && (follow || explicitly_loaded(r, m->name))) {
            eied_models_unload(r->models, m->name, NULL);
            snprintf(m->reason, sizeof m->reason, "removed from the repository");
            m->removed_ns = now;
        } else if (m->state == EIED_MODEL_UNLOADED && m->removed_ns != 0 &&
                   now - m->removed_ns >= cfg->forget_after_ms * 1000000ull) {
            /* RepositoryIndex and /metrics stay bounded under churn */
            eied_models_forget(r->models, m);
        }
    }
}

static void scan_free(scan_t *s)
{
    for (size_t i = 0; i < s->n_models; i++)
        free(s->models[i].versions);
    free(s->models);
    free(s);
}

static void scan_done(uv_work_t *work, int status)
{
    scan_t *s = work->data;
    eied_repository_t *r = s->repo;
    r->scanning = false;
    if (status == 0 && r->started) {
        if (s->error[0] != '\0') {
            eied_log(EIED_LOG_ERROR, "repository scan failed", "error", s->error, NULL);
        } else {
            apply_scan(r, s);
            watch_model_dirs(r, s);
        }
        r->first_scan_done = true;
        if (r->on_scanned != NULL)
            r->on_scanned(r->ctx); /* readiness may change */
    }
    scan_free(s);
    if (r->rescan_wanted && r->started) {
        r->rescan_wanted = false;
        eied_repository_rescan(r);
    }
}

static void start_scan(eied_repository_t *r)
{
    if (r->scanning) {
        r->rescan_wanted = true;
        return;
    }
    scan_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        eied_log(EIED_LOG_ERROR, "repository: out of memory for a scan", NULL);
        return;
    }
    s->repo = r;
    s->max_versions = r->cfg->max_versions;
    s->follow_symlinks = r->cfg->follow_symlinks;
    s->work.data = s;
    snprintf(s->root, sizeof s->root, "%s", r->cfg->repository);
    r->scanning = true;
    if (uv_queue_work(r->loop, &s->work, scan_work, scan_done) != 0) {
        r->scanning = false;
        scan_free(s);
    }
}

static void on_debounce(uv_timer_t *t)
{
    start_scan(t->data);
}

void eied_repository_rescan(eied_repository_t *r)
{
    if (r == NULL || !r->started)
        return;
    if (r->cfg->control_mode == EIED_CONTROL_EXPLICIT) {
        start_scan(r); /* SIGHUP in explicit mode: the models already loaded */
        return;
    }
    /* coalesce bursts of file events (a copy is many writes) into one scan */
    uv_timer_start(&r->debounce_timer, on_debounce, RESCAN_DEBOUNCE_MS, 0);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)filename;
    (void)events;
    (void)status;
    eied_repository_t *r = h->data;
    if (r->cfg->control_mode == EIED_CONTROL_POLL)
        eied_repository_rescan(r);
}

static void on_poll(uv_timer_t *t)
{
    eied_repository_t *r = t->data;
    start_scan(r);
}

/* uv_fs_event is not recursive on Linux: watch each model folder too. */
static void watch_model_dirs(eied_repository_t *r, const scan_t *s)
{
    if (r->cfg->control_mode != EIED_CONTROL_POLL)
        return;
    for (size_t i = 0; i < s->n_models; i++) {
        bool have = false;
        size_t free_slot = r->n_watch;
        if (s->models[i].error != 0)
            continue;
        for (size_t k = 0; k < r->n_watch; k++) {
            if (r->model_watch[k].active && strcmp(r->model_watch[k].name, s->models[i].name) == 0)
                have = true;
            else if (!r->model_watch[k].active && !uv_is_closing((uv_handle_t *)&r->model_watch[k].ev) && free_slot == r->n_watch)
                free_slot = k;
        }
        if (have || free_slot == r->n_watch)
            continue; /* beyond max_models folders: the periodic poll still sees them */
        struct watch *w = &r->model_watch[free_slot];
        char dir[EIED_CONFIG_STR_MAX + EIED_MODEL_NAME_MAX + 2];
        snprintf(dir, sizeof dir, "%s/%s", r->cfg->repository, s->models[i].name);
        uv_fs_event_init(r->loop, &w->ev);
        w->ev.data = r;
        if (uv_fs_event_start(&w->ev, on_fs_event, dir, 0) == 0) {
            w->active = true;
            snprintf(w->name, sizeof w->name, "%s", s->models[i].name);
        } else {
            uv_close((uv_handle_t *)&w->ev, NULL);
        }
    }
}

eied_repository_t *eied_repository_create(uv_loop_t *loop, const eied_config_t *cfg,
                                          eied_models_t *models, eied_loader_t *loader,
                                          void (*on_scanned)(void *ctx), void *ctx)
{
    eied_repository_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->loop = loop;
    r->cfg = cfg;
    r->models = models;
    r->loader = loader;
    r->on_scanned = on_scanned;
    r->ctx = ctx;
    r->n_watch = cfg->max_models;
    r->model_watch = calloc(r->n_watch, sizeof *r->model_watch);
    r->explicit_models = calloc(cfg->max_models, sizeof *r->explicit_models);
    if (r->model_watch == NULL || r->explicit_models == NULL) {
        eied_repository_free(r);
        return NULL;
    }
    return r;
}

eie_status_t eied_repository_start(eied_repository_t *r, eie_error_t *err)
{
    const eied_config_t *cfg = r->cfg;
    if (cfg->repository[0] == '\0')
        return EIE_STATUS_OK;
    struct stat sb;
    if (stat(cfg->repository, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "repository.path '%s' is not a directory", cfg->repository);
    uv_timer_init(r->loop, &r->poll_timer);
    uv_timer_init(r->loop, &r->debounce_timer);
    r->poll_timer.data = r->debounce_timer.data = r;
    uv_fs_event_init(r->loop, &r->root_watch);
    r->root_watch.data = r;
    if (cfg->control_mode == EIED_CONTROL_POLL) {
        if (uv_fs_event_start(&r->root_watch, on_fs_event, cfg->repository, 0) != 0)
            eied_log(EIED_LOG_WARN, "repository: cannot watch; polling only", "path",
                     cfg->repository, NULL);
        uv_timer_start(&r->poll_timer, on_poll, cfg->poll_interval_ms, cfg->poll_interval_ms);
    }
    r->started = true;
    eied_log(EIED_LOG_INFO, "repository", "path", cfg->repository, "control_mode",
             cfg->control_mode == EIED_CONTROL_POLL       ? "poll"
             : cfg->control_mode == EIED_CONTROL_EXPLICIT ? "explicit"
                                                          : "none",
             NULL);
    /* explicit mode starts with nothing loaded, as Triton's does */
    if (cfg->control_mode != EIED_CONTROL_EXPLICIT)
        start_scan(r);
    else
        r->first_scan_done = true;
    return EIE_STATUS_OK;
}

static void close_if_open(uv_handle_t *h)
{
    if (h->loop != NULL && !uv_is_closing(h))
        uv_close(h, NULL);
}

void eied_repository_close(eied_repository_t *r)
{
    if (r == NULL || !r->started)
        return;
    r->started = false;
    close_if_open((uv_handle_t *)&r->poll_timer);
    close_if_open((uv_handle_t *)&r->debounce_timer);
    close_if_open((uv_handle_t *)&r->root_watch);
    for (size_t k = 0; k < r->n_watch; k++)
        if (r->model_watch[k].active)
            close_if_open((uv_handle_t *)&r->model_watch[k].ev);
}

void eied_repository_free(eied_repository_t *r)
{
    if (r == NULL)
        return;
    free(r->model_watch);
    free(r->explicit_models);
    free(r);
}

bool eied_repository_ready(const eied_repository_t *r)
{
    return r->cfg->repository[0] == '\0' || r->first_scan_done;
}

eie_status_t eied_repository_load(eied_repository_t *r, const char *name, eie_error_t *err)
{
    const eied_config_t *cfg = r->cfg;
    eied_model_t *m = eied_models_find(r->models, name);
    if (m != NULL && !m->from_repo) {
        /* a [models] entry: reload its file as the next version */
        if (m->state == EIED_MODEL_UNLOADED)
            m->state = EIED_MODEL_LOADING;
        return eied_loader_reload(r->loader, m, err);
    }
    if (cfg->repository[0] == '\0')
        return eie_error_set(err, EIE_STATUS_NOT_FOUND,
                             "model '%s' is not configured (no [models] entry, no repository)",
                             name);
    if (cfg->control_mode == EIED_CONTROL_POLL)
        return eie_error_set(err, EIE_STATUS_FAILED_PRECONDITION,
                             "model '%s': control_mode is poll, the repository decides what "
                             "serves; change the files, or use control_mode explicit",
                             name);
    char dir[EIED_CONFIG_STR_MAX + EIED_MODEL_NAME_MAX + 2];
    struct stat sb;
    snprintf(dir, sizeof dir, "%s/%s", cfg->repository, name);
    if (!valid_model_name(name) || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return eie_error_set(err, EIE_STATUS_NOT_FOUND, "model '%s' is not in the repository",
                             name);
    if (!explicitly_loaded(r, name) && r->n_explicit == cfg->max_models)
        return eie_error_set(err, EIE_STATUS_RESOURCE_EXHAUSTED,
                             "model '%s': repository.max_models (%llu) models are loaded", name,
                             (unsigned long long)cfg->max_models);
    if (!explicitly_loaded(r, name))
        snprintf(r->explicit_models[r->n_explicit++], EIED_MODEL_NAME_MAX, "%s", name);
    if (m != NULL && m->state == EIED_MODEL_UNLOADED)
        m->state = EIED_MODEL_LOADING;
    start_scan(r);
    return EIE_STATUS_OK;
}

eie_status_t eied_repository_unload(eied_repository_t *r, const char *name, eie_error_t *err)
{
    eied_model_t *m = eied_models_find(r->models, name);
    if (m != NULL && m->from_repo && r->cfg->control_mode == EIED_CONTROL_POLL)
        return eie_error_set(err, EIE_STATUS_FAILED_PRECONDITION,
                             "model '%s': control_mode is poll, the repository decides what "
                             "serves; remove its folder, or use control_mode explicit",
                             name);
    eie_status_t st = eied_models_unload(r->models, name, err);
    if (st != EIE_STATUS_OK)
        return st;
    for (size_t i = 0; i < r->n_explicit; i++) {
        if (strcmp(r->explicit_models[i], name) == 0) {
            memmove(r->explicit_models[i], r->explicit_models[i + 1],
                    (r->n_explicit - i - 1) * sizeof r->explicit_models[0]);
            r->n_explicit--;
            break;
        }
    }
    return EIE_STATUS_OK;
}
