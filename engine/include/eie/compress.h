/*
 * eie/compress.h - Deep Compression (Han, Mao, Dally, ICLR 2016) of a dense
 * network into an .eie model: pruning with retraining (NIPS 2015), trained
 * quantization by 1-D k-means with centroid fine-tuning, Huffman coding (done
 * by the .eie writer), and DSD training (ICLR 2017).
 *
 *     eie_compress_opts_t o = eie_compress_opts_default();   // P+Q+H, 5 bits
 *     o.sparsity[0] = 0.92; o.sparsity[1] = 0.91; o.sparsity[2] = 0.74;
 *     o.train = train_set;  o.test = test_set;  o.retrain_epochs = 2;
 *     eie_builder_t *b;  eie_compress_report_t rep;
 *     if (eie_compress(net, &o, &b, &rep, &err) == EIE_STATUS_OK) {
 *         eie_builder_write_file(b, "lenet.eie", &err);
 *         eie_compress_report_finish(&rep, "lenet.eie", &err);  // Huffman figures
 *         eie_compress_report_print(stdout, &rep);
 *     }
 *     eie_builder_free(b);
 */
#ifndef EIE_COMPRESS_H
#define EIE_COMPRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "eie/model.h"
#include "eie/status.h"
#include "eie/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most FC layers the driver handles (per-layer options are arrays). */
#define EIE_COMPRESS_MAX_FC 32
/* bits[k] of a layer kept exactly: a float32 per nonzero (the format's exact storage). */
#define EIE_COMPRESS_EXACT_BITS 32

/* --- pruning (prune.c) --- */

/* Zeroes the smallest |w| of FC layer l so that a fraction sparsity (0..1) is zero; sets the mask. */
eie_status_t eie_prune_sparsity(eie_mlp_layer_t *l, double sparsity, eie_error_t *err);
/* Zeroes |w| < q x std(w) of FC layer l (NIPS 2015 sec. 3.2); sets the mask. */
eie_status_t eie_prune_std(eie_mlp_layer_t *l, double q, eie_error_t *err);
/* Fraction of FC layer l's weights that are nonzero. */
double eie_layer_density(const eie_mlp_layer_t *l);

/* --- k-means quantization (kmeans.c) --- */

typedef enum {
    EIE_KMEANS_LINEAR = 0,  /* evenly over [min, max]: best in Deep Compression sec. 3.2 */
    EIE_KMEANS_RANDOM = 1,  /* k distinct values drawn from the data */
    EIE_KMEANS_DENSITY = 2, /* evenly over the CDF of the data */
} eie_kmeans_init_t;

/* Name of an initialisation ("linear"); parses with eie_kmeans_init_parse. */
const char *eie_kmeans_init_name(eie_kmeans_init_t init);
/* Parses "linear", "random" or "density"; returns -1 if unknown. */
int eie_kmeans_init_parse(const char *s);

/*
 * 1-D k-means of n values into k centroids (sorted ascending). An empty
 * cluster is re-seeded at the value farthest from its centroid. assign_out
 * (n bytes, may be NULL) gets each value's cluster; iters_out may be NULL.
 */
eie_status_t eie_kmeans_1d(const float *x, size_t n, unsigned k, eie_kmeans_init_t init,
                           uint64_t seed, unsigned max_iter, float *centroids_out,
                           uint8_t *assign_out, unsigned *iters_out, eie_error_t *err);

/*
 * Weight-shares FC layer l with 2^bits codes: code 0 is the pruned weight
 * (0.0), codes 1.. are k-means centroids of the nonzero weights. Sets
 * l->codes, l->codebook, l->code_bits and rewrites l->w from them.
 */
eie_status_t eie_quantize_layer(eie_mlp_layer_t *l, unsigned bits, eie_kmeans_init_t init,
                                uint64_t seed, eie_error_t *err);

/* --- DSD (dsd.c) --- */

typedef struct eie_dsd_opts {
    double sparsity;          /* fraction pruned in the sparse phase, every fc and conv layer */
    unsigned sparse_epochs;   /* retraining under the mask */
    unsigned redense_epochs;  /* retraining with the mask removed */
    float redense_lr_scale;   /* re-dense learning rate = train.lr x this (0.1 in the paper) */
    eie_train_opts_t train;   /* optimiser settings of both phases */
} eie_dsd_opts_t;

/* Sparsity 0.3, 3 + 3 epochs, re-dense lr x 0.1. */
eie_dsd_opts_t eie_dsd_opts_default(void);

/* Dense -> sparse (prune, retrain under mask) -> re-dense (mask removed, pruned weights restart at 0). */
eie_status_t eie_dsd_train(eie_mlp_t *mlp, const eie_dataset_t *ds, const eie_dsd_opts_t *opts,
                           eie_error_t *err);

/* --- the driver (compress.c) --- */

typedef struct eie_compress_opts {
    int prune, quantize, huffman;        /* stages, each switchable */
    double sparsity[EIE_COMPRESS_MAX_FC]; /* per FC layer; < 0: use prune_std */
    double prune_std;                     /* q when a layer has no sparsity; 0 = no pruning */
    unsigned prune_iterations;            /* prune -> retrain rounds, sparsity reached gradually */
    unsigned bits[EIE_COMPRESS_MAX_FC];   /* per sparse layer, 1..8, or 32: exact */
    eie_kmeans_init_t kmeans_init;
    unsigned retrain_epochs;              /* per prune round and for centroid fine-tuning */
    eie_train_opts_t train;               /* optimiser of retraining (lr is the original's) */
    float retrain_lr_scale;               /* retrain at lr x this (1/10 in NIPS 2015 for LeNet) */
    const eie_dataset_t *train_set;       /* NULL: no retraining */
    const eie_dataset_t *test_set;        /* NULL: no accuracy figures */
    const char *name, *description;       /* of the model */
    uint64_t seed;
} eie_compress_opts_t;

/* All stages on, sparsity 0.9 everywhere, 5 bits, linear init, 1 retrain epoch, lr scale 0.1. */
eie_compress_opts_t eie_compress_opts_default(void);

typedef struct eie_compress_layer_report {
    uint32_t rows, cols;
    uint64_t weights, nnz, entries; /* entries: EIE (code, run) pairs, fillers included */
    double density;
    unsigned bits;                  /* weight bits after P+Q */
    double bits_huffman;            /* weight bits per entry after Huffman */
    double index_bits;              /* index (zero-run) bits per entry after P+Q: 4 */
    double index_bits_huffman;      /* after Huffman */
    uint64_t bytes_pq;              /* P+Q: entries x (bits + 4) / 8 + codebook + bias */
    uint64_t bytes;                 /* in the .eie file */
    eie_layer_kind_t kind;          /* FC (also when 0) or CONV2D */
} eie_compress_layer_report_t;

typedef struct eie_compress_report {
    size_t n_layers;
    eie_compress_layer_report_t layers[EIE_COMPRESS_MAX_FC];
    uint64_t dense_bytes;  /* float32 weights and biases */
    uint64_t bytes_pq;     /* sum of the layers after P+Q */
    uint64_t file_bytes;   /* the whole .eie file */
    int have_accuracy;
    double top1_before, top5_before, top1_after, top5_after;
    int huffman;           /* the Huffman stage was on */
} eie_compress_report_t;

/*
 * Runs the enabled stages on mlp (changed in place: pruned, weight-shared,
 * retrained) and builds the model. The caller owns *builder_out. The report's
 * file figures are filled by eie_compress_report_finish.
 */
eie_status_t eie_compress(eie_mlp_t *mlp, const eie_compress_opts_t *opts,
                          eie_builder_t **builder_out, eie_compress_report_t *report_out,
                          eie_error_t *err);

/*
 * Compresses every sparse layer (fc and conv2d) of the graph model g and
 * copies the rest of the graph (tensor names, shapes, other nodes). The
 * per-layer options (sparsity, bits) index the sparse layers in graph
 * order, conv and fc alike; with quantize off a layer keeps its pruned
 * weights exactly. trained may be NULL, or an FC chain that eie_compress
 * has compressed (and retrained): its FC layers, in order, replace g's fc
 * nodes (same shapes), and report_out keeps its accuracy figures. No
 * retraining happens here. The caller owns *builder_out.
 */
eie_status_t eie_compress_graph(const eie_model_t *g, const eie_mlp_t *trained,
                                const eie_compress_opts_t *opts, eie_builder_t **builder_out,
                                eie_compress_report_t *report_out, eie_error_t *err);

/* Fills the Huffman and byte figures from the written model file. */
eie_status_t eie_compress_report_finish(eie_compress_report_t *report, const char *path,
                                        eie_error_t *err);

/* Prints the Deep Compression table (per layer and total). */
void eie_compress_report_print(FILE *out, const eie_compress_report_t *report);
/* Same as one JSON object. */
void eie_compress_report_json(FILE *out, const eie_compress_report_t *report);

/* Builds a dense network from a loaded .eie model (decoded weights). The caller owns *mlp_out. */
eie_status_t eie_mlp_from_model(const eie_model_t *model, eie_mlp_t **mlp_out, eie_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
