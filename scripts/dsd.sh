#!/bin/sh
# DSD (Han et al., ICLR 2017) against its two controls, over several seeds:
#   dense    EPOCHS + 6 epochs from scratch (equal epochs)
#   DSD      EPOCHS dense, then 3 epochs sparse (30% pruned) + 3 re-dense at lr/10
#   restart  EPOCHS dense, then the same 3 + 3 epochs with nothing pruned
#            (--dsd-sparsity 0: only the learning-rate restart)
# and prints each run's top-1 and the mean and spread (sample standard
# deviation, min..max) per method.
# Usage: scripts/dsd.sh [BUILD_DIR] [OUT_DIR]
#   NET="--layers 784,300,100,10" (default) or NET="--arch lenet5"
#   EPOCHS (10), SEEDS ("1 2 3"), LR (0.05: the training rate; DSD's sparse phase
#   restarts at it, as in the paper), LIMIT (0: all training images; N: the
#   first N), DATA (Debian's dataset-fashion-mnist)
set -eu
BUILD=${1:-build}
OUT=${2:-dsd-repro}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
NET=${NET:---layers 784,300,100,10}
EPOCHS=${EPOCHS:-10}
LR=${LR:-0.05}
LIMIT=${LIMIT:-0}
SEEDS=${SEEDS:-1 2 3}
EIECTL="$BUILD/client/eiectl"
mkdir -p "$OUT"
case "$NET" in *lenet5*) EXT=eie ;; *) EXT=onnx ;; esac
RES="$OUT/results.txt"
: >"$RES"
top1_train() { sed -n 's/.*test top-1 \([0-9.]*\)%.*/\1/p'; }
top1_json() { sed -n 's/.*"top1_before":\([0-9.]*\).*/\1/p' | awk '{ printf "%.2f\n", 100 * $1 }'; }
for s in $SEEDS; do
    # shellcheck disable=SC2086
    "$EIECTL" train $NET --data "$DATA" --epochs "$EPOCHS" --lr "$LR" --limit "$LIMIT" --seed "$s" -o "$OUT/base-$s.$EXT" >"$OUT/base-$s.log"
    echo "base $s $(top1_train <"$OUT/base-$s.log")" >>"$RES"
    # shellcheck disable=SC2086
    "$EIECTL" train $NET --data "$DATA" --epochs $((EPOCHS + 6)) --lr "$LR" --limit "$LIMIT" --seed "$s" -o "$OUT/dense-$s.$EXT" >"$OUT/dense-$s.log"
    echo "dense $s $(top1_train <"$OUT/dense-$s.log")" >>"$RES"
    for m in dsd restart; do
        sp=0.3
        [ "$m" = restart ] && sp=0
        "$EIECTL" compress "$OUT/base-$s.$EXT" -o "$OUT/$m-$s.eie" --dsd --dsd-sparsity $sp \
            --no-prune --no-quant --retrain-epochs 0 --lr "$LR" --limit "$LIMIT" --data "$DATA" --seed "$s" --json >"$OUT/$m-$s.json"
        echo "$m $s $(top1_json <"$OUT/$m-$s.json")" >>"$RES"
    done
    cat "$RES"
done
echo "method   epochs  runs  mean top-1  std    min    max    (seeds: $SEEDS)"
for m in base dense dsd restart; do
    ep=$((EPOCHS + 6))
    [ "$m" = base ] && ep=$EPOCHS
    awk -v m="$m" -v ep="$ep" '$1 == m { n++; s += $3; q += $3 * $3; if (n == 1 || $3 < lo) lo = $3; if (n == 1 || $3 > hi) hi = $3 }
        END { sd = n > 1 ? sqrt((q - s * s / n) / (n - 1)) : 0; printf "%-8s %6d  %4d  %9.2f%%  %5.2f  %5.2f  %5.2f\n", m, ep, n, s / n, sd, lo, hi }' "$RES"
done
# Paired by seed: what DSD adds over each control.
awk '{ v[$1, $2] = $3; seen[$2] = 1 }
    END { for (c = 0; c < 2; c++) {
            m = c ? "restart" : "dense"; n = 0; s = 0; q = 0
            for (k in seen) { d = v["dsd", k] - v[m, k]; n++; s += d; q += d * d }
            printf "DSD - %-8s mean %+.2f pt, std %.2f over %d seeds\n", m, s / n,
                (n > 1 ? sqrt((q - s * s / n) / (n - 1)) : 0), n } }' "$RES"
