/*
 * engine.c - the backend registry and the public engine/net wrappers.
 * Backends are chosen by name (STYLE.md: a registry table in the manner of
 * redis' ConnectionType): one row per backend, each declaring its options.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "eie/engine.h"
#include "relax.h"

/* The registry: one row per backend; everything else (names, options, tolerances) is read
   from the rows. A new backend is a folder and a line here. */
static const eie_backend_t *const backends[] = {
    &eie_backend_cpu,
    &eie_backend_sim,
};
#define N_BACKENDS (sizeof backends / sizeof backends[0])

static const char *backend_names[N_BACKENDS + 1];
static eie_backend_info_t backend_infos[N_BACKENDS];
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static void registry_init(void)
{
    for (size_t i = 0; i < N_BACKENDS; i++) {
        backend_names[i] = backends[i]->name;
        backend_infos[i] = (eie_backend_info_t){
            .name = backends[i]->name,
            .options = backends[i]->options,
            .n_options = backends[i]->n_options,
            .tolerance = backends[i]->tolerance,
        };
    }
}

struct eie_engine {
    const eie_backend_t *be;
    void *state;
    unsigned n_pes;
    unsigned max_sequence; /* steps a net with an lstm node runs at once */
};

struct eie_net {
    eie_engine_t *engine;
    void *impl;
    uint32_t input_dim, output_dim;
    uint64_t layout_bytes;
    size_t n_inputs, n_outputs;
    uint64_t *elements; /* per sample: the inputs', then the outputs' */
    bool *state;        /* per input, then output: an lstm's fed initial state or final
                           state, one sample a run */
    int64_t batch_dim;  /* the inputs' dims[0]: -1, or the one batch size they take */
    bool lstm;          /* the graph has an lstm node: the batch is its sequence's steps */
};

eie_engine_opts_t eie_engine_opts_default(void)
{
    return (eie_engine_opts_t){.backend = "cpu", .n_pes = 0};
}

const char *const *eie_backend_names(void)
{
    pthread_once(&registry_once, registry_init);
    return backend_names;
}

size_t eie_backend_count(void)
{
    return N_BACKENDS;
}

const eie_backend_info_t *eie_backend_info(size_t i)
{
    pthread_once(&registry_once, registry_init);
    return i < N_BACKENDS ? &backend_infos[i] : NULL;
}

const eie_backend_info_t *eie_backend_find(const char *name)
{
    pthread_once(&registry_once, registry_init);
    for (size_t i = 0; i < N_BACKENDS; i++)
        if (strcmp(backend_infos[i].name, name) == 0)
            return &backend_infos[i];
    return NULL;
}

const eie_backend_option_t *eie_backend_option_find(const eie_backend_info_t *be, const char *key)
{
    for (size_t i = 0; i < be->n_options; i++)
        if (strcmp(be->options[i].name, key) == 0)
            return &be->options[i];
    return NULL;
}

eie_status_t eie_engine_opts_set(eie_engine_opts_t *opts, const char *backend, const char *key,
                                 const char *value, eie_error_t *err)
{
    const eie_backend_info_t *be = eie_backend_find(backend);
    if (be == NULL)
        return eie_error_set(err, EIE_STATUS_NOT_FOUND, "unknown backend \"%s\"", backend);
    const eie_backend_option_t *o = eie_backend_option_find(be, key);
    if (o == NULL)
        return eie_error_set(err, EIE_STATUS_NOT_FOUND, "backend %s has no option '%s'", backend,
                             key);
    void *field = (char *)opts + o->offset;
    char *end;
    switch (o->type) {
    case EIE_OPTION_UINT:
    case EIE_OPTION_UINT64: {
        errno = 0;
        unsigned long long u = strtoull(value, &end, 10);
        if (value[0] == '\0' || value[0] == '-' || *end != '\0' || errno != 0 ||
            (double)u < o->min || (double)u > o->max)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "backend %s: option '%s': '%s' is not an integer in [%.0f, %.0f]",
                                 backend, key, value, o->min, o->max);
        if (o->type == EIE_OPTION_UINT)
            *(unsigned *)field = (unsigned)u;
        else
            *(uint64_t *)field = u;
        return EIE_STATUS_OK;
    }
    case EIE_OPTION_DOUBLE: {
        double d = strtod(value, &end);
        if (value[0] == '\0' || *end != '\0' || !(d >= o->min && d <= o->max))
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "backend %s: option '%s': '%s' is not a number in [%g, %g]",
                                 backend, key, value, o->min, o->max);
        *(double *)field = d;
        return EIE_STATUS_OK;
    }
    case EIE_OPTION_BOOL:
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "backend %s: option '%s': '%s' is not true or false", backend,
                                 key, value);
        *(int *)field = strcmp(value, "true") == 0;
        return EIE_STATUS_OK;
    case EIE_OPTION_STRING:
        *(const char **)field = value[0] != '\0' ? value : NULL;
        return EIE_STATUS_OK;
    }
    return eie_error_set(err, EIE_STATUS_INTERNAL, "backend %s: option '%s' has no type",
                         backend, key);
}

eie_status_t eie_engine_init(const eie_engine_opts_t *opts, eie_engine_t **engine_out,
                             eie_error_t *err)
{
    eie_engine_opts_t o = opts ? *opts : eie_engine_opts_default();
    const char *name = o.backend ? o.backend : "cpu";
    const eie_backend_t *be = NULL;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (strcmp(backends[i]->name, name) == 0)
            be = backends[i];
    if (be == NULL)
        return eie_error_set(err, EIE_STATUS_NOT_FOUND, "unknown backend \"%s\"", name);
    if (o.max_sequence > EIE_MAX_BATCH)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "max_sequence %u over the limit %u", o.max_sequence, EIE_MAX_BATCH);
    if (o.n_pes > 1024)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "n_pes %u over the limit 1024",
                             o.n_pes);
    eie_engine_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
    e->be = be;
    e->max_sequence = o.max_sequence ? o.max_sequence : EIE_DEFAULT_MAX_SEQUENCE;
    eie_status_t st = be->engine_init(&o, &e->state, &e->n_pes, err);
    if (st != EIE_STATUS_OK) {
        free(e);
        return st;
    }
    *engine_out = e;
    return EIE_STATUS_OK;
}

void eie_engine_free(eie_engine_t *engine)
{
    if (engine == NULL)
        return;
    engine->be->engine_free(engine->state);
    free(engine);
}

const char *eie_engine_backend(const eie_engine_t *engine) { return engine->be->name; }
unsigned eie_engine_pes(const eie_engine_t *engine) { return engine->n_pes; }
const char *eie_engine_describe(const eie_engine_t *engine)
{
    return engine->be->engine_describe != NULL ? engine->be->engine_describe(engine->state) : "";
}

eie_status_t eie_net_init(eie_engine_t *engine, const eie_model_t *model, eie_net_t **net_out,
                          eie_error_t *err)
{
    eie_net_t *net = calloc(1, sizeof *net);
    if (net == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
    net->engine = engine;
    net->input_dim = eie_model_input_dim(model);
    net->output_dim = eie_model_output_dim(model);
    net->n_inputs = eie_model_input_count(model);
    net->n_outputs = eie_model_output_count(model);
    if ((net->n_inputs > 1 || net->n_outputs > 1) && engine->be->net_submit_multi == NULL) {
        free(net);
        return eie_error_set(err, EIE_STATUS_UNIMPLEMENTED,
                             "backend %s runs models of one input and one output only; this "
                             "one has %zu inputs and %zu outputs",
                             engine->be->name, eie_model_input_count(model),
                             eie_model_output_count(model));
    }
    net->elements = calloc(net->n_inputs + net->n_outputs, sizeof *net->elements);
    net->state = calloc(net->n_inputs + net->n_outputs, sizeof *net->state);
    if (net->elements == NULL || net->state == NULL) {
        free(net->elements);
        free(net->state);
        free(net);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
    }
    eie_tensor_info_t ti;
    for (size_t i = 0; i < net->n_inputs; i++) {
        eie_model_input_info(model, i, &ti);
        net->elements[i] = eie_shape_sample_elements(&ti.shape);
        net->state[i] = eie_model_input_is_state(model, i);
        if (!net->state[i]) /* an lstm's initial state: one row a run */
            net->batch_dim = ti.shape.dims[0];
    }
    for (size_t i = 0; i < net->n_outputs; i++) {
        eie_model_output_info(model, i, &ti);
        net->elements[net->n_inputs + i] = eie_shape_sample_elements(&ti.shape);
        net->state[net->n_inputs + i] = eie_model_output_is_state(model, i);
    }
    for (size_t i = 0; i < eie_model_layer_count(model); i++) {
        eie_layer_info_t li;
        eie_model_layer_info(model, i, &li);
        net->lstm |= li.kind == EIE_LAYER_LSTM;
    }
    /* A version-1 chain's batch is free. */
    if (eie_model_format_version(model) == 1)
        net->batch_dim = -1;
    eie_status_t st =
        engine->be->net_init(engine->state, model, &net->impl, &net->layout_bytes, err);
    if (st != EIE_STATUS_OK) {
        free(net->elements);
        free(net->state);
        free(net);
        return st;
    }
    *net_out = net;
    return EIE_STATUS_OK;
}

void eie_net_free(eie_net_t *net)
{
    if (net == NULL)
        return;
    net->engine->be->net_free(net->impl);
    free(net->elements);
    free(net->state);
    free(net);
}

size_t eie_net_input_count(const eie_net_t *net) { return net->n_inputs; }
size_t eie_net_output_count(const eie_net_t *net) { return net->n_outputs; }

int eie_net_input_is_state(const eie_net_t *net, size_t i)
{
    return i < net->n_inputs && net->state[i];
}

int eie_net_output_is_state(const eie_net_t *net, size_t i)
{
    return i < net->n_outputs && net->state[net->n_inputs + i];
}

uint64_t eie_net_batch_size(const eie_net_t *net)
{
    return net->batch_dim > 0 ? (uint64_t)net->batch_dim : 0;
}

uint64_t eie_net_input_elements(const eie_net_t *net, size_t i)
{
    return i < net->n_inputs ? net->elements[i] : 0;
}

uint64_t eie_net_output_elements(const eie_net_t *net, size_t i)
{
    return i < net->n_outputs ? net->elements[net->n_inputs + i] : 0;
}

uint32_t eie_net_input_dim(const eie_net_t *net) { return net->input_dim; }
uint32_t eie_net_output_dim(const eie_net_t *net) { return net->output_dim; }
uint64_t eie_net_layout_bytes(const eie_net_t *net) { return net->layout_bytes; }
int eie_net_is_sequence(const eie_net_t *net) { return net->lstm; }

static eie_status_t check_run_args(const eie_net_t *net, const float *input, size_t batch,
                                   const float *output, eie_error_t *err)
{
    if (input == NULL || output == NULL)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "input and output are required");
    if (batch == 0 || batch > EIE_MAX_BATCH)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "batch %zu not in 1..%u", batch,
                             EIE_MAX_BATCH);
    if (net->lstm && batch > net->engine->max_sequence)
        return eie_error_set(err, EIE_STATUS_LIMIT,
                             "a sequence of %zu steps is over the limit max_sequence %u", batch,
                             net->engine->max_sequence);
    if (net->batch_dim > 0 && (uint64_t)net->batch_dim != batch)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "batch %zu but the model's inputs take exactly %lld", batch,
                             (long long)net->batch_dim);
    if (net->n_inputs != 1 || net->n_outputs != 1)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "the model has %zu inputs and %zu outputs: use eie_net_run_multi",
                             net->n_inputs, net->n_outputs);
    return EIE_STATUS_OK;
}

static eie_status_t check_multi_args(const eie_net_t *net, const float *const *inputs,
                                     size_t batch, float *const *outputs, eie_error_t *err)
{
    if (inputs == NULL || outputs == NULL)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "input and output are required");
    for (size_t i = 0; i < net->n_inputs; i++)
        if (inputs[i] == NULL)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "input %zu is NULL", i);
    for (size_t i = 0; i < net->n_outputs; i++)
        if (outputs[i] == NULL)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "output %zu is NULL", i);
    if (batch == 0 || batch > EIE_MAX_BATCH)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "batch %zu not in 1..%u", batch,
                             EIE_MAX_BATCH);
    if (net->lstm && batch > net->engine->max_sequence)
        return eie_error_set(err, EIE_STATUS_LIMIT,
                             "a sequence of %zu steps is over the limit max_sequence %u", batch,
                             net->engine->max_sequence);
    if (net->batch_dim > 0 && (uint64_t)net->batch_dim != batch)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "batch %zu but the model's inputs take exactly %lld", batch,
                             (long long)net->batch_dim);
    return EIE_STATUS_OK;
}

eie_status_t eie_net_submit_multi(eie_net_t *net, const float *const *inputs, size_t batch,
                                  float *const *outputs, eie_run_done_fn done, void *user,
                                  eie_error_t *err)
{
    assert(done != NULL);
    eie_status_t st = check_multi_args(net, inputs, batch, outputs, err);
    if (st != EIE_STATUS_OK)
        return st;
    const eie_backend_t *be = net->engine->be;
    if (be->net_submit_multi != NULL)
        return be->net_submit_multi(net->engine->state, net->impl, inputs, batch, outputs, done,
                                    user, err);
    return be->net_submit(net->engine->state, net->impl, inputs[0], batch, outputs[0], done, user,
                          err);
}

eie_status_t eie_net_run_multi(eie_net_t *net, const float *const *inputs, size_t batch,
                               float *const *outputs, eie_run_info_t *info_out, eie_error_t *err)
{
    eie_status_t st = check_multi_args(net, inputs, batch, outputs, err);
    if (st != EIE_STATUS_OK)
        return st;
    const eie_backend_t *be = net->engine->be;
    if (be->net_run_multi != NULL)
        return be->net_run_multi(net->engine->state, net->impl, inputs, batch, outputs, info_out,
                                 err);
    if (be->net_submit_multi == NULL)
        return eie_net_run(net, inputs[0], batch, outputs[0], info_out, err);
    eie_waiter_t w;
    eie_waiter_init(&w);
    st = be->net_submit_multi(net->engine->state, net->impl, inputs, batch, outputs,
                              eie_waiter_done, &w, err);
    if (st != EIE_STATUS_OK)
        eie_waiter_done(&w, st, NULL, err);
    return eie_waiter_wait(&w, 0, info_out, err);
}

size_t eie_net_max_sequences(const eie_net_t *net)
{
    if (!net->lstm)
        return 0;
    const eie_backend_t *be = net->engine->be;
    return be->net_max_sequences != NULL ? be->net_max_sequences(net->impl) : 1;
}

static eie_status_t check_sequences_args(const eie_net_t *net, const float *const *inputs,
                                         size_t n_seq, size_t steps, const size_t *lengths,
                                         float *const *outputs, eie_error_t *err)
{
    if (!net->lstm)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "the model has no lstm node: its batch is not sequences");
    size_t max = eie_net_max_sequences(net);
    if (n_seq == 0 || n_seq > max)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%zu sequences not in 1..%zu, the sequences one run of this net "
                             "takes on backend %s",
                             n_seq, max, net->engine->be->name);
    for (size_t k = 0; lengths != NULL && k < n_seq; k++)
        if (lengths[k] == 0 || lengths[k] > steps)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "sequence %zu has %zu steps, not in 1..%zu (the run's)", k,
                                 lengths[k], steps);
    return check_multi_args(net, inputs, steps, outputs, err);
}

eie_status_t eie_net_submit_sequences(eie_net_t *net, const float *const *inputs, size_t n_seq,
                                      size_t steps, const size_t *lengths, float *const *outputs,
                                      eie_run_done_fn done, void *user, eie_error_t *err)
{
    assert(done != NULL);
    eie_status_t st = check_sequences_args(net, inputs, n_seq, steps, lengths, outputs, err);
    if (st != EIE_STATUS_OK)
        return st;
    const eie_backend_t *be = net->engine->be;
    if (n_seq == 1 || be->net_submit_sequences == NULL) /* one sequence: its own steps */
        return eie_net_submit_multi(net, inputs, lengths ? lengths[0] : steps, outputs, done,
                                    user, err);
    return be->net_submit_sequences(net->engine->state, net->impl, inputs, n_seq, steps, lengths,
                                    outputs, done, user, err);
}

eie_status_t eie_net_run_sequences(eie_net_t *net, const float *const *inputs, size_t n_seq,
                                   size_t steps, const size_t *lengths, float *const *outputs,
                                   eie_run_info_t *info_out, eie_error_t *err)
{
    eie_status_t st = check_sequences_args(net, inputs, n_seq, steps, lengths, outputs, err);
    if (st != EIE_STATUS_OK)
        return st;
    if (n_seq == 1)
        return eie_net_run_multi(net, inputs, lengths ? lengths[0] : steps, outputs, info_out,
                                 err);
    const eie_backend_t *be = net->engine->be;
    if (be->net_run_sequences != NULL && be->net_submit_sequences != NULL)
        return be->net_run_sequences(net->engine->state, net->impl, inputs, n_seq, steps, lengths,
                                     outputs, info_out, err);
    eie_waiter_t w;
    eie_waiter_init(&w);
    st = eie_net_submit_sequences(net, inputs, n_seq, steps, lengths, outputs, eie_waiter_done,
                                  &w, err);
    if (st != EIE_STATUS_OK)
        eie_waiter_done(&w, st, NULL, err);
    return eie_waiter_wait(&w, 0, info_out, err);
}

eie_status_t eie_net_submit(eie_net_t *net, const float *input, size_t batch, float *output,
                            eie_run_done_fn done, void *user, eie_error_t *err)
{
    assert(done != NULL);
    eie_status_t st = check_run_args(net, input, batch, output, err);
    if (st != EIE_STATUS_OK)
        return st;
    return net->engine->be->net_submit(net->engine->state, net->impl, input, batch, output, done,
                                       user, err);
}

void eie_waiter_init(eie_waiter_t *w)
{
    memset(w, 0, sizeof *w);
    atomic_init(&w->done, 0);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

void eie_waiter_done(void *user, eie_status_t status, const eie_run_info_t *info,
                     const eie_error_t *err)
{
    eie_waiter_t *w = user;
    pthread_mutex_lock(&w->mu);
    w->status = status;
    if (info)
        w->info = *info;
    if (err && status != EIE_STATUS_OK)
        w->err = *err;
    atomic_store_explicit(&w->done, 1, memory_order_release);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

eie_status_t eie_waiter_wait(eie_waiter_t *w, unsigned spin, eie_run_info_t *info_out,
                             eie_error_t *err)
{
    for (unsigned i = 0; i < spin; i++) {
        if (atomic_load_explicit(&w->done, memory_order_acquire))
            break;
        EIE_CPU_RELAX();
    }
    /* Taking the lock also waits for eie_waiter_done to let go of it, so
     * the waiter can be destroyed below. */
    pthread_mutex_lock(&w->mu);
    while (!atomic_load_explicit(&w->done, memory_order_acquire))
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    if (w->status != EIE_STATUS_OK) {
        if (err)
            *err = w->err;
    } else if (info_out) {
        *info_out = w->info;
    }
    return w->status;
}

eie_status_t eie_net_run(eie_net_t *net, const float *input, size_t batch, float *output,
                         eie_run_info_t *info_out, eie_error_t *err)
{
    eie_status_t st = check_run_args(net, input, batch, output, err);
    if (st != EIE_STATUS_OK)
        return st;
    const eie_backend_t *be = net->engine->be;
    if (be->net_run != NULL)
        return be->net_run(net->engine->state, net->impl, input, batch, output, info_out, err);
    eie_waiter_t w;
    eie_waiter_init(&w);
    st = be->net_submit(net->engine->state, net->impl, input, batch, output, eie_waiter_done, &w,
                        err);
    if (st != EIE_STATUS_OK)
        eie_waiter_done(&w, st, NULL, err); /* nothing queued: the wait returns at once */
    return eie_waiter_wait(&w, 0, info_out, err);
}
