#!/bin/sh
# Regenerates the bundled demo model models/charlm/1/model.eie (named
# "charlm"; input "chars" [T,1,75] one-hot bytes, output "probs" [T,1,75]):
# a byte-level language model in the shape of EIE's NeuralTalk layers
# (We 32 -> LSTM 128 -> Wd), trained by eie's own trainer (engine/train/lm.c)
# on the license texts Debian ships in base-files, pruned to NT-We 10%,
# NT-LSTM 10%, NT-Wd 11% with masked retraining, and weight-shared at 4 bits.
# The last 10% of the text (the end of GPL-3) is held out for perplexity.
# Usage: scripts/make-lm-model.sh [BUILD_DIR]
set -eu
BUILD=${1:-build}
L=/usr/share/common-licenses
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cat "$L/GPL-1" "$L/GPL-2" "$L/LGPL-2.1" "$L/GFDL-1.3" "$L/Apache-2.0" "$L/MPL-2.0" \
    "$L/GPL-3" > "$TMP/corpus.txt"
"$BUILD/tests/tools/eie-lm" "$TMP/corpus.txt" "$TMP" --epochs "${EPOCHS:-12}" \
    --rounds "${ROUNDS:-3}" --retrain "${RETRAIN:-4}"
mkdir -p models/charlm/1
cp "$TMP/lm.eie" models/charlm/1/model.eie
"$BUILD/tests/tools/eie-lm" --bench "$TMP/corpus.txt" "$TMP" 21
