/*
 * pool.h - the PE thread pool of the cpu backend (internal).
 *
 * N threads created once per engine (DESIGN.md: not per request). Jobs run
 * one at a time, on N PE slots together, in submission order: a job's run()
 * is called once per slot (pe = 0..N-1, taken by whichever thread comes
 * first: a pool thread, or the caller of eie_pool_submit_join), and slots meet at eie_pool_barrier() between
 * layers (EIE sec. III: all PEs finish a layer before the next one starts).
 */
#ifndef EIE_CPU_POOL_H
#define EIE_CPU_POOL_H

#include <stdatomic.h>

typedef struct eie_pool eie_pool_t;

typedef struct eie_pool_job {
    /* Called on every PE (pe = 0..N-1) of the pool. */
    void (*run)(struct eie_pool_job *job, unsigned pe, eie_pool_t *pool);
    /* Called once, on one PE thread, after every PE returned from run. */
    void (*finish)(struct eie_pool_job *job);
    struct eie_pool_job *next;
    unsigned next_slot; /* PE slots handed out so far; guarded by the pool's lock */
    /* PE slots the job takes: 0 = every PE. A job of 1 slot runs on one thread
       and must not call eie_pool_barrier. */
    unsigned slots;
    /* Set by the pool for finish to read, on a job of more than one slot: the
       busiest and the least busy slot's time in run(), its waits at
       eie_pool_barrier left out (ns). 0 on a job of one slot. The spread of
       the two is the PEs' measured load balance, EIE's "load efficiency"
       (sec. VI-C) as this machine's cores ran it. */
    _Atomic unsigned long long busy_max_ns, busy_min_ns;
} eie_pool_job_t;

/* Starts n threads; returns 0 or an errno value. The caller owns *pool_out. */
int eie_pool_init(unsigned n, eie_pool_t **pool_out);
/* Joins the threads; no job may be queued or running. NULL is fine. */
void eie_pool_free(eie_pool_t *pool);
/* Queues a job (not copied; it must live until finish). */
void eie_pool_submit(eie_pool_t *pool, eie_pool_job_t *job);
/*
 * Queues a job like eie_pool_submit; if the pool is idle the calling thread
 * takes one PE slot of it and returns after its share, saving a thread
 * wake-up on the synchronous path. finish may then run on this thread.
 */
void eie_pool_submit_join(eie_pool_t *pool, eie_pool_job_t *job);
/* Waits until every PE of the pool has reached this barrier. */
void eie_pool_barrier(eie_pool_t *pool);
unsigned eie_pool_size(const eie_pool_t *pool);
/* Pauses a waiter of this pool spins before it sleeps (0 when the pool has
 * more threads than cores, where spinning steals the awaited thread's core). */
unsigned eie_pool_spin(const eie_pool_t *pool);

#endif
