/*
 * eie/train.h - dense networks in memory (fully connected, and convolutional:
 * conv2d, max/average pooling, global average pooling, add, concat), trained
 * on the CPU:
 * what pruning, trained quantization and DSD need (Han et al., NIPS 2015;
 * Deep Compression, ICLR 2016; DSD, ICLR 2017), and IDX datasets
 * (MNIST, Fashion-MNIST; raw or gzip'd).
 *
 *     uint32_t dims[] = {784, 300, 100, 10};
 *     eie_mlp_t *net;  eie_dataset_t *train, *test;  eie_eval_t ev;
 *     eie_mlp_init_layers(dims, 4, 42, &net, &err);         // FC+ReLU.., FC+softmax
 *     // or eie_mlp_init_lenet5(1, 28, 28, 10, 42, &net, &err), or eie_mlp_init_image
 *     // and eie_mlp_add_conv2d / _pool / _global_avgpool / _join / _fc / _activation
 *     eie_dataset_load_dir("data", "train", 10, 0, &train, &err);
 *     eie_dataset_load_dir("data", "t10k", 10, 0, &test, &err);
 *     eie_train_opts_t o = eie_train_opts_default();        // SGD, momentum 0.9
 *     o.epochs = 10;
 *     eie_train(net, train, &o, NULL, &err);
 *     eie_evaluate(net, test, 0, &ev, &err);                // ev.top1
 *     eie_mlp_free(net); eie_dataset_free(train); eie_dataset_free(test);
 */
#ifndef EIE_TRAIN_H
#define EIE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "eie/model.h"
#include "eie/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest rows or columns of one layer, and layers of one network. */
#define EIE_MLP_MAX_DIM    (1u << 20)
#define EIE_MLP_MAX_WEIGHTS (1ull << 28)
#define EIE_MLP_MAX_LAYERS 256
/* Largest number of classes a dataset may have (labels are bytes). */
#define EIE_DATASET_MAX_CLASSES 256

/*
 * One layer. Weight layers are FC (y = W x + b) and CONV2D (W is Cout x
 * C/groups*kh*kw, the form the .eie format stores); the others are an
 * element-wise activation, pooling, ADD and CONCAT. A weight layer may carry
 * a pruning mask (1 = kept) and may be weight-shared: then codes (rows x
 * cols, 0 = pruned) index codebook (2^code_bits floats, codebook[0] == 0)
 * and w always equals codebook[codes].
 *
 * Every layer reads the output of the layer before it (the network's input
 * for layer 0); ADD and CONCAT also read the output of layer in2 - 1 (in2 ==
 * 0: the network's input), which makes residual and branch-and-join graphs.
 * Samples are C x H x W row-major; an FC layer reads all of it as a vector.
 */
typedef struct eie_mlp_layer {
    eie_layer_kind_t kind;
    eie_act_t act;       /* ACTIVATION layers */
    uint32_t rows, cols; /* FC: outputs, inputs; CONV2D: Cout, C/groups*kh*kw */
    float *w;            /* weight layers: rows x cols, row-major */
    float *b;            /* weight layers: rows */
    uint8_t *mask;       /* weight layers: NULL (dense) or rows x cols, 1 = kept */
    uint8_t *codes;      /* weight layers: NULL (free weights) or rows x cols codebook indices */
    float *codebook;     /* weight layers: 2^code_bits entries when codes != NULL */
    uint32_t code_bits;  /* weight layers: bits per code when codes != NULL */
    uint32_t in_c, in_h, in_w;    /* one sample of the (first) input; a vector is C x 1 x 1 */
    uint32_t out_c, out_h, out_w; /* one sample of the output */
    eie_conv2d_params_t conv;     /* CONV2D */
    eie_pool2d_params_t pool;     /* MAXPOOL2D, AVGPOOL2D */
    size_t in2;                   /* ADD, CONCAT: second input, layer in2 - 1's output (0: input) */
} eie_mlp_layer_t;

/* A feed-forward network (see eie_mlp_layer_t); the struct is open. */
typedef struct eie_mlp {
    uint32_t input_dim;            /* in_c x in_h x in_w */
    uint32_t in_c, in_h, in_w;     /* one input sample; eie_mlp_init makes it input_dim x 1 x 1 */
    size_t n_layers;
    eie_mlp_layer_t *layers;
} eie_mlp_t;

/* Starts an empty network taking input_dim features. The caller owns *mlp_out. */
eie_status_t eie_mlp_init(uint32_t input_dim, eie_mlp_t **mlp_out, eie_error_t *err);
/* Frees a network; NULL is fine. */
void eie_mlp_free(eie_mlp_t *mlp);
/* Appends an FC layer of rows outputs over the current width; w (rows x cols) and b are copied, NULL = zeros. */
eie_status_t eie_mlp_add_fc(eie_mlp_t *mlp, uint32_t rows, const float *w, const float *b,
                            eie_error_t *err);
/* Appends an element-wise activation layer. */
eie_status_t eie_mlp_add_activation(eie_mlp_t *mlp, eie_act_t act, eie_error_t *err);
/* Starts an empty network taking c x h x w images. The caller owns *mlp_out. */
eie_status_t eie_mlp_init_image(uint32_t c, uint32_t h, uint32_t w, eie_mlp_t **mlp_out,
                                eie_error_t *err);
/* Appends a conv2d of cout channels; w (cout x C/groups*kh*kw) and b are copied, NULL = zeros. */
eie_status_t eie_mlp_add_conv2d(eie_mlp_t *mlp, uint32_t cout, const eie_conv2d_params_t *p,
                                const float *w, const float *b, eie_error_t *err);
/* Appends a MAXPOOL2D or AVGPOOL2D layer. */
eie_status_t eie_mlp_add_pool(eie_mlp_t *mlp, eie_layer_kind_t kind, const eie_pool2d_params_t *p,
                              eie_error_t *err);
/* Appends a global average pooling layer (C x H x W -> C x 1 x 1). */
eie_status_t eie_mlp_add_global_avgpool(eie_mlp_t *mlp, eie_error_t *err);
/*
 * Appends ADD (same shapes) or CONCAT (channels; same H x W) of the last
 * layer's output and the output of layer in2 - 1 (in2 == 0: the input).
 */
eie_status_t eie_mlp_add_join(eie_mlp_t *mlp, eie_layer_kind_t kind, size_t in2,
                              eie_error_t *err);
/* LeNet-5 in Caffe's layout for c x h x w images: conv 20 5x5, maxpool 2, conv 50 5x5,
   maxpool 2, fc 500, relu, fc classes, softmax; Caffe's xavier init from seed. */
eie_status_t eie_mlp_init_lenet5(uint32_t c, uint32_t h, uint32_t w, uint32_t classes,
                                 uint64_t seed, eie_mlp_t **mlp_out, eie_error_t *err);
/*
 * The network as an .eie graph (tensors "input", [N,C,H,W] or [N,D], and
 * "output"); weight-shared layers as codes, the others exactly. The caller
 * owns *builder_out.
 */
eie_status_t eie_mlp_to_graph(const eie_mlp_t *mlp, const char *name, const char *description,
                              eie_builder_t **builder_out, eie_error_t *err);
/* Width of the network's output (elements of one sample). */
uint32_t eie_mlp_output_dim(const eie_mlp_t *mlp);
/* Number of FC layers. */
size_t eie_mlp_fc_count(const eie_mlp_t *mlp);
/* Index in layers[] of the k-th FC layer, or SIZE_MAX. */
size_t eie_mlp_fc_index(const eie_mlp_t *mlp, size_t k);
/* Whether layer l has weights (FC or CONV2D). */
int eie_mlp_layer_has_weights(const eie_mlp_layer_t *l);
/* Number of weight layers (FC and CONV2D). */
size_t eie_mlp_sparse_count(const eie_mlp_t *mlp);
/* Index in layers[] of the k-th weight layer, or SIZE_MAX. */
size_t eie_mlp_sparse_index(const eie_mlp_t *mlp, size_t k);
/* Elements of one sample of layer i's output. */
size_t eie_mlp_layer_out_size(const eie_mlp_layer_t *l);
/* Deep copy (masks and codebooks included). The caller owns *mlp_out. */
eie_status_t eie_mlp_clone(const eie_mlp_t *src, eie_mlp_t **mlp_out, eie_error_t *err);
/* dims[0] inputs, FC+ReLU per hidden width, last FC + softmax; He-uniform init from seed. */
eie_status_t eie_mlp_init_layers(const uint32_t *dims, size_t n_dims, uint64_t seed,
                                 eie_mlp_t **mlp_out, eie_error_t *err);
/* Runs batch rows of input_dim floats into y_out (batch x output_dim). */
eie_status_t eie_mlp_forward(const eie_mlp_t *mlp, const float *x, size_t batch, float *y_out,
                             eie_error_t *err);
/* Gives FC layer index li (in layers[]) a mask that keeps its current nonzeros. */
eie_status_t eie_mlp_mask_from_weights(eie_mlp_t *mlp, size_t li, eie_error_t *err);
/* Drops masks and weight sharing of every layer (weights stay as they are). */
void eie_mlp_unmask(eie_mlp_t *mlp);

/* Gradients of the loss, one dw/db pair per layer (NULL for layers without weights). */
typedef struct eie_mlp_grad {
    size_t n_layers;
    float **dw;
    float **db;
} eie_mlp_grad_t;

/* Allocates zeroed gradients shaped like mlp. The caller owns *grad_out. */
eie_status_t eie_mlp_grad_init(const eie_mlp_t *mlp, eie_mlp_grad_t **grad_out, eie_error_t *err);
/* Frees gradients; NULL is fine. */
void eie_mlp_grad_free(eie_mlp_grad_t *grad);
/*
 * Mean softmax cross-entropy of the batch and its gradient (written into
 * grad, not accumulated). A trailing softmax layer is fused into the loss;
 * without one the network's outputs are taken as logits.
 */
eie_status_t eie_mlp_backprop(const eie_mlp_t *mlp, const float *x, const uint8_t *labels,
                              size_t batch, eie_mlp_grad_t *grad, double *loss_out,
                              eie_error_t *err);

/* An IDX image/label dataset held as floats in [0, 1]. */
typedef struct eie_dataset {
    uint32_t count;   /* examples */
    uint32_t rows;    /* image height */
    uint32_t cols;    /* image width */
    uint32_t classes; /* labels are < classes */
    float *images;    /* count x rows*cols */
    uint8_t *labels;  /* count */
} eie_dataset_t;

/* Loads an images file (magic 0x803) and labels file (0x801), raw or .gz; limit > 0 keeps the first limit. */
eie_status_t eie_dataset_load(const char *images_path, const char *labels_path, uint32_t classes,
                              uint32_t limit, eie_dataset_t **ds_out, eie_error_t *err);
/* Loads DIR/SPLIT-images-idx3-ubyte[.gz] and DIR/SPLIT-labels-idx1-ubyte[.gz] (SPLIT "train" or "t10k"). */
eie_status_t eie_dataset_load_dir(const char *dir, const char *split, uint32_t classes,
                                  uint32_t limit, eie_dataset_t **ds_out, eie_error_t *err);
/* Frees a dataset; NULL is fine. */
void eie_dataset_free(eie_dataset_t *ds);
/* Checks that images fit the network's input and labels its output. */
eie_status_t eie_dataset_check(const eie_dataset_t *ds, const eie_mlp_t *mlp, eie_error_t *err);

/* Called between mini-batches; stage names the work ("train", "retrain", ...). */
typedef void (*eie_progress_fn)(void *user, const char *stage, unsigned epoch, unsigned epochs,
                                size_t done, size_t total, double loss);

typedef struct eie_train_opts {
    unsigned epochs;
    unsigned batch;       /* mini-batch size */
    float lr;             /* learning rate of the first epoch */
    float lr_decay;       /* multiplies lr after every epoch */
    float momentum;
    float weight_decay;   /* L2 on FC and conv weights, not on biases */
    float codebook_lr;    /* learning rate of shared centroids (weight-shared layers) */
    uint64_t seed;        /* shuffling; same seed, same result */
    unsigned threads;     /* 0 = online cores */
    const char *stage;    /* name passed to progress */
    eie_progress_fn progress;
    void *progress_user;
} eie_train_opts_t;

/* Defaults: 10 epochs, batch 64, lr 0.05, decay 0.9, momentum 0.9, weight decay 1e-4, seed 1. */
eie_train_opts_t eie_train_opts_default(void);

typedef struct eie_train_stats {
    double last_loss; /* mean loss of the last epoch */
    double seconds;
} eie_train_stats_t;

/*
 * Mini-batch SGD with momentum and weight decay. Masked weights stay zero;
 * weight-shared layers update their centroids by the sum of the gradients
 * of the weights that share them (Deep Compression sec. 3.1) and keep codes.
 * Deterministic for a given seed, whatever the thread count.
 */
eie_status_t eie_train(eie_mlp_t *mlp, const eie_dataset_t *ds, const eie_train_opts_t *opts,
                       eie_train_stats_t *stats_out, eie_error_t *err);

typedef struct eie_eval {
    uint32_t count, classes;
    double top1, top5, loss;                  /* accuracies in [0, 1], mean loss */
    uint32_t top5_hits;                       /* examples whose class ranked in the top 5 */
    uint32_t class_total[EIE_DATASET_MAX_CLASSES];
    uint32_t class_correct[EIE_DATASET_MAX_CLASSES];
} eie_eval_t;

/* Top-1, top-5, mean loss and per-class accuracy over ds; threads 0 = online cores. */
eie_status_t eie_evaluate(const eie_mlp_t *mlp, const eie_dataset_t *ds, unsigned threads,
                          eie_eval_t *eval_out, eie_error_t *err);

/*
 * The counting behind eie_evaluate, for callers that compute scores another
 * way (an engine backend). Start from a zeroed eie_eval_t with classes set;
 * eie_eval_add counts one example: its scores over the classes and its
 * label (the rank of the label is how many classes score higher, ties
 * going to the lower index: 0 is a top-1 hit, < 5 a top-5 hit);
 * eie_eval_merge folds another count over the same classes in (loss
 * included); eie_eval_finish sets top1 and top5 from the counts.
 */
void eie_eval_add(eie_eval_t *ev, const float *scores, uint8_t label);
void eie_eval_merge(eie_eval_t *ev, const eie_eval_t *part);
void eie_eval_finish(eie_eval_t *ev);

#ifdef __cplusplus
}
#endif
#endif
