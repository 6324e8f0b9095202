"""What a request costs the daemon over REST (JSON and the binary tensor
extension) against gRPC, for the same model and the same input:

  EIE_BUILD_ROOT=build python3 tests/bench/rest_vs_grpc.py [REQUESTS] [MODEL_DIR]

The clients are Python's (grpcio, http.client), one request at a time on one
kept-alive connection, so requests/s mostly measures the client. The number
that belongs to eied is its own CPU time per request (user + system, read from
/proc/PID/stat around each run): what HTTP parsing, JSON decoding and encoding
(jansson) and the transcoding into the gRPC handler add over protobuf. The
methods alternate in rounds and the median round is kept; the machines here are
shared and noisy, so compare the ratios, not the absolute values.
"""
import http.client
import json
import os
import random
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from harness import Daemon, message, unary  # noqa: E402

InferReq = message("inference.ModelInferRequest")
InferResp = message("inference.ModelInferResponse")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    model_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(harness.SOURCE, "models")
    name, width, batch = "lenet", 784, 1
    rng = random.Random(1)
    x = [rng.uniform(-1, 1) for _ in range(width * batch)]
    raw = struct.pack("<%df" % len(x), *x)
    shape = [batch, width]

    req = InferReq(model_name=name)
    t = req.inputs.add(name="input", datatype="FP32")
    t.shape.extend(shape)
    req.raw_input_contents.append(raw)
    # What a JSON client sends: the float32 values printed as Python does.
    xs = list(struct.unpack("<%df" % len(x), raw))
    body = json.dumps({"inputs": [{"name": "input", "shape": shape, "datatype": "FP32",
                                   "data": xs}]}).encode()
    hdr = json.dumps({"inputs": [{"name": "input", "shape": shape, "datatype": "FP32",
                                  "parameters": {"binary_data_size": len(raw)}}],
                      "outputs": [{"name": "output",
                                   "parameters": {"binary_data": True}}]}).encode()
    binbody = hdr + raw

    with Daemon("[server]\ndrain_delay = 0s\n[repository]\npath = %s\n" % model_dir) as d, \
            d.channel() as ch:
        conn = http.client.HTTPConnection("127.0.0.1", d.http_port)

        def grpc_call():
            unary(ch, "/inference.GRPCInferenceService/ModelInfer", req, InferResp)

        def post(data, headers):
            conn.request("POST", "/v2/models/%s/infer" % name, data, headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit("REST answered %d" % r.status)

        methods = [
            ("grpc", grpc_call),
            ("rest-json", lambda: post(body, {"Content-Type": "application/json"})),
            ("rest-binary", lambda: post(binbody, {"Inference-Header-Content-Length":
                                                   str(len(hdr))})),
        ]
        for _, f in methods:  # warm both paths and the model
            for _ in range(100):
                f()
        res = {m: {"rps": [], "us": []} for m, _ in methods}
        for _ in range(5):
            for m, f in methods:
                c0, t0 = cpu_seconds(d.proc.pid), time.perf_counter()
                for _ in range(n // 5):
                    f()
                t1, c1 = time.perf_counter(), cpu_seconds(d.proc.pid)
                res[m]["rps"].append((n // 5) / (t1 - t0))
                res[m]["us"].append((c1 - c0) / (n // 5) * 1e6)
        g = statistics.median(res["grpc"]["us"])
        print("model %s, input [%d, %d] FP32, %d requests a method, concurrency 1" % (
            name, batch, width, n))
        print("JSON request body %d bytes, binary %d bytes" % (len(body), len(binbody)))
        print("%-12s %10s %16s %10s" % ("method", "req/s", "eied CPU us/req", "x gRPC"))
        for m, _ in methods:
            us = statistics.median(res[m]["us"])
            print("%-12s %10.0f %16.1f %10.2f" % (m, statistics.median(res[m]["rps"]), us,
                                                   us / g if g > 0 else float("nan")))
        conn.close()


if __name__ == "__main__":
    main()
