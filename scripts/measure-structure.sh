#!/bin/sh
# Measures the structure of trained layers that `eiectl simulate --benchmark`
# workload 3 (structured) draws its synthetic layers with: trains three dense
# networks on Fashion-MNIST with eiectl, then fits row sigma, column sigma and
# rho on each FC layer with a ReLU input and at least 64 rows and columns
# (eiectl simulate --structure; engine/sim/README.md, Calibration).
# The mean it prints last is eie_sim_bench_structure_default() (engine/sim/bench.c).
# The same measured on these networks pruned and retrained by eiectl compress
# --data (not the default; the commands and numbers): engine/sim/README.md.
# Usage: scripts/measure-structure.sh [BUILD_DIR] [OUT_DIR]
# Time on 2 shared cores: about 7 minutes (training 6.5, fits 15 s).
set -eu
BUILD=${1:-build}
OUT=${2:-structure-nets}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
EIECTL="$BUILD/client/eiectl"
mkdir -p "$OUT"
"$EIECTL" train --layers 784,300,100,10 --data "$DATA" --epochs 20 --seed 1 \
    -o "$OUT/lenet-300-100.onnx"
"$EIECTL" train --layers 784,512,512,512,10 --data "$DATA" --epochs 20 --seed 1 \
    -o "$OUT/mlp-512x3.onnx"
"$EIECTL" train --layers 784,1024,1024,1024,10 --data "$DATA" --epochs 5 --seed 1 \
    -o "$OUT/mlp-1024x3.onnx"
"$EIECTL" simulate --structure \
    "$OUT/lenet-300-100.onnx,$OUT/mlp-512x3.onnx,$OUT/mlp-1024x3.onnx" --data "$DATA"
