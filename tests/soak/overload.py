"""Overload: at several times the sustainable load, accepted requests still
finish within their deadlines, the excess is refused with UNAVAILABLE at
once (not by timing out), memory stays bounded by the queue limit, and
throughput recovers as soon as load drops.

  EIE_BUILD_ROOT=build python3 tests/soak/overload.py

Prints a table of the three phases (baseline, overload, recovery), measured
with `eiectl bench` against one eied on loopback, and PASS/FAIL lines.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import grpc  # noqa: E402

import harness  # noqa: E402
from harness import Daemon, message, synth_model, unary  # noqa: E402

SVC = "/inference.GRPCInferenceService/"
DIMS = [1024, 1024, 10]
QUEUE = 64
DEADLINE_S = 0.5


def bench(addr, c, seconds, connections=1):
    r = subprocess.run([harness.EIECTL, "bench", "--addr", addr, "--model", "m", "-c", str(c),
                        "--connections", str(connections), "-z", "%ds" % seconds,
                        "--timeout", str(DEADLINE_S), "--json"],
                       capture_output=True, text=True, timeout=seconds + 120)
    return json.loads(r.stdout)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    tmp = tempfile.mkdtemp(prefix="eie-overload-")
    model = synth_model(os.path.join(tmp, "m.eie"), DIMS, density=0.3, seed=5)
    config = ("[server]\ndrain_delay = 0s\n[inference]\nqueue_depth = %d\n[models]\nm = %s\n"
              % (QUEUE, model))
    with Daemon(config) as d:
        with d.channel() as ch:
            deadline = time.monotonic() + 30
            while not unary(ch, SVC + "ModelReady", message("inference.ModelReadyRequest")(
                    name="m"), message("inference.ModelReadyResponse")).ready:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        rss = [rss_kib(d.proc.pid)]
        base = bench(d.addr, 8, 6)
        stop = threading.Event()
        refusals = []

        def sample():
            while not stop.wait(0.25):
                rss.append(rss_kib(d.proc.pid))

        def probe():  # times how fast a refusal comes back while the queue is full
            req = message("inference.ModelInferRequest")(model_name="m")
            req.inputs.add(name="input", datatype="FP32", shape=[1, DIMS[0]])
            req.raw_input_contents.append(b"\0" * 4 * DIMS[0])
            with d.channel() as ch:
                while not stop.is_set():
                    t0 = time.monotonic()
                    try:
                        unary(ch, SVC + "ModelInfer", req, message("inference.ModelInferResponse"),
                              timeout=DEADLINE_S)
                    except grpc.RpcError as e:
                        if e.code() == grpc.StatusCode.UNAVAILABLE:
                            refusals.append(time.monotonic() - t0)
                    time.sleep(0.01)
        threads = [threading.Thread(target=sample), threading.Thread(target=probe)]
        for t in threads:
            t.start()
        over = bench(d.addr, 512, 8, connections=4)
        stop.set()
        for t in threads:
            t.join()
        rec = bench(d.addr, 8, 6)
        rc = d.stop()

    def lat_ms(doc):
        return {k: v / 1e6 for k, v in doc.get("latency_ns", {}).items()}

    def row(name, doc):
        lat = lat_ms(doc)
        status = doc.get("status", {})
        return "%-10s %6s %10.0f %9.2f %9.2f %9.2f  %s" % (
            name, doc.get("concurrency", ""), doc.get("requests_per_second", 0),
            lat.get("p50", 0), lat.get("p99", 0), lat.get("max", 0),
            " ".join("%s=%d" % kv for kv in sorted(status.items())))
    print("%-10s %6s %10s %9s %9s %9s  %s" % ("phase", "conc", "req/s", "p50 ms", "p99 ms",
                                               "max ms", "status codes"))
    for name, doc in (("baseline", base), ("overload", over), ("recovery", rec)):
        print(row(name, doc))
    refusals.sort()
    p50_refusal = refusals[len(refusals) // 2] * 1000 if refusals else float("nan")
    p99_refusal = refusals[int(len(refusals) * 0.99)] * 1000 if refusals else float("nan")
    ok_rps = over.get("status", {}).get("OK", 0) / max(over.get("duration_s", 8), 1e-9)
    over_lat = lat_ms(over)
    checks = [
        ("accepted requests finished within their %.0f ms deadline (max %.1f ms, %d expired)"
         % (DEADLINE_S * 1000, over_lat.get("max", 0),
            over.get("status", {}).get("DEADLINE_EXCEEDED", 0)),
         over_lat.get("max", 1e9) < DEADLINE_S * 1000 and
         over.get("status", {}).get("DEADLINE_EXCEEDED", 0) == 0),
        ("excess refused with UNAVAILABLE (%d), not by timing out: probe refusals p50 %.1f ms,"
         " p99 %.1f ms over %d probes (deadline %.0f ms)"
         % (over.get("status", {}).get("UNAVAILABLE", 0), p50_refusal, p99_refusal,
            len(refusals), DEADLINE_S * 1000),
         over.get("status", {}).get("UNAVAILABLE", 0) > 0 and len(refusals) > 0 and
         p50_refusal < DEADLINE_S * 1000 / 10 and p99_refusal < DEADLINE_S * 1000),
        ("memory bounded: RSS %d -> max %d KiB" % (rss[0], max(rss)),
         max(rss) < rss[0] + 64 * 1024),
        ("throughput under overload %.0f req/s vs baseline %.0f" % (ok_rps,
                                                                     base["requests_per_second"]),
         ok_rps > 0.5 * base["requests_per_second"]),
        ("recovery %.0f req/s vs baseline %.0f, no failures"
         % (rec["requests_per_second"], base["requests_per_second"]),
         rec["requests_per_second"] > 0.7 * base["requests_per_second"] and
         set(rec.get("status", {})) == {"OK"}),
        ("clean exit", rc == 0),
    ]
    for what, ok in checks:
        print("  %s  %s" % ("PASS" if ok else "FAIL", what))
    passed = sum(1 for _, ok in checks if ok)
    print("%d passed, %d failed" % (passed, len(checks) - passed))
    return 0 if passed == len(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
