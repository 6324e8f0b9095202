#!/bin/sh
# Reproduces Deep Compression on LeNet-300-100 with eiectl alone, on
# Fashion-MNIST from Debian's dataset-fashion-mnist:
#   1. dense baseline (eiectl train)
#   2. pruning + trained quantization + Huffman with retraining (eiectl compress)
#   3. DSD (dense -> sparse -> dense) vs the dense baseline
# Usage: scripts/reproduce-lenet.sh [BUILD_DIR] [OUT_DIR]
set -eu
BUILD=${1:-build}
OUT=${2:-lenet-repro}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
EIECTL="$BUILD/client/eiectl"
EPOCHS=${EPOCHS:-20}
mkdir -p "$OUT"

echo "== dense baseline"
"$EIECTL" train --layers 784,300,100,10 --data "$DATA" --epochs "$EPOCHS" --seed 1 \
    -o "$OUT/lenet-dense.onnx"
"$EIECTL" eval "$OUT/lenet-dense.onnx" --data "$DATA" | head -1

echo "== P+Q+H with retraining"
"$EIECTL" compress "$OUT/lenet-dense.onnx" -o "$OUT/lenet.eie" \
    --sparsity 0.93,0.92,0.75 --prune-iterations 3 --bits 5 \
    --retrain-epochs 3 --data "$DATA" --seed 1
"$EIECTL" eval "$OUT/lenet.eie" --data "$DATA" | head -1

echo "== DSD from the dense baseline (3 sparse + 3 re-dense epochs); top1_before = DSD float accuracy"
"$EIECTL" compress "$OUT/lenet-dense.onnx" -o "$OUT/lenet-dsd-q8.eie" --dsd \
    --no-prune --no-quant --retrain-epochs 0 --data "$DATA" --seed 1 --json
