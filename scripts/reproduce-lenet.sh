#!/bin/sh
# Reproduces Deep Compression on LeNet-300-100 with eiectl alone, on
# Fashion-MNIST from Debian's dataset-fashion-mnist:
#   1. dense baseline (eiectl train, EPOCHS epochs)
#   2. pruning + trained quantization + Huffman with retraining (eiectl compress)
#      target: >= 40x smaller than float32 dense, top-1 within 0.5 points
#   3. DSD (dense -> sparse -> dense) vs dense at equal epochs: DSD starts from
#      the EPOCHS-epoch baseline and adds 3 sparse + 3 re-dense epochs, so it is
#      compared with a dense model trained EPOCHS + 6 epochs from scratch
# Usage: scripts/reproduce-lenet.sh [BUILD_DIR] [OUT_DIR]
# Results and timings: scripts/README.md.
set -eu
BUILD=${1:-build}
OUT=${2:-lenet-repro}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
EIECTL="$BUILD/client/eiectl"
EPOCHS=${EPOCHS:-20}
DSD_EPOCHS=6 # eie_dsd_opts_default(): 3 sparse + 3 re-dense epochs
mkdir -p "$OUT"
T0=$(date +%s)
step() { echo "== $* ($(($(date +%s) - T0)) s)"; }

step "dense baseline, $EPOCHS epochs"
"$EIECTL" train --layers 784,300,100,10 --data "$DATA" --epochs "$EPOCHS" --seed 1 \
    -o "$OUT/lenet-dense.onnx"
"$EIECTL" eval "$OUT/lenet-dense.onnx" --data "$DATA" | head -1

# Pruning to 7% / 8% / 25% of the weights in 3 prune -> retrain rounds of 3
# epochs, k-means to 4 / 4 / 5 bits, 3 epochs of centroid fine-tuning.
# --lr 0.2: retraining runs at 0.2/10 = 0.02 (the baseline trained at 0.05).
step "P+Q+H with retraining"
"$EIECTL" compress "$OUT/lenet-dense.onnx" -o "$OUT/lenet.eie" \
    --sparsity 0.93,0.92,0.75 --prune-iterations 3 --bits 4,4,5 \
    --retrain-epochs 3 --lr 0.2 --data "$DATA" --seed 1 --name lenet
"$EIECTL" eval "$OUT/lenet.eie" --data "$DATA" | head -1

step "DSD from the dense baseline ($EPOCHS + $DSD_EPOCHS epochs); top1_before = DSD float accuracy"
"$EIECTL" compress "$OUT/lenet-dense.onnx" -o "$OUT/lenet-dsd-q8.eie" --dsd \
    --no-prune --no-quant --retrain-epochs 0 --data "$DATA" --seed 1 --json

step "dense control at equal epochs: $((EPOCHS + DSD_EPOCHS)) epochs from scratch"
"$EIECTL" train --layers 784,300,100,10 --data "$DATA" --epochs $((EPOCHS + DSD_EPOCHS)) \
    --seed 1 -o "$OUT/lenet-dense-$((EPOCHS + DSD_EPOCHS)).onnx"
"$EIECTL" eval "$OUT/lenet-dense-$((EPOCHS + DSD_EPOCHS)).onnx" --data "$DATA" | head -1
step "done"
