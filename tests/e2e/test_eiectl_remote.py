"""End-to-end: eiectl's remote commands (infer, models, metadata, stats,
load, unload, bench) over the wire.

FakeOipTest runs them against a small Open Inference Protocol server written
here with Python grpcio (an independent implementation of the protocol), so
the client is checked on the wire independently of eied (and the token
header can be seen). DaemonTest runs them against the real eied serving a
synthetic model, with the engine's own outputs (eie-ref) as the reference.
"""
import base64
import json
import os
import struct
import subprocess
import tempfile
import threading
import time
import unittest
from concurrent import futures

import grpc
from google.protobuf import json_format

import harness
from harness import SOURCE, Daemon, eiectl, message

OIP = "inference.GRPCInferenceService"

M = {n: message("inference." + n) for n in (
    "ModelMetadataRequest", "ModelMetadataResponse", "ModelInferRequest", "ModelInferResponse",
    "RepositoryIndexRequest", "RepositoryIndexResponse", "RepositoryModelLoadRequest",
    "RepositoryModelLoadResponse", "RepositoryModelUnloadRequest",
    "RepositoryModelUnloadResponse", "ModelStatisticsRequest", "ModelStatisticsResponse")}
HealthReq = message("grpc.health.v1.HealthCheckRequest")
HealthResp = message("grpc.health.v1.HealthCheckResponse")

# The fake server's model 'toy': y = W x + b, 4 -> 3, W[r][c] = CODEBOOK[(r + c) % 4].
CODEBOOK = [0.0, 0.5, -1.0, 2.0]
BIAS = [0.1, -0.2, 0.3]
TOKEN = "tok-123.abc"


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def reference(row):
    return [f32(sum(f32(CODEBOOK[(r + c) % 4]) * f32(x) for c, x in enumerate(row)) + f32(BIAS[r]))
            for r in range(3)]


def parse_rows(text):
    return [[float(v) for v in line.split()] for line in text.strip().splitlines()]


def npy(values, shape, dtype="<f4", fortran=False, version=1):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        dtype, "True" if fortran else "False", ", ".join(str(d) for d in shape) +
        ("," if len(shape) == 1 else ""))
    pre = 10 if version == 1 else 12
    total = (pre + len(header) + 1 + 63) // 64 * 64
    header = header + " " * (total - pre - len(header) - 1) + "\n"
    size = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    fmt = "<%d%s" % (len(values), "f" if dtype == "<f4" else "d")
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode() + struct.pack(fmt, *values)


class FakeOip:
    """A tiny GRPCInferenceService + health server serving model 'toy'."""

    def __init__(self):
        self.calls = {}
        self.metadata_seen = []
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        h = {}
        for rpc, req, fn in (("ModelMetadata", "ModelMetadataRequest", self.model_metadata),
                             ("ModelInfer", "ModelInferRequest", self.model_infer),
                             ("RepositoryIndex", "RepositoryIndexRequest", self.index),
                             ("RepositoryModelLoad", "RepositoryModelLoadRequest", self.load),
                             ("RepositoryModelUnload", "RepositoryModelUnloadRequest",
                              self.unload),
                             ("ModelStatistics", "ModelStatisticsRequest", self.statistics)):
            h[rpc] = grpc.unary_unary_rpc_method_handler(
                self._counted(rpc, fn), request_deserializer=M[req].FromString,
                response_serializer=lambda m: m.SerializeToString())
        health = {"Check": grpc.unary_unary_rpc_method_handler(
            self._counted("Check", lambda r, c: HealthResp(status=1)),
            request_deserializer=HealthReq.FromString,
            response_serializer=lambda m: m.SerializeToString())}
        self.server.add_generic_rpc_handlers((
            grpc.method_handlers_generic_handler(OIP, h),
            grpc.method_handlers_generic_handler("grpc.health.v1.Health", health)))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.addr = "127.0.0.1:%d" % self.port
        self.server.start()

    def _counted(self, name, fn):
        def handler(request, context):
            with self.lock:
                self.calls[name] = self.calls.get(name, 0) + 1
                self.metadata_seen.append((name, dict(context.invocation_metadata())))
            return fn(request, context)
        return handler

    def count(self, name):
        with self.lock:
            return self.calls.get(name, 0)

    def stop(self):
        self.server.stop(None)

    @staticmethod
    def _known(name, context):
        if name != "toy":
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown model '%s'" % name)

    def model_metadata(self, req, context):
        self._known(req.name, context)
        r = M["ModelMetadataResponse"](name="toy", versions=["1"], platform="fake_oip")
        r.inputs.add(name="input", datatype="FP32", shape=[-1, 4])
        r.outputs.add(name="output", datatype="FP32", shape=[-1, 3])
        r.properties["layers"] = "1"
        r.properties["ratio"] = "12.5"
        return r

    def model_infer(self, req, context):
        self._known(req.model_name, context)
        if len(req.inputs) != 1 or req.inputs[0].name != "input" or \
                req.inputs[0].datatype != "FP32" or len(req.inputs[0].shape) != 2 or \
                req.inputs[0].shape[1] != 4 or len(req.raw_input_contents) != 1:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "model 'toy' input is wrong")
        b = req.inputs[0].shape[0]
        raw = req.raw_input_contents[0]
        if len(raw) != b * 16:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "byte size")
        xs = struct.unpack("<%df" % (b * 4), raw)
        ys = []
        for i in range(b):
            ys += reference(xs[i * 4:(i + 1) * 4])
        r = M["ModelInferResponse"](model_name="toy", model_version="1", id=req.id)
        r.outputs.add(name="output", datatype="FP32", shape=[b, 3])
        r.raw_output_contents.append(struct.pack("<%df" % len(ys), *ys))
        r.parameters["backend"].string_param = "fake"
        return r

    def index(self, req, context):
        r = M["RepositoryIndexResponse"]()
        r.models.add(name="toy", version="1", state="READY", reason="")
        if not req.ready:
            r.models.add(name="old", version="", state="UNAVAILABLE", reason="unloaded by user")
        return r

    def _admin(self, name, context):
        md = dict(context.invocation_metadata())
        if md.get("authorization") != "Bearer " + TOKEN:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        self._known(name, context)

    def load(self, req, context):
        self._admin(req.model_name, context)
        return M["RepositoryModelLoadResponse"]()

    def unload(self, req, context):
        self._admin(req.model_name, context)
        return M["RepositoryModelUnloadResponse"]()

    def statistics(self, req, context):
        if req.name:
            self._known(req.name, context)
        r = M["ModelStatisticsResponse"]()
        s = r.model_stats.add(name="toy", version="1", inference_count=10, execution_count=4)
        s.inference_stats.success.count = 10
        s.inference_stats.success.ns = 50_000_000
        s.inference_stats.fail.count = 2
        s.inference_stats.queue.count = 10
        s.inference_stats.queue.ns = 20_000_000          # 2 ms each
        s.inference_stats.compute_infer.count = 10
        s.inference_stats.compute_infer.ns = 10_000_000  # 1 ms each
        s.batch_stats.add(batch_size=1).compute_infer.count = 4
        return r


class FakeOipTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = FakeOip()
        cls.addr = cls.fake.addr
        cls.tmp = tempfile.TemporaryDirectory(prefix="eiectl-test-")

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.tmp.cleanup()

    def path(self, name, data):
        p = os.path.join(self.tmp.name, name)
        with open(p, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return p

    def assertRowsClose(self, got, want):
        self.assertEqual(len(got), len(want))
        for g, w in zip(got, want):
            self.assertEqual(len(g), len(w))
            for a, b in zip(g, w):
                self.assertAlmostEqual(a, b, places=5)

    def infer(self, *args, stdin=None):
        return subprocess.run([harness.EIECTL, "infer", "--addr", self.addr, "--model", "toy",
                               *args], input=stdin, capture_output=True, text=True, timeout=30)

    def test_infer_json_row_and_batch(self):
        r = self.infer("--input", "[1, 2, 3, 4]")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRowsClose(parse_rows(r.stdout), [reference([1, 2, 3, 4])])
        r = self.infer("--input", "[[1,2,3,4],[0,0,0,0],[-1,0.5,2,1e-3]]")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRowsClose(parse_rows(r.stdout), [reference(x) for x in
                                                    ([1, 2, 3, 4], [0, 0, 0, 0],
                                                     [-1, 0.5, 2, 1e-3])])

    def test_infer_from_npy_csv_json_files_and_stdin(self):
        rows = [[1, 2, 3, 4], [4, 3, 2, 1]]
        want = [reference(x) for x in rows]
        flat = [v for row in rows for v in row]
        for name, data in (("a.npy", npy(flat, (2, 4))),
                           ("b.npy", npy(flat, (2, 4), dtype="<f8", version=2)),
                           ("c.csv", "f0,f1,f2,f3\n1,2,3,4\n4,3,2,1\n"),
                           ("d.json", json.dumps(rows))):
            r = self.infer("--input-file", self.path(name, data))
            self.assertEqual(r.returncode, 0, name + ": " + r.stderr)
            self.assertRowsClose(parse_rows(r.stdout), want)
        r = self.infer("--input-file", self.path("e.npy", npy(rows[0], (4,))))
        self.assertRowsClose(parse_rows(r.stdout), want[:1])
        r = self.infer(stdin="1,2,3,4\n4,3,2,1\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRowsClose(parse_rows(r.stdout), want)
        r = self.infer("--input-file", "-", stdin=json.dumps(rows))
        self.assertRowsClose(parse_rows(r.stdout), want)

    def test_infer_top_k_and_json(self):
        x = [1, 2, 3, 4]
        y = reference(x)
        order = sorted(range(3), key=lambda i: (-y[i], i))
        r = self.infer("--input", json.dumps(x), "--top-k", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.strip().splitlines()
        self.assertEqual(lines[0].split(), ["row", "rank", "index", "score"])
        self.assertEqual([int(l.split()[2]) for l in lines[1:]], order[:2])
        r = self.infer("--input", json.dumps([x, x]), "--top-k", "5", "--json", "--id", "q-7")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["id"], "q-7")
        self.assertEqual(doc["model_name"], "toy")
        self.assertEqual(doc["parameters"], {"backend": "fake"})
        out = doc["outputs"][0]
        self.assertEqual(out["name"], "output")
        self.assertEqual(out["shape"], [2, 3])
        self.assertRowsClose(out["data"], [y, y])
        self.assertEqual([e["index"] for e in out["top_k"][1]], order)

    def test_infer_bad_input_fails_before_calling(self):
        before = self.fake.count("ModelInfer")
        cases = (
            (("--input", "[1, 2, 3]"), "input has 3 values per row; model 'toy' input 'input' "
                                       "takes 4"),
            (("--input", "[1, 2, x, 4]"), "--input:1:8: expected a number, found 'x'"),
            (("--input-file", self.path("f.npy", npy([1, 2, 3, 4] * 2, (2, 4), fortran=True))),
             "f.npy: array is in Fortran order"),
            (("--input-file", self.path("g.npy", npy([1, 2, 3, 4], (4,), dtype="<f8")[:-3])),
             "g.npy: 29 bytes of data, the shape (1 x 4 of <f8) needs 32"),
            (("--input-file", self.path("h.csv", "1,2,3,4\n1,2\n")),
             "h.csv:2: 2 fields, the first row has 4"),
            (("--input-file", "/nonexistent/x.npy"), "/nonexistent/x.npy: cannot open"),
        )
        for args, want in cases:
            r = self.infer(*args)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(want, r.stderr)
        self.assertEqual(self.fake.count("ModelInfer"), before)

    def test_infer_server_errors_exit_1_with_the_code(self):
        r = subprocess.run([harness.EIECTL, "infer", "--addr", self.addr, "--model", "nope",
                            "--input", "[1,2,3,4]"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND: unknown model 'nope'", r.stderr)
        r = eiectl("infer", "--addr", "127.0.0.1:1", "--timeout", "1", "--model", "toy",
                   "--input", "[1]")
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAVAILABLE", r.stderr)

    def test_usage_errors_exit_2(self):
        for args in (("infer", "--input", "[1]"),
                     ("infer", "--model", "toy", "--input", "[1]", "--input-file", "x.csv"),
                     ("infer", "--model", "toy", "--top-k", "0", "--input", "[1]"),
                     ("infer", "--model", "toy", "--timeout", "0", "--input", "[1]"),
                     ("metadata",), ("load",), ("unload", "a", "b"),
                     ("stats", "--version", "1"),
                     ("bench", "--model", "toy", "-n", "0"),
                     ("bench", "--model", "toy", "-n", "2e9"),
                     ("bench", "--model", "toy", "-z", "2h"),
                     ("bench", "--model", "toy", "-n", "5", "-z", "1s"),
                     ("bench", "--model", "toy", "-c", "2", "--connections", "3"),
                     ("bench", "--method", "health", "--batch", "2"),
                     ("bench", "--method", "grpc"),
                     ("bench", "--model", "toy", "--rps", "0"),
                     ("bench", "--model", "toy", "--rps", "-5"),
                     ("bench", "--model", "toy", "--rps", "2e6"),
                     ("bench", "--model", "toy", "--rps", "fast"),
                     ("bench",)):
            r = eiectl(*args)
            self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stderr))
            self.assertIn("eiectl " + args[0] + ": ", r.stderr)

    def test_models_table_ready_filter_and_json(self):
        r = eiectl("models", "--addr", self.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "VERSION", "STATE", "REASON"])
        self.assertEqual(lines[1].split(), ["toy", "1", "READY"])
        self.assertEqual(lines[2].split()[:2], ["old", "UNAVAILABLE"])
        self.assertTrue(lines[2].endswith("unloaded by user"))
        r = eiectl("models", "--addr", self.addr, "--ready", "--json")
        self.assertEqual(json.loads(r.stdout), {"models": [
            {"name": "toy", "version": "1", "state": "READY", "reason": ""}]})

    def test_metadata_text_and_json(self):
        r = eiectl("metadata", "--addr", self.addr, "--model", "toy")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("platform: fake_oip\n", r.stdout)
        self.assertIn("  input FP32 [-1, 4]\n", r.stdout)
        self.assertIn("  ratio = 12.5\n", r.stdout)
        doc = json.loads(eiectl("metadata", "--addr", self.addr, "-m", "toy", "-j").stdout)
        self.assertEqual(doc["outputs"], [{"name": "output", "datatype": "FP32", "shape": [-1, 3]}])
        self.assertEqual(doc["properties"], {"layers": "1", "ratio": "12.5"})
        r = eiectl("metadata", "--addr", self.addr, "--model", "nope")
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)

    def test_stats_table_and_json(self):
        r = eiectl("stats", "--addr", self.addr, "--model", "toy")
        self.assertEqual(r.returncode, 0, r.stderr)
        head, row = r.stdout.splitlines()[:2]
        self.assertEqual(head.split()[:4], ["MODEL", "VERSION", "INFERENCES", "EXECUTIONS"])
        self.assertEqual(row.split(), ["toy", "1", "10", "4", "10", "2", "2.000", "1.000"])
        doc = json.loads(eiectl("stats", "--addr", self.addr, "--json").stdout)
        s = doc["model_stats"][0]
        self.assertEqual(s["inference_stats"]["queue"], {"count": 10, "ns": 20000000})
        self.assertEqual(s["batch_stats"][0]["batch_size"], 1)

    def test_load_unload_send_the_bearer_token(self):
        tok = self.path("token", TOKEN + "\n")
        for cmd in ("load", "unload"):
            r = eiectl(cmd, "toy", "--addr", self.addr, "--token-file", tok)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "%sed: toy\n" % cmd)
            r = eiectl(cmd, "toy", "--addr", self.addr)
            self.assertEqual(r.returncode, 1)
            self.assertIn("UNAUTHENTICATED", r.stderr)
            r = eiectl(cmd, "nope", "--addr", self.addr, "--token-file", tok)
            self.assertEqual(r.returncode, 1)
            self.assertIn("NOT_FOUND", r.stderr)
        seen = [md for name, md in self.fake.metadata_seen if name == "RepositoryModelLoad"]
        self.assertIn("Bearer " + TOKEN, [md.get("authorization") for md in seen])
        r = eiectl("load", "toy", "--addr", self.addr, "--token-file",
                   self.path("badtoken", "two words\n"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("badtoken: byte 4 of the token (0x20) is not visible ASCII", r.stderr)

    def test_bench_infer_counts_every_call(self):
        before = self.fake.count("ModelInfer")
        r = eiectl("bench", "--addr", self.addr, "--model", "toy", "-c", "8",
                   "--connections", "2", "-n", "300", "--batch", "3", "--json", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["count"], 300)
        self.assertEqual(doc["ok"], 300)
        self.assertEqual(doc["status"], {"OK": 300})
        self.assertEqual(doc["batch"], 3)
        self.assertEqual(doc["latency_samples"], 300)
        lat = doc["latency_ns"]
        self.assertTrue(0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"])
        self.assertGreater(doc["requests_per_second"], 0)
        self.assertEqual(self.fake.count("ModelInfer") - before, 300)

    def test_bench_with_input_file_and_text_report(self):
        f = self.path("rows.csv", "1,2,3,4\n")
        r = eiectl("bench", "--addr", self.addr, "--model", "toy", "-c", "2", "-n", "20",
                   "--input-file", f, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Requests/sec:", r.stdout)
        self.assertIn("p99", r.stdout)
        self.assertRegex(r.stdout, r"\[OK\]\s+20 responses")
        r = eiectl("bench", "--addr", self.addr, "--model", "toy", "-n", "5",
                   "--input-file", self.path("wide.csv", "1,2,3\n"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("wide.csv has 3 values per row; model 'toy' input 'input' takes 4",
                      r.stderr)

    def test_bench_health_for_a_duration_stops_by_itself(self):
        t0 = time.monotonic()
        r = eiectl("bench", "--addr", self.addr, "--method", "health", "-c", "4", "-z", "1s",
                   "--json", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(time.monotonic() - t0, 10)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["method"], "health")
        self.assertGreater(doc["count"], 0)
        self.assertEqual(doc["status"], {"OK": doc["count"]})
        self.assertGreaterEqual(doc["duration_s"], 1.0)

    def test_bench_rps_starts_calls_on_its_schedule(self):
        # Call k is due k / R seconds after the first: 21 calls at 50 a second
        # take at least 0.4 s (unpaced, they take milliseconds here).
        before = self.fake.count("ModelInfer")
        r = eiectl("bench", "--addr", self.addr, "--model", "toy", "-c", "4", "-n", "21",
                   "--rps", "50", "--json", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["status"], {"OK": 21})
        self.assertEqual(doc["rps_target"], 50)
        self.assertGreaterEqual(doc["duration_s"], 0.4)
        self.assertEqual(self.fake.count("ModelInfer") - before, 21)
        # With -z the calls due before the end are sent, all of them: 1 s at 20 a second.
        r = eiectl("bench", "--addr", self.addr, "--method", "health", "-c", "2", "-z", "1s",
                   "--rps", "20", "--json", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["status"], {"OK": 20})
        r = eiectl("bench", "--addr", self.addr, "--method", "health", "-n", "3", "--rps",
                   "1000")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Rate:         1000.00 calls/s scheduled", r.stdout)
        r = eiectl("bench", "--addr", self.addr, "--method", "health", "-n", "3", "--json")
        self.assertIsNone(json.loads(r.stdout)["rps_target"])

    def test_bench_counts_failures_and_exits_1(self):
        r = eiectl("bench", "--addr", "127.0.0.1:1", "--method", "health", "-n", "10",
                   "--timeout", "1", "--json")
        self.assertEqual(r.returncode, 1)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["status"], {"UNAVAILABLE": 10})
        self.assertEqual(doc["ok"], 0)
        self.assertEqual(doc["first_error"]["code"], "UNAVAILABLE")

    def test_ghz_data_file_is_a_modelinfer_request_for_the_demo_model(self):
        with open(os.path.join(SOURCE, "deploy", "ghz", "modelinfer.json")) as f:
            req = json_format.Parse(f.read(), M["ModelInferRequest"]())
        self.assertEqual(req.model_name, "lenet")
        self.assertEqual(req.inputs[0].name, "input")
        self.assertEqual(req.inputs[0].datatype, "FP32")
        self.assertEqual(list(req.inputs[0].shape), [1, 784])
        self.assertEqual(req.raw_input_contents[0], bytes(784 * 4))


class DaemonTest(unittest.TestCase):
    """The same commands against the real eied serving a synthetic model."""
    LAYERS = [32, 16, 10]

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="eiectl-daemon-")
        cls.model = harness.synth_model(os.path.join(cls.tmp.name, "small.eie"), cls.LAYERS,
                                        density=0.3, seed=11, softmax=True, name="small")
        cls.token = os.path.join(cls.tmp.name, "admin.token")
        with open(cls.token, "w") as f:
            f.write("s3cret-admin-token\n")
        # and the bundled CNN and LSTM, whose inputs are N-D: [-1, 1, 28, 28], [-1, 1, 84]
        cls.daemon = Daemon("[server]\ndrain_delay = 0s\nexit_timeout = 5s\n"
                            "[admin]\ntoken_file = %s\n[models]\nsmall = %s\n"
                            "lenet5 = %s\ncharlm = %s\n"
                            % (cls.token, cls.model,
                               os.path.join(SOURCE, "models", "lenet5", "1", "model.eie"),
                               os.path.join(SOURCE, "models", "charlm", "1", "model.eie")))
        cls.addr = cls.daemon.addr
        cls.wait_ready()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)
        cls.tmp.cleanup()

    @classmethod
    def wait_ready(cls, timeout=20, names=("small", "lenet5", "charlm")):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = eiectl("models", "--addr", cls.addr, "--ready", "--json")
            if r.returncode == 0 and set(names) <= {m["name"] for m in
                                                    json.loads(r.stdout)["models"]}:
                return
            time.sleep(0.05)
        raise AssertionError("models %s never became ready" % (names,))

    def rows(self, n, seed=0):
        import random
        rnd = random.Random(seed)
        return [[round(rnd.uniform(-1, 1), 6) for _ in range(self.LAYERS[0])] for _ in range(n)]

    def test_metadata_names_the_input_and_properties(self):
        r = eiectl("metadata", "--addr", self.addr, "--model", "small", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["inputs"][0]["datatype"], "FP32")
        self.assertEqual(doc["inputs"][0]["shape"][-1], self.LAYERS[0])
        self.assertEqual(doc["outputs"][0]["shape"][-1], self.LAYERS[-1])
        self.assertTrue(doc["properties"])

    def test_infer_matches_the_engine_reference(self):
        rows = self.rows(3)
        want = harness.reference(self.model, rows, self.tmp.name)
        for args in (("--input", json.dumps(rows)),
                     ("--input-file", self.write("rows.npy", npy([v for r in rows for v in r],
                                                                 (3, self.LAYERS[0]))))):
            r = eiectl("infer", "--addr", self.addr, "--model", "small", *args)
            self.assertEqual(r.returncode, 0, r.stderr)
            got = parse_rows(r.stdout)
            self.assertEqual(len(got), 3)
            for g, w in zip(got, want):
                for a, b in zip(g, w):
                    self.assertLessEqual(abs(a - b), 1e-5 * max(1.0, abs(b)), (a, b))
        r = eiectl("infer", "--addr", self.addr, "--model", "small", "--input",
                   json.dumps(rows[0]), "--top-k", "3", "--json", "--id", "e2e-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["id"], "e2e-1")
        best = max(range(len(want[0])), key=lambda i: (want[0][i], -i))
        self.assertEqual(doc["outputs"][0]["top_k"][0][0]["index"], best)

    def write(self, name, data):
        p = os.path.join(self.tmp.name, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def test_infer_wrong_width_and_unknown_model(self):
        r = eiectl("infer", "--addr", self.addr, "--model", "small", "--input", "[1, 2]")
        self.assertEqual(r.returncode, 1)
        self.assertIn("input has 2 values per row; model 'small' input", r.stderr)
        r = eiectl("infer", "--addr", self.addr, "--model", "nope", "--input", "[1, 2]")
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)

    def test_stats_count_what_was_served(self):
        eiectl("infer", "--addr", self.addr, "--model", "small", "--input",
               json.dumps(self.rows(1)))
        r = eiectl("stats", "--addr", self.addr, "--model", "small", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        s = json.loads(r.stdout)["model_stats"][0]
        self.assertEqual(s["name"], "small")
        self.assertGreaterEqual(s["inference_count"], 1)
        r = eiectl("stats", "--addr", self.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("small", r.stdout)

    def test_unload_then_load_with_a_token(self):
        r = eiectl("unload", "small", "--addr", self.addr)
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        wrong = self.write("token", b"not-the-token\n")
        r = eiectl("unload", "small", "--addr", self.addr, "--token-file", wrong)
        self.assertEqual(r.returncode, 1)
        self.assertIn("PERMISSION_DENIED", r.stderr)
        self.assertNotIn("not-the-token", r.stderr)
        self.assertNotIn("s3cret", self.daemon.log())  # the token is never logged
        tok = self.token
        r = eiectl("unload", "small", "--addr", self.addr, "--token-file", tok)
        self.assertEqual(r.returncode, 0, r.stderr)
        try:
            r = eiectl("infer", "--addr", self.addr, "--model", "small", "--input",
                       json.dumps(self.rows(1)))
            self.assertEqual(r.returncode, 1)
            self.assertIn("NOT_FOUND", r.stderr)
            r = eiectl("models", "--addr", self.addr, "--json")
            state = {m["name"]: m["state"] for m in json.loads(r.stdout)["models"]}
            self.assertNotEqual(state.get("small"), "READY")
        finally:
            r = eiectl("load", "small", "--addr", self.addr, "--token-file", tok)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.wait_ready()
        r = eiectl("infer", "--addr", self.addr, "--model", "small", "--input",
                   json.dumps(self.rows(1)))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_bench_infer_and_health_all_ok(self):
        for method in ("infer", "health"):
            r = eiectl("bench", "--addr", self.addr, "--model", "small", "--method", method,
                       "-c", "16", "--connections", "2", "-n", "500", "--json", timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
            doc = json.loads(r.stdout)
            self.assertEqual(doc["status"], {"OK": 500})
            self.assertEqual(doc["latency_samples"], 500)

    def test_bench_sends_an_n_d_input_in_the_models_shape(self):
        # a CNN's [B, 1, 28, 28] and an LSTM's sequence [T, 1, 84]: every call answered OK
        seq = os.path.join(self.tmp.name, "seq.csv")
        with open(seq, "w") as f:  # eight one-hot characters: T = 8
            f.writelines(",".join("1" if k == (3 * t) % 84 else "0" for k in range(84)) + "\n"
                         for t in range(8))
        for model, extra, rows in (("lenet5", ("--batch", "3"), 3), ("charlm", (), 1),
                                   ("charlm", ("--input-file", seq), 8)):
            r = eiectl("bench", "--addr", self.addr, "--model", model, "-c", "4", "-n", "40",
                       "--json", *extra, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
            doc = json.loads(r.stdout)
            self.assertEqual(doc["status"], {"OK": 40}, model)
            self.assertEqual(doc["batch"], rows, model)
            self.assertIsNone(doc["first_error"], model)

    def test_bench_reports_why_calls_failed(self):
        # a sequence past the server's max_sequence (1024): every call refused, and the
        # report carries the server's words, in JSON and in text
        r = eiectl("bench", "--addr", self.addr, "--model", "charlm", "-c", "2", "-n", "6",
                   "--batch", "1100", "--json", timeout=120)
        self.assertEqual(r.returncode, 1, r.stderr + r.stdout)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["status"], {"INVALID_ARGUMENT": 6})
        self.assertEqual(doc["first_error"]["code"], "INVALID_ARGUMENT")
        self.assertIn("1100 is over max_sequence 1024", doc["first_error"]["message"])
        r = eiectl("bench", "--addr", self.addr, "--model", "charlm", "-n", "2", "--batch",
                   "1100", timeout=120)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, r"First error: \[INVALID_ARGUMENT\] model 'charlm': input "
                                   r"'chars': .*1100 is over max_sequence 1024")


if __name__ == "__main__":
    harness.main()
