#!/bin/sh
# Regenerates the bundled demo model models/lenet/1/model.eie (named "lenet";
# tensors "input" and "output"): LeNet-300-100 trained by `eiectl train` on
# Fashion-MNIST (Debian's dataset-fashion-mnist), then pruned, quantized
# (4/4/5 bits) and Huffman-coded by `eiectl compress` with retraining. Same
# commands as steps 1-2 of scripts/reproduce-lenet.sh.
# Usage: scripts/make-demo-model.sh [BUILD_DIR]
set -eu
BUILD=${1:-build}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
EIECTL="$BUILD/client/eiectl"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$EIECTL" train --layers 784,300,100,10 --data "$DATA" --epochs "${EPOCHS:-20}" --seed 1 \
    -o "$TMP/lenet-dense.onnx"
mkdir -p models/lenet/1
"$EIECTL" compress "$TMP/lenet-dense.onnx" -o models/lenet/1/model.eie \
    --sparsity 0.93,0.92,0.75 --prune-iterations 3 --bits 4,4,5 \
    --retrain-epochs 3 --lr 0.2 --data "$DATA" --seed 1 --name lenet
