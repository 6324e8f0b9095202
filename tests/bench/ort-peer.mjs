#!/usr/bin/env node
// ort-peer: the cpu backend against onnxruntime, a dense peer, on
// eie-bench's fc layers.
//
//   node tests/bench/ort-peer.mjs [--build DIR] [--ort DIR] [--layers A,B]
//        [--batches 1,16] [--threads 1,2] [--reps N] [--rounds N] [--bits N]
//        [--conv]
//
// Each layer is written by `eie-bench --export` (the same weights as an
// eie-bench run with the same --layers and --bits; the model as ONNX, its
// pruned weights dense in one Gemm with the bias, or with --conv the
// convolution table's layers, at batch 1, in one Conv), and onnxruntime's CPU
// provider runs it as shipped: graph optimizations on, intra-op threads =
// --threads (its own pool, spinning as it does by default), one session per
// thread count. Its outputs are checked against eie-bench's float64
// reference within the same bounds as every eie-bench method (exit 3 if
// they disagree). Then, per round, `eie-bench --methods cpu` times the
// engine and this program times onnxruntime, the two alternating (engine,
// onnxruntime, engine, onnxruntime, ...): in each, every (batch, threads)
// runs a second untimed (ROUND_WARM_US), then each timed run follows 3 ms
// of untimed runs; medians of --reps. Times are for a whole call from
// JavaScript (tensor reused; the N-API call and the promise included), so
// small layers carry onnxruntime's per-call cost. To spare onnxruntime that
// cost, each round also times it on eie-bench's `tiny` layer (150 x 203)
// at batch 1 on one thread, and each ratio is printed a second time with
// that floor taken off onnxruntime's time (tiny's own arithmetic too: in
// onnxruntime's favour).
//
// onnxruntime-node comes from the npm registry:
// deploy/install-bench-deps.sh puts it under build/bench-npm. --build:
// the meson build directory (default $EIE_BUILD_ROOT, else build); --ort:
// the node_modules holding onnxruntime-node (default
// <build>/bench-npm/node_modules). Exit status: 0, 2 for a usage error, 3
// when onnxruntime disagrees with the reference, 1 for anything else.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const LAYERS = ['Alex-6', 'Alex-7', 'Alex-8', 'VGG-6', 'VGG-7', 'VGG-8', 'NT-We', 'NT-Wd', 'NT-LSTM'];
const CONV_LAYERS = ['LeNet-c1', 'LeNet-c2', 'Alex-c1', 'Alex-c2', 'Alex-c3', 'Alex-c4', 'Alex-c5'];
const WARM_US = 3000;
// A session's first runs are slow (NT-Wd at batch 16 on one thread: 3.4
// ms a run after 45 runs, 1.5-1.6 ms after 150), and so are its runs for
// some 300 ms after an eie-bench process has run (3.4-3.6 ms, then 1.35,
// in one node process; why, this VM's missing counters do not show): in
// every round each (batch, threads) runs ROUND_WARM_US, untimed, before its
// timed runs.
const ROUND_WARM_US = 1000000;

function usage(msg) {
  if (msg) console.error(`ort-peer: ${msg}`);
  console.error('usage: node tests/bench/ort-peer.mjs [--build DIR] [--ort DIR] [--layers A,B]\n' +
                '       [--batches 1,16] [--threads 1,2] [--reps N] [--rounds N] [--bits N] [--conv]');
  process.exit(2);
}

function ints(flag, text, lo, hi) {
  const v = text.split(',').map((s) => Number(s));
  if (v.length === 0 || v.some((n) => !Number.isInteger(n) || n < lo || n > hi))
    usage(`${flag} '${text}': expected integers in ${lo}..${hi}, comma-separated`);
  return v;
}

function parseArgs(argv) {
  const o = {
    build: process.env.EIE_BUILD_ROOT || 'build',
    ort: null,
    layers: null,
    batches: null,
    conv: false,
    threads: [1, 2],
    reps: 15,
    rounds: 2,
    bits: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help') usage();
    if (a === '--conv') { o.conv = true; continue; }
    if (i + 1 >= argv.length) usage(`unknown option or missing value: '${a}'`);
    const v = argv[++i];
    if (a === '--build') o.build = v;
    else if (a === '--ort') o.ort = v;
    else if (a === '--layers') o.layers = v.split(',').filter((s) => s !== '');
    else if (a === '--batches') o.batches = ints(a, v, 1, 16);
    else if (a === '--threads') o.threads = ints(a, v, 1, 2);
    else if (a === '--reps') [o.reps] = ints(a, v, 1, 100000);
    else if (a === '--rounds') [o.rounds] = ints(a, v, 1, 100);
    else if (a === '--bits') [o.bits] = ints(a, v, 1, 8);
    else usage(`unknown option '${a}'`);
  }
  const names = o.conv ? CONV_LAYERS : [...LAYERS, 'tiny'];
  if (o.layers === null) o.layers = o.conv ? CONV_LAYERS : LAYERS;
  if (o.layers.length === 0) usage("--layers '': no layer named");
  for (const l of o.layers)
    if (!names.includes(l)) usage(`--layers: no layer '${l}' (expected one of ${names.join(', ')})`);
  if (o.batches === null) o.batches = o.conv ? [1] : [1, 16];
  if (o.conv && o.batches.some((b) => b !== 1)) usage('--conv: the convolution table is batch 1 only');
  if (o.conv && o.bits !== null) usage('--bits sets the fc table\'s codes; the --conv table has its own');
  if (o.ort === null) o.ort = path.join(o.build, 'bench-npm', 'node_modules');
  return o;
}

function fail(msg, code = 1) {
  console.error(`ort-peer: ${msg}`);
  process.exit(code);
}

function loadOrt(dir) {
  const require = createRequire(path.resolve(dir, 'ort-peer.js'));
  try {
    return require('onnxruntime-node');
  } catch (e) {
    fail(`onnxruntime-node not found under ${dir} (${e.code || e.message}); ` +
         'run deploy/install-bench-deps.sh, or give --ort');
  }
}

function median(v) {
  const s = [...v].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function eieBench(bench, args) {
  const r = spawnSync(bench, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) fail(`cannot run ${bench}: ${r.error.message}`);
  if (r.status !== 0)
    fail(`${bench} ${args.join(' ')} exited ${r.status}:\n${r.stderr.trim()}`);
  return r.stdout;
}

function readFloats(file, Type) {
  // a copy: a small file's Buffer may sit at any offset of a shared pool
  return new Type(new Uint8Array(fs.readFileSync(file)).buffer);
}

// The engine's medians, (B, T) -> us, from eie-bench's table rows.
// The conv table's rows have no batch column (batch 1): layer T cpu ...
function engineTimes(bench, layer, o, bits) {
  const out = eieBench(bench, [...(o.conv ? ['--conv'] : ['--batches', o.batches.join(',')]),
                               '--layers', layer, '--threads', o.threads.join(','),
                               '--reps', String(o.reps), '--methods', 'cpu', ...bits]);
  const t = new Map();
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] !== layer || f.length < 4) continue;
    if (o.conv) t.set(`1/${f[1]}`, Number(f[2]));
    else t.set(`${f[1]}/${f[2]}`, Number(f[3]));
  }
  for (const B of o.batches)
    for (const T of o.threads)
      if (!(t.get(`${B}/${T}`) > 0)) fail(`no engine time for ${layer} B${B} T${T} in:\n${out}`);
  return t;
}

async function ortTime(s, feeds, reps) {
  const w0 = process.hrtime.bigint();
  do await s.run(feeds);
  while (Number(process.hrtime.bigint() - w0) / 1e3 < ROUND_WARM_US);
  const times = [];
  for (let r = 0; r < reps; r++) {
    const w0 = process.hrtime.bigint();
    do await s.run(feeds);
    while (Number(process.hrtime.bigint() - w0) / 1e3 < WARM_US);
    const t0 = process.hrtime.bigint();
    await s.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  return median(times);
}

const o = parseArgs(process.argv.slice(2));
const bench = path.join(o.build, 'tests', 'bench', 'eie-bench');
if (!fs.existsSync(bench)) fail(`no ${bench}: build first (meson setup ${o.build} && ninja -C ${o.build})`);
const ort = loadOrt(o.ort);
const bits = o.bits === null ? [] : ['--bits', String(o.bits)];
const cpus = os.cpus();
console.log(`cpu: ${cpus[0] ? cpus[0].model.trim() : '(unknown)'}, ${cpus.length} online cores; ` +
            `node ${process.version}; onnxruntime-node ${ort.env.versions ? ort.env.versions.node : '?'}` +
            ` (CPU provider, graph optimizations all, intra-op threads = T)`);
console.log(`reps ${o.reps}, rounds ${o.rounds}; medians in us, a whole call each; ` +
            'ort/cpu = onnxruntime time / engine time (above 1: the engine faster)');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eie-ort-peer-'));
const rows = [];

// Exports layer, opens a session a thread count of threads, checks every
// batch of batches against the reference: the sessions and each (B, T)'s
// inputs. A sample's shape is the model input's past its first (batch)
// dimension; the files hold n samples, the reference n outputs then their
// bounds.
async function prepare(layer, conv, threads, batches) {
  eieBench(bench, [...(conv ? ['--conv'] : []), '--export', tmp, '--layers', layer, ...bits]);
  const x = readFloats(path.join(tmp, `${layer}.x.f32`), Float32Array);
  const ref = readFloats(path.join(tmp, `${layer}.ref.f64`), Float64Array);
  const sessions = new Map();
  for (const T of threads)
    sessions.set(T, await ort.InferenceSession.create(path.join(tmp, `${layer}.onnx`), {
      executionProviders: ['cpu'], intraOpNumThreads: T, interOpNumThreads: 1,
      executionMode: 'sequential', graphOptimizationLevel: 'all' }));
  fs.rmSync(path.join(tmp, `${layer}.onnx`)); // VGG-6's is 411 MB
  const s0 = sessions.values().next().value;
  const dims = s0.inputMetadata[0].shape.slice(1);
  const C = dims.reduce((a, b) => a * b, 1), n = x.length / C, R = ref.length / 2 / n;
  if (!Number.isInteger(n) || !Number.isInteger(R) || dims.some((d) => !(d > 0)))
    fail(`${layer}: input shape ${JSON.stringify(s0.inputMetadata[0].shape)} does not fit ` +
         `${x.length} inputs and ${ref.length / 2} reference outputs`);
  const feeds = new Map();
  for (const B of batches)
    for (const [T, s] of sessions) {
      if (B > n) fail(`${layer}: batch ${B}, but eie-bench exported ${n} samples`);
      const f = { [s.inputNames[0]]: new ort.Tensor('float32', x.subarray(0, B * C), [B, ...dims]) };
      const y = (await s.run(f))[s.outputNames[0]].data;
      let bad = 0, worst = 0, worstRatio = 0;
      for (let i = 0; i < B * R; i++) {
        const e = Math.abs(y[i] - ref[i]), tol = ref[n * R + i];
        if (!(e <= tol)) {
          bad++;
          if (!(e / tol <= worstRatio)) { worstRatio = e / tol; worst = i; }
        }
      }
      if (bad > 0)
        fail(`${layer} batch ${B}, ${T} thread(s): onnxruntime disagrees with the float64 ` +
             `reference at ${bad} of ${B * R} outputs; worst: input ${Math.floor(worst / R)} ` +
             `output ${worst % R}: ${y[worst]}, reference ${ref[worst]}, bound ${ref[n * R + worst]}`, 3);
      feeds.set(`${B}/${T}`, f);
    }
  return { sessions, feeds };
}

try {
  // the per-call floor: the fc table's tiny layer, batch 1, one thread
  const floorRun = await prepare('tiny', false, [1], [1]);
  const tiny = floorRun.sessions.get(1), tinyFeeds = floorRun.feeds.get('1/1');
  for (const layer of o.layers) {
    const { sessions, feeds } = await prepare(layer, o.conv, o.threads, o.batches);
    const cpu = new Map(), peer = new Map(), floors = [];
    for (let r = 0; r < o.rounds; r++) {
      floors.push(await ortTime(tiny, tinyFeeds, o.reps));
      const e = engineTimes(bench, layer, o, bits);
      for (const B of o.batches)
        for (const [T, s] of sessions) {
          const k = `${B}/${T}`;
          if (!cpu.has(k)) { cpu.set(k, []); peer.set(k, []); }
          cpu.get(k).push(e.get(k));
          peer.get(k).push(await ortTime(s, feeds.get(k), o.reps));
        }
    }
    for (const s of sessions.values()) await s.release();
    console.log(`${layer}: onnxruntime's per-call floor (tiny, batch 1, one thread) ` +
                `${floors.map((v) => v.toFixed(1)).join(' / ')} us`);
    for (const B of o.batches)
      for (const T of o.threads) {
        const k = `${B}/${T}`;
        const c = cpu.get(k), p = peer.get(k);
        const row = { layer, B, T, c, p, ratio: c.map((v, i) => p[i] / v),
                      net: c.map((v, i) => Math.max(p[i] - floors[i], 0) / v) };
        rows.push(row);
        const fmt = (v, d) => v.map((x) => x.toFixed(d)).join(' / ');
        console.log(`${layer.padEnd(8)} B${String(B).padEnd(2)} T${T}  cpu ${fmt(c, 1)}  ort ${fmt(p, 1)}` +
                    `  ort/cpu ${fmt(row.ratio, 2)}  less the floor ${fmt(row.net, 2)}`);
      }
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
const lost = rows.filter((r) => r.net.some((v) => v < 1));
console.log(lost.length === 0 ? 'cpu loses: nowhere in this run, the floor taken off or not'
  : `cpu loses (the floor taken off): ${lost.map((r) => `${r.layer} B${r.B} T${r.T} ` +
      `(${r.net.map((v) => v.toFixed(2)).join(' / ')})`).join('; ')}`);
