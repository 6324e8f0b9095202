#!/usr/bin/env python3
"""walk-profile.py - where the batch-1 column walk spends its time, cold and warm.

The VM this project is measured on has no hardware counters (`perf stat`
reports cycles and instructions as "not supported"), so this takes what a
profile can still show without them: perf's cpu-clock sampling of one
layer's batch-1 walk (`eie-bench --methods cpu --batches 1 --threads 1`),
cold and warm, split into the walk's column set-up, its step loop (one
vector of entries a step) and what follows the loop (a column's last
entries), with the loop's instructions counted from the code itself: the
step is straight-line, so instructions a step / entries a step is the
instructions an entry the walk executes, whatever the counters say.

    tests/bench/walk-profile.py [--build build] [--layer Alex-6]
                                [--reps 2001] [--freq 2000]

Sampling at 2 kHz moves eie-bench's medians by a few percent here (25 kHz
more than doubled the cold one); both medians are printed so a run whose
sampling disturbed the walk shows it.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Entries one step of each variant's batch-1 walk takes (kernels.c,
# PERMUTE_B1_BODY's NL).
STEP_ENTRIES = {"avx512": 16, "avx2": 8}

# Instruction classes of the step, by mnemonic, in the order printed; a
# store is any move whose destination is memory, and a vmovss from memory
# the load half of an accumulator's load and add.
ACC, STORE, OTHER = "accumulator load and add", "stores to memory", "other (entry words, loop)"
CLASSES = [
    (ACC, re.compile(r"^vaddss$")),
    ("row index (bextr, lea, shift)", re.compile(r"^(bextr|lea|shr|sar|and|movzwl)$")),
    ("lane moves (shuffle, align, extract)",
     re.compile(r"^(vshufps|valignd|vextract\w+|vunpck\w+|vpermilps|vmovshdup|vmovhlps)$")),
    ("entries to products (load, permute)", re.compile(r"^(vpmovzx\w+|vpermps|vpermt2ps)$")),
]


def classify(mn, ops):
    if mn.startswith(("vmov", "mov")) and ops.rstrip().endswith(")"):
        return STORE
    if mn == "vmovss" and ops.startswith("("):
        return ACC
    return next((name for name, rx in CLASSES if rx.match(mn)), OTHER)


ANNOT = re.compile(r"^\s*([0-9.]+)\s*:\s+([0-9a-f]+):\s+(\S+)\s*(.*)$")


def run(cmd):
    r = subprocess.run(cmd, text=True, capture_output=True)
    if r.returncode != 0:  # perf refused (perf_event_paranoid), or eie-bench failed
        sys.exit(f"walk-profile: {' '.join(cmd)} exited {r.returncode}:\n{r.stderr.strip()}")
    return r


def profile(bench, perf, layer, reps, freq, cold, tmp):
    data = os.path.join(tmp, "cold.data" if cold else "warm.data")
    args = [bench, "--batches", "1", "--threads", "1", "--methods", "cpu", "--layers", layer,
            "--reps", str(reps)] + (["--cold"] if cold else [])
    out = run([perf, "record", "-q", "-e", "cpu-clock", "-F", str(freq), "-o", data, "--"] + args)
    row = next((l for l in out.stdout.splitlines() if l.startswith(layer + " ")), None)
    if row is None:
        sys.exit(f"walk-profile: eie-bench printed no row for {layer}:\n{out.stdout}{out.stderr}")
    median_us = float(row.split()[3])
    walked = re.search(r"walked \S+ cpu ([0-9.]+) cyc an entry", row)
    header = [l for l in out.stdout.splitlines() if l.startswith(("cpu:", "engine:"))]
    rep = run([perf, "report", "-i", data, "--stdio", "--sort", "sym", "-n"]).stdout
    syms = re.findall(r"^\s*[0-9.]+%\s+(\d+)\s+\[\.\]\s+(spmv_\w*_b1_\w+)", rep, re.M)
    if not syms:
        sys.exit("walk-profile: no samples in a spmv_*_b1_* kernel (is the layer's input sparse?)")
    samples, sym = max((int(n), s) for n, s in syms)
    ann = run([perf, "annotate", "-i", data, "--stdio", "-s", sym]).stdout
    ins = []
    for line in ann.splitlines():
        m = ANNOT.match(line)
        if m:
            ins.append((int(m.group(2), 16), float(m.group(1)), m.group(3), m.group(4)))
    return {"sym": sym, "samples": samples, "ins": ins, "median_us": median_us,
            "walked": walked.group(1) if walked else "?", "header": header}


def step_loop(ins):
    """The innermost loop (a backward jump's body) that holds at least half
    the kernel's samples: the step loop, not the column loop around it."""
    loops = []
    for addr, _, mn, ops in ins:
        m = re.match(r"([0-9a-f]+)\s*<", ops)
        if mn.startswith("j") and m and int(m.group(1), 16) < addr:
            lo = int(m.group(1), 16)
            loops.append((addr - lo, lo, addr, sum(p for a, p, _, _ in ins if lo <= a <= addr)))
    hot = sorted(l for l in loops if l[3] >= 50.0)
    if not hot:
        sys.exit("walk-profile: no loop holds half the kernel's samples")
    return hot[0][1:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--layer", default="Alex-6")
    ap.add_argument("--reps", type=int, default=2001)
    ap.add_argument("--freq", type=int, default=2000)
    o = ap.parse_args()
    perf = shutil.which("perf")
    bench = os.path.join(o.build, "tests", "bench", "eie-bench")
    if perf is None:
        sys.exit("walk-profile: perf not found (Debian package linux-perf)")
    if not os.access(bench, os.X_OK):
        sys.exit(f"walk-profile: {bench} not found; build first (meson compile -C {o.build})")
    with tempfile.TemporaryDirectory() as tmp:
        cold = profile(bench, perf, o.layer, o.reps, o.freq, True, tmp)
        warm = profile(bench, perf, o.layer, o.reps, o.freq, False, tmp)
    for l in warm["header"]:
        print(l)
    lo, hi, _ = step_loop(warm["ins"])
    step = [(a, mn, ops) for a, _, mn, ops in warm["ins"] if lo <= a <= hi]
    per = next((n for v, n in STEP_ENTRIES.items() if warm["sym"].endswith("_" + v)), None)
    print(f"kernel {warm['sym']}: step loop {lo:x}..{hi:x}, {len(step)} instructions a step"
          + (f" of {per} entries, {len(step) / per:.2f} an entry" if per else ""))
    for name, p in (("cold", cold), ("warm", warm)):
        ins = p["ins"]
        before = sum(s for a, s, _, _ in ins if a < lo)
        inside = sum(s for a, s, _, _ in ins if lo <= a <= hi)
        after = sum(s for a, s, _, _ in ins if a > hi)
        print(f"{name}: median {p['median_us']:.1f} us under sampling, walked at "
              f"{p['walked']} cycles an entry; {p['samples']} samples in the kernel: "
              f"column set-up {before:.1f}%, step loop {inside:.1f}%, after the loop "
              f"{after:.1f}%")
    print(f"{'the step loop by class':40} {'instrs':>6} {'cold %':>7} {'warm %':>7}")
    rows = {name: [0, 0.0, 0.0] for name in [n for n, _ in CLASSES] + [STORE, OTHER]}
    cold_at = {a: s for a, s, _, _ in cold["ins"]}
    warm_at = {a: s for a, s, _, _ in warm["ins"]}
    for a, mn, ops in step:
        row = rows[classify(mn, ops)]
        row[0] += 1
        row[1] += cold_at.get(a, 0.0)
        row[2] += warm_at.get(a, 0.0)
    for name, (n, c, w) in rows.items():
        print(f"{name:40} {n:6d} {c:7.1f} {w:7.1f}")


if __name__ == "__main__":
    main()
