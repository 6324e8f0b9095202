/*
 * bench_blas.h - OpenBLAS for eie-bench, loaded with dlmopen so that one
 * process holds two instances: one that picks its core by itself and one
 * with OPENBLAS_CORETYPE forced. OpenBLAS reads the variable once, when it
 * is loaded, so a second core type needs a second copy of the library; two
 * copies in one process let the two be timed interleaved, like every other
 * method.
 */
#ifndef EIE_BENCH_BLAS_H
#define EIE_BENCH_BLAS_H

#include <stddef.h>

typedef struct bench_blas {
    void *handle;
    char core[64];  /* openblas_get_corename() */
    char path[256]; /* the library file loaded */
    void (*sgemv)(int order, int trans, int m, int n, float alpha, const float *a, int lda,
                  const float *x, int incx, float beta, float *y, int incy);
    void (*sgemm)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                  int lda, const float *b, int ldb, float beta, float *c, int ldc);
    void (*set_num_threads)(int n);
} bench_blas_t;

/*
 * Loads a fresh instance of libopenblas.so.0 with OPENBLAS_CORETYPE set to
 * coretype, or unset when coretype is NULL (its own detection); the
 * process's environment is restored afterwards. Returns 0, or -1 with a
 * message naming the problem in err.
 */
int bench_blas_load(const char *coretype, bench_blas_t *out, char *err, size_t err_len);

/* y[B][rows] = x[B][cols] W^T + bias (W rows x cols, row-major) on T
 * threads: y is filled with the bias, then sgemv (B = 1) or sgemm with
 * beta = 1, as a BLAS user adds a bias. */
void bench_blas_fc(const bench_blas_t *bl, const float *w, const float *bias, unsigned rows,
                   unsigned cols, const float *x, size_t B, int T, float *y);

#endif
