/*
 * OpenBLAS instances for eie-bench (bench_blas.h).
 */
#define _GNU_SOURCE
#include "bench_blas.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cblas.h's enum values, fixed by the CBLAS standard. */
#define ROW_MAJOR 101
#define NO_TRANS  111
#define TRANS     112

int bench_blas_load(const char *coretype, bench_blas_t *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    const char *old = getenv("OPENBLAS_CORETYPE");
    char *saved = old ? strdup(old) : NULL;
    /* Idle OpenBLAS threads spin for 2^28 cycles (about 80 ms) by default:
     * on two cores that takes the core the next method, interleaved, runs
     * on. 2^20 (about 0.3 ms) keeps them spinning between the back-to-back
     * calls of a warm-up and lets them sleep well within the 3 ms warm-up of
     * the next method. The environment's value wins. */
    setenv("OPENBLAS_THREAD_TIMEOUT", "20", 0);
    if (coretype)
        setenv("OPENBLAS_CORETYPE", coretype, 1);
    else
        unsetenv("OPENBLAS_CORETYPE");
    /* A new link-map namespace: a second, independent copy of the library
     * (and of its thread pool), initialised from the environment as it is
     * now. */
    void *h = dlmopen(LM_ID_NEWLM, "libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (saved)
        setenv("OPENBLAS_CORETYPE", saved, 1);
    else
        unsetenv("OPENBLAS_CORETYPE");
    free(saved);
    if (h == NULL) {
        snprintf(err, err_len, "dlmopen libopenblas.so.0 (OPENBLAS_CORETYPE=%s): %s",
                 coretype ? coretype : "(unset)", dlerror());
        return -1;
    }
    char *(*corename)(void) = (char *(*)(void))dlsym(h, "openblas_get_corename");
    *(void **)&out->sgemv = dlsym(h, "cblas_sgemv");
    *(void **)&out->sgemm = dlsym(h, "cblas_sgemm");
    *(void **)&out->set_num_threads = dlsym(h, "openblas_set_num_threads");
    if (!corename || !out->sgemv || !out->sgemm || !out->set_num_threads) {
        snprintf(err, err_len,
                 "libopenblas.so.0 lacks cblas_sgemv, cblas_sgemm, "
                 "openblas_get_corename or openblas_set_num_threads");
        dlclose(h);
        return -1;
    }
    out->handle = h;
    snprintf(out->core, sizeof out->core, "%s", corename());
    struct link_map *lm = NULL;
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name)
        snprintf(out->path, sizeof out->path, "%s", lm->l_name);
    return 0;
}

void bench_blas_fc(const bench_blas_t *bl, const float *w, const float *bias, unsigned rows,
                   unsigned cols, const float *x, size_t B, int T, float *y)
{
    bl->set_num_threads(T);
    for (size_t b = 0; b < B; b++)
        memcpy(y + b * rows, bias, rows * sizeof(float));
    if (B == 1)
        bl->sgemv(ROW_MAJOR, NO_TRANS, (int)rows, (int)cols, 1.0f, w, (int)cols, x, 1, 1.0f, y, 1);
    else
        bl->sgemm(ROW_MAJOR, NO_TRANS, TRANS, (int)B, (int)rows, (int)cols, 1.0f, x, (int)cols, w,
                  (int)cols, 1.0f, y, (int)rows);
}
