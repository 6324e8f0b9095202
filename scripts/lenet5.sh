#!/bin/sh
# Deep Compression of LeNet-5 (Caffe's layout: conv 20 5x5, maxpool 2, conv 50
# 5x5, maxpool 2, fc 500, relu, fc 10) on Fashion-MNIST from Debian's
# dataset-fashion-mnist, with eiectl alone:
#   1. dense baseline (eiectl train --arch lenet5, EPOCHS epochs, lr 0.01 as Caffe's)
#   2. pruning (3 prune -> retrain rounds) + trained quantization (8 bits conv,
#      5 bits fc, centroid fine-tuning) + Huffman coding (eiectl compress --data)
#   3. both evaluated on the cpu backend (eiectl eval); the per-layer table
#      (weights kept, bits, ratio) and the targets: >= 39x, <= 0.5 pt top-1 loss
# Usage: scripts/lenet5.sh [BUILD_DIR] [OUT_DIR]
#   EPOCHS (10); SHIP=1 copies the result to models/lenet5/1/model.eie;
#   an existing OUT_DIR/lenet5-dense.eie is reused (delete it to retrain).
set -eu
BUILD=${1:-build}
OUT=${2:-lenet5-repro}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
EIECTL="$BUILD/client/eiectl"
EPOCHS=${EPOCHS:-10}
SPARSITY=${SPARSITY:-0.34,0.9,0.95,0.81}
BITS=${BITS:-8,8,5,5}
mkdir -p "$OUT"
T0=$(date +%s)
step() { echo "== $* ($(($(date +%s) - T0)) s)"; }
top1() { sed -n 's/.*top-1 \([0-9.]*\)%.*/\1/p' | head -1; }

if [ ! -f "$OUT/lenet5-dense.eie" ]; then
    step "dense LeNet-5, $EPOCHS epochs"
    "$EIECTL" train --arch lenet5 --data "$DATA" --epochs "$EPOCHS" --lr 0.01 --seed 1 \
        -o "$OUT/lenet5-dense.eie" | tee "$OUT/dense.log"
else
    step "dense LeNet-5: reusing $OUT/lenet5-dense.eie"
fi
DENSE=$("$EIECTL" eval "$OUT/lenet5-dense.eie" --data "$DATA" | top1)

# Sparsity per layer (conv1, conv2, fc1, fc2): 66% / 10% / 5% / 19% of the
# weights kept, reached in 3 prune -> retrain rounds of 1 epoch, then 1 epoch
# of centroid fine-tuning; retraining at --lr / 10 = 0.005.
step "P+Q+H with retraining: --sparsity $SPARSITY --bits $BITS"
"$EIECTL" compress "$OUT/lenet5-dense.eie" -o "$OUT/lenet5.eie" --sparsity "$SPARSITY" \
    --bits "$BITS" --prune-iterations 3 --retrain-epochs 1 --lr 0.05 --data "$DATA" \
    --seed 1 --name lenet5 \
    --description "LeNet-5 (Caffe layout) on Fashion-MNIST, pruned, quantized (8-bit conv, 5-bit fc) and Huffman-coded by scripts/lenet5.sh" |
    tee "$OUT/compress.log"
COMP=$("$EIECTL" eval "$OUT/lenet5.eie" --data "$DATA" | top1)
RATIO=$(sed -n 's/.* \([0-9.]*\)x smaller).*/\1/p' "$OUT/compress.log")
step "done"
echo "dense top-1 $DENSE%, compressed top-1 $COMP% (cpu backend), ${RATIO}x smaller"
awk -v d="$DENSE" -v c="$COMP" -v r="$RATIO" 'BEGIN {
    printf "loss %.2f pt (target <= 0.5): %s; ratio %.1fx (target >= 39): %s\n",
        d - c, (d - c <= 0.5 ? "met" : "MISSED"), r, (r >= 39 ? "met" : "MISSED") }'
if [ "${SHIP:-0}" = 1 ]; then
    mkdir -p models/lenet5/1
    cp "$OUT/lenet5.eie" models/lenet5/1/model.eie
    echo "wrote models/lenet5/1/model.eie"
fi
