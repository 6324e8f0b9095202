/*
 * The PE pool: a job queue and a barrier. Waits spin briefly before they
 * sleep, since a layer of a benchmark network takes tens of microseconds
 * and a condition-variable wake-up costs about as much; when there are more
 * PEs than cores, spinning only steals time from the PE being waited for,
 * so the pool sleeps at once.
 */
#include "pe/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "relax.h"

struct eie_pool {
    unsigned n;
    unsigned spin;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t job_cv;
    /* job queue; guarded by mu */
    eie_pool_job_t *head, *tail;
    eie_pool_job_t *cur;
    int busy, stop;
    _Atomic unsigned job_gen;
    atomic_uint spinning; /* idle threads spinning on job_gen, not asleep */
    atomic_uint finished;
    /* barrier */
    atomic_uint bar_count;
    _Atomic unsigned bar_gen;
    pthread_cond_t bar_cv;
};

typedef struct worker_arg {
    eie_pool_t *pool;
    unsigned pe;
} worker_arg_t;

unsigned eie_pool_size(const eie_pool_t *pool) { return pool->n; }

unsigned eie_pool_spin(const eie_pool_t *pool) { return pool->spin; }

static unsigned long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
}

/* This thread's time waiting at barriers, for work() to leave out of a
 * slot's busy time. */
static _Thread_local unsigned long long barrier_wait_ns;

static void barrier_wait(eie_pool_t *pool, unsigned gen)
{
    unsigned long long t0 = now_ns();
    for (unsigned i = 0; i < pool->spin; i++) {
        if (atomic_load_explicit(&pool->bar_gen, memory_order_acquire) != gen)
            goto done;
        EIE_CPU_RELAX();
    }
    pthread_mutex_lock(&pool->mu);
    while (atomic_load_explicit(&pool->bar_gen, memory_order_acquire) == gen)
        pthread_cond_wait(&pool->bar_cv, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
done:
    barrier_wait_ns += now_ns() - t0;
}

void eie_pool_barrier(eie_pool_t *pool)
{
    if (pool->n == 1)
        return;
    unsigned gen = atomic_load_explicit(&pool->bar_gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&pool->bar_count, 1, memory_order_acq_rel) + 1 == pool->n) {
        atomic_store_explicit(&pool->bar_count, 0, memory_order_relaxed);
        pthread_mutex_lock(&pool->mu);
        atomic_store_explicit(&pool->bar_gen, gen + 1, memory_order_release);
        pthread_cond_broadcast(&pool->bar_cv);
        pthread_mutex_unlock(&pool->mu);
        return;
    }
    barrier_wait(pool, gen);
}

static unsigned slots_of(const eie_pool_t *pool, const eie_pool_job_t *job)
{
    return job->slots != 0 && job->slots < pool->n ? job->slots : pool->n;
}

/* Makes job current (mu held) and wakes one sleeping thread for each slot
 * that neither the caller nor an already spinning thread will take. Not a
 * broadcast: with the caller of eie_pool_submit_join taking a slot, an
 * N-thread pool has a thread more than a job needs, and on a machine with N
 * cores waking it took a core from a PE for its spin. Nor a signal when a
 * spinner will take the slot: the futex call delayed the caller's own
 * share (back-to-back VGG-6 runs on 2 PEs: the caller's PE started 13-33 us
 * after the submit with the signal, 4-8 us without). */
static void publish(eie_pool_t *pool, eie_pool_job_t *job, unsigned taken_by_caller)
{
    pool->cur = job;
    pool->busy = 1;
    atomic_fetch_add_explicit(&pool->job_gen, 1, memory_order_release);
    /* A spinning thread takes a slot without a wake-up; one that gives up
     * spinning after this read still sees the new job_gen under mu. */
    unsigned spinning = atomic_load_explicit(&pool->spinning, memory_order_acquire);
    for (unsigned i = taken_by_caller + spinning; i < slots_of(pool, job); i++)
        pthread_cond_signal(&pool->job_cv);
}

/* Folds one slot's busy time into the job's busiest and least busy. Both
 * start at 0 (submit); the least busy stays 0 only until the first slot
 * ends, so a slot's 0 counts as 1. */
static void busy_update(eie_pool_job_t *job, unsigned long long busy)
{
    unsigned long long m = atomic_load_explicit(&job->busy_max_ns, memory_order_relaxed);
    while (busy > m && !atomic_compare_exchange_weak_explicit(&job->busy_max_ns, &m, busy,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed))
        ;
    m = atomic_load_explicit(&job->busy_min_ns, memory_order_relaxed);
    while ((m == 0 || busy < m) &&
           !atomic_compare_exchange_weak_explicit(&job->busy_min_ns, &m, busy ? busy : 1,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* Runs one PE slot of job; the last slot to finish publishes the next job
 * and then calls finish (outside the lock: it may submit again). */
static void work(eie_pool_t *pool, eie_pool_job_t *job, unsigned slot)
{
    /* Read before this slot counts as finished: the last slot may free the job then. */
    unsigned slots = slots_of(pool, job);
    if (slots == 1) {
        job->run(job, slot, pool);
    } else {
        /* Two clock reads a slot (about 40 ns each here): a job is split
           only when each PE has tens of microseconds of work (cpu.c). */
        unsigned long long t0 = now_ns(), w0 = barrier_wait_ns;
        job->run(job, slot, pool);
        unsigned long long busy = now_ns() - t0 - (barrier_wait_ns - w0);
        busy_update(job, busy);
    }
    /* The acq_rel count orders every slot's busy times before finish. */
    if (atomic_fetch_add_explicit(&pool->finished, 1, memory_order_acq_rel) + 1 != slots)
        return;
    atomic_store_explicit(&pool->finished, 0, memory_order_relaxed);
    /* Every slot is past run(): the job's outputs are complete. The job
     * stops being current before finish may free it. */
    pthread_mutex_lock(&pool->mu);
    eie_pool_job_t *next = pool->head;
    if (next != NULL) {
        pool->head = next->next;
        if (pool->head == NULL)
            pool->tail = NULL;
        publish(pool, next, 0);
    } else {
        pool->cur = NULL;
        pool->busy = 0;
    }
    pthread_mutex_unlock(&pool->mu);
    job->finish(job);
}

/* Takes mu as a spinner that has just seen a new job: the submitter still
 * holds mu for the rest of its publish (well under a microsecond), and
 * blocking on it would cost both threads a futex call: the submitter's
 * unlock would have to wake this one. With a VM's system calls that put
 * 2-3 us before the submitter's own PE slot and 3-4 us before this
 * thread's (NT-We-sized layer at batch 1 on 2 PEs, medians). */
static void lock_spinning(eie_pool_t *pool)
{
    for (unsigned i = 0; i < pool->spin; i++) {
        if (pthread_mutex_trylock(&pool->mu) == 0)
            return;
        EIE_CPU_RELAX();
    }
    pthread_mutex_lock(&pool->mu);
}

static void *worker(void *p)
{
    worker_arg_t *arg = p;
    eie_pool_t *pool = arg->pool;
    unsigned seen = 0;
    free(arg);
    for (;;) {
        atomic_fetch_add_explicit(&pool->spinning, 1, memory_order_acq_rel);
        for (unsigned i = 0; i < pool->spin; i++) {
            if (atomic_load_explicit(&pool->job_gen, memory_order_acquire) != seen)
                break;
            EIE_CPU_RELAX();
        }
        atomic_fetch_sub_explicit(&pool->spinning, 1, memory_order_acq_rel);
        if (atomic_load_explicit(&pool->job_gen, memory_order_acquire) != seen)
            lock_spinning(pool);
        else
            pthread_mutex_lock(&pool->mu); /* about to sleep: no hurry */
        while (atomic_load_explicit(&pool->job_gen, memory_order_acquire) == seen && !pool->stop)
            pthread_cond_wait(&pool->job_cv, &pool->mu);
        if (pool->stop) {
            pthread_mutex_unlock(&pool->mu);
            return NULL;
        }
        seen = atomic_load_explicit(&pool->job_gen, memory_order_acquire);
        eie_pool_job_t *job = pool->cur;
        unsigned slot = job != NULL && job->next_slot < slots_of(pool, job) ? job->next_slot++
                                                                             : pool->n;
        pthread_mutex_unlock(&pool->mu);
        if (slot < pool->n)
            work(pool, job, slot);
    }
}

static void submit(eie_pool_t *pool, eie_pool_job_t *job, int join)
{
    unsigned slot = pool->n;
    job->next = NULL;
    job->next_slot = 0;
    atomic_init(&job->busy_max_ns, 0);
    atomic_init(&job->busy_min_ns, 0);
    pthread_mutex_lock(&pool->mu);
    if (!pool->busy) {
        publish(pool, job, join ? 1 : 0);
        if (join)
            slot = job->next_slot++;
    } else if (pool->tail != NULL) {
        pool->tail->next = job;
        pool->tail = job;
    } else {
        pool->head = pool->tail = job;
    }
    pthread_mutex_unlock(&pool->mu);
    if (slot < pool->n)
        work(pool, job, slot);
}

void eie_pool_submit(eie_pool_t *pool, eie_pool_job_t *job)
{
    submit(pool, job, 0);
}

void eie_pool_submit_join(eie_pool_t *pool, eie_pool_job_t *job)
{
    submit(pool, job, 1);
}

int eie_pool_init(unsigned n, eie_pool_t **pool_out)
{
    eie_pool_t *pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return ENOMEM;
    pool->n = n;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    pool->spin = (cores > 0 && n <= (unsigned long)cores) ? 400 : 0;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->job_cv, NULL);
    pthread_cond_init(&pool->bar_cv, NULL);
    pool->threads = calloc(n, sizeof *pool->threads);
    if (pool->threads == NULL) {
        eie_pool_free(pool);
        return ENOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        worker_arg_t *arg = malloc(sizeof *arg);
        int rc = arg ? 0 : ENOMEM;
        if (arg) {
            arg->pool = pool;
            arg->pe = i;
            rc = pthread_create(&pool->threads[i], NULL, worker, arg);
            if (rc != 0)
                free(arg);
        }
        if (rc != 0) {
            pool->n = i; /* join only the started ones */
            eie_pool_free(pool);
            return rc;
        }
    }
    *pool_out = pool;
    return 0;
}

void eie_pool_free(eie_pool_t *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->mu);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->job_cv);
    pthread_mutex_unlock(&pool->mu);
    if (pool->threads)
        for (unsigned i = 0; i < pool->n; i++)
            pthread_join(pool->threads[i], NULL);
    free(pool->threads);
    pthread_cond_destroy(&pool->bar_cv);
    pthread_cond_destroy(&pool->job_cv);
    pthread_mutex_destroy(&pool->mu);
    free(pool);
}
