"""End-to-end: the KServe v2 REST API over loopback, with Python's standard
library (urllib) and curl as independent clients: every endpoint, the error
statuses, Triton's binary tensor extension, limits, admin, and answers equal
to gRPC's bit for bit for the same request."""
import json
import os
import time
import random
import shutil
import struct
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

import grpc

import harness
from harness import Daemon, message, synth_model, unary

SVC = "/inference.GRPCInferenceService/"
InferReq = message("inference.ModelInferRequest")
InferResp = message("inference.ModelInferResponse")
LAYERS = [64, 48, 32, 10]

TMP = tempfile.TemporaryDirectory(prefix="eie-rest-")
MODEL = synth_model(os.path.join(TMP.name, "small.eie"), LAYERS, density=0.3, seed=7,
                    softmax=True, name="small")
TOKEN = "rest-admin-token-0123456789"
TOKEN_FILE = os.path.join(TMP.name, "token")
with open(TOKEN_FILE, "w") as f:
    f.write(TOKEN + "\n")
os.chmod(TOKEN_FILE, 0o600)


def config(extra=""):
    return ("[server]\ndrain_delay = 0s\nexit_timeout = 5s\n" + extra +
            "[admin]\ntoken_file = %s\n[models]\nsmall = %s\n" % (TOKEN_FILE, MODEL))


def rows(n, seed=0):
    rnd = random.Random(seed)
    return [[rnd.uniform(-1, 1) if rnd.random() < 0.6 else 0.0 for _ in range(LAYERS[0])]
            for _ in range(n)]


def http(d, method, path, body=None, headers=None):
    """(status, headers, body bytes) of one request over urllib."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (d.http_port, path), data=body,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def infer_json(data, outputs=None, binary_output=False):
    body = {"id": "q1", "inputs": [{"name": "input", "shape": [len(data), len(data[0])],
                                    "datatype": "FP32", "data": data}]}
    if outputs is not None:
        body["outputs"] = outputs
    if binary_output:
        body["parameters"] = {"binary_data_output": True}
    return json.dumps(body).encode()


def grpc_infer(d, data):
    """The gRPC answer's output floats (raw) for the same rows."""
    with d.channel() as ch:
        req = InferReq(model_name="small", id="q1")
        t = req.inputs.add(name="input", datatype="FP32")
        t.shape.extend([len(data), len(data[0])])
        t.contents.fp32_contents.extend([x for r in data for x in r])
        resp = unary(ch, SVC + "ModelInfer", req, InferResp)
    return resp.raw_output_contents[0]


def floats32(values):
    """JSON numbers as float32 bytes (what they read back to)."""
    return struct.pack("<%df" % len(values), *values)


def wait_ready(d, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http(d, "GET", "/v2/models/small/ready")[0] == 200:
            return True
        time.sleep(0.05)
    return False


class Rest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(config())
        if cls.d.http_port is None or not wait_ready(cls.d):
            cls.d.__exit__(None, None, None)
            raise RuntimeError("no REST port or the model never got ready")

    def setUp(self):
        self.assertTrue(wait_ready(self.d))

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def test_health_server_and_model_endpoints(self):
        for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/small/ready",
                     "/v2/models/small/versions/1/ready"):
            status, _, body = http(self.d, "GET", path)
            self.assertEqual(status, 200, path)
        status, _, body = http(self.d, "GET", "/v2")
        self.assertEqual(status, 200)
        meta = json.loads(body)
        self.assertEqual(meta["name"], "eied")
        self.assertIn("model_repository", meta["extensions"])
        status, _, body = http(self.d, "GET", "/v2/models/small")
        self.assertEqual(status, 200)
        m = json.loads(body)
        with self.d.channel() as ch:
            g = unary(ch, SVC + "ModelMetadata", message("inference.ModelMetadataRequest")(
                name="small"), message("inference.ModelMetadataResponse"))
        self.assertEqual(m["name"], g.name)
        self.assertEqual(m["versions"], list(g.versions))
        self.assertEqual(m["platform"], g.platform)
        self.assertEqual(m["inputs"], [{"name": t.name, "datatype": t.datatype,
                                        "shape": list(t.shape)} for t in g.inputs])
        self.assertEqual(m["outputs"][0]["shape"], list(g.outputs[0].shape))
        status, _, body = http(self.d, "GET", "/v2/models/small/stats")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["model_stats"][0]["name"], "small")

    def test_model_config_as_tritonclient_reads_it_over_grpc_and_rest(self):
        with self.d.channel() as ch:
            g = unary(ch, SVC + "ModelConfig", message("inference.ModelConfigRequest")(
                name="small"), message("inference.ModelConfigResponse")).config
        self.assertEqual(g.name, "small")
        self.assertEqual(g.backend, "cpu")
        self.assertGreater(g.max_batch_size, 0)
        self.assertEqual([(t.name, list(t.dims)) for t in g.input], [("input", [LAYERS[0]])])
        self.assertEqual([(t.name, list(t.dims)) for t in g.output], [("output", [LAYERS[-1]])])
        self.assertEqual(g.input[0].data_type, 11)  # TYPE_FP32
        self.assertEqual(g.instance_group[0].kind, 2)  # KIND_CPU
        self.assertTrue(g.HasField("dynamic_batching"))
        status, _, body = http(self.d, "GET", "/v2/models/small/config")
        self.assertEqual(status, 200, body)
        c = json.loads(body)
        self.assertEqual(c["name"], "small")
        self.assertEqual(c["max_batch_size"], g.max_batch_size)
        self.assertEqual(c["input"], [{"name": "input", "data_type": "TYPE_FP32",
                                       "dims": [LAYERS[0]]}])
        self.assertEqual(c["instance_group"][0]["kind"], "KIND_CPU")
        self.assertEqual(c["dynamic_batching"]["max_queue_delay_microseconds"],
                         g.dynamic_batching.max_queue_delay_microseconds)
        status, _, body = http(self.d, "GET", "/v2/models/nope/config")
        self.assertEqual(status, 404)

    def test_infer_json_equals_grpc_bit_for_bit(self):
        data = rows(3, seed=5)
        status, headers, body = http(self.d, "POST", "/v2/models/small/infer", infer_json(data),
                                     {"Content-Type": "application/json"})
        self.assertEqual(status, 200, body)
        r = json.loads(body)
        self.assertEqual(r["model_name"], "small")
        self.assertEqual(r["id"], "q1")
        out = r["outputs"][0]
        self.assertEqual(out["name"], "output")
        self.assertEqual(out["shape"], [3, LAYERS[-1]])
        self.assertEqual(floats32(out["data"]), grpc_infer(self.d, data))

    def test_infer_with_curl_and_a_version_in_the_path(self):
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        data = rows(2, seed=9)
        path = os.path.join(TMP.name, "req.json")
        with open(path, "wb") as f:
            f.write(infer_json(data))
        r = subprocess.run(["curl", "-sS", "--fail-with-body", "-H", "Content-Type: application/json",
                            "--data-binary", "@" + path,
                            "http://127.0.0.1:%d/v2/models/small/versions/1/infer" %
                            self.d.http_port], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        out = json.loads(r.stdout)["outputs"][0]
        self.assertEqual(floats32(out["data"]), grpc_infer(self.d, data))

    def test_binary_tensor_extension_both_ways(self):
        data = rows(2, seed=3)
        flat = [x for r in data for x in r]
        raw = struct.pack("<%df" % len(flat), *flat)
        header = json.dumps({"inputs": [{"name": "input", "shape": [2, LAYERS[0]],
                                         "datatype": "FP32",
                                         "parameters": {"binary_data_size": len(raw)}}],
                             "outputs": [{"name": "output",
                                          "parameters": {"binary_data": True}}]}).encode()
        status, headers, body = http(self.d, "POST", "/v2/models/small/infer", header + raw,
                                     {"Inference-Header-Content-Length": str(len(header)),
                                      "Content-Type": "application/octet-stream"})
        self.assertEqual(status, 200, body)
        jl = int(headers["Inference-Header-Content-Length"])
        r = json.loads(body[:jl])
        size = r["outputs"][0]["parameters"]["binary_data_size"]
        self.assertNotIn("data", r["outputs"][0])
        self.assertEqual(len(body), jl + size)
        self.assertEqual(body[jl:], grpc_infer(self.d, data))

    def test_errors_carry_the_status_triton_uses_and_grpcs_message(self):
        status, _, body = http(self.d, "GET", "/v2/models/nope")
        self.assertEqual(status, 404)
        self.assertIn("nope", json.loads(body)["error"])
        status, _, body = http(self.d, "POST", "/v2/models/small/infer", b"{\"inputs\": [")
        self.assertEqual(status, 400)
        self.assertIn("not valid JSON", json.loads(body)["error"])
        # a wrong shape: the same message gRPC gives
        bad = {"inputs": [{"name": "input", "shape": [1, 63], "datatype": "FP32",
                           "data": [0.0] * 63}]}
        status, _, body = http(self.d, "POST", "/v2/models/small/infer", json.dumps(bad).encode())
        self.assertEqual(status, 400)
        with self.d.channel() as ch:
            req = InferReq(model_name="small")
            t = req.inputs.add(name="input", datatype="FP32")
            t.shape.extend([1, 63])
            t.contents.fp32_contents.extend([0.0] * 63)
            with self.assertRaises(grpc.RpcError) as e:
                unary(ch, SVC + "ModelInfer", req, InferResp)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(json.loads(body)["error"], e.exception.details())
        status, _, body = http(self.d, "GET", "/v1/models")
        self.assertEqual(status, 404)
        self.assertIn("error", json.loads(body))
        status, _, _ = http(self.d, "DELETE", "/v2/models/small")
        self.assertEqual(status, 405)

    def test_repository_extension_needs_the_admin_token(self):
        status, _, body = http(self.d, "POST", "/v2/repository/index", b"{}")
        self.assertEqual(status, 200, body)
        self.assertEqual([m["name"] for m in json.loads(body)], ["small"])
        status, _, body = http(self.d, "POST", "/v2/repository/models/small/unload", b"{}")
        self.assertEqual(status, 401, body)
        self.assertIn("Bearer", json.loads(body)["error"])
        status, _, body = http(self.d, "POST", "/v2/repository/models/small/unload", b"{}",
                               {"Authorization": "Bearer wrong"})
        self.assertEqual(status, 403, body)
        status, _, body = http(self.d, "POST", "/v2/repository/models/small/load", b"{}",
                               {"Authorization": "Bearer " + TOKEN})
        self.assertEqual(status, 200, body)


class Tls(unittest.TestCase):
    def test_with_tls_the_rest_port_speaks_https_only(self):
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        cert, key = os.path.join(TMP.name, "c.pem"), os.path.join(TMP.name, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                       capture_output=True)
        with Daemon(config("[tls]\ncert = %s\nkey = %s\n" % (cert, key))) as d:
            url = "https://127.0.0.1:%d/v2/health/live" % d.http_port
            r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                "--cacert", cert, url], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(r.stdout, "200", r.stderr)
            r = subprocess.run(["curl", "-sS", "--max-time", "5", url.replace("https", "http")],
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0, "plaintext answered on the TLS port")


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=TMP.name)


def make_ca(name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
            "-subj", "/CN=" + name)
    return os.path.join(TMP.name, name + ".pem")


def make_cert(name, ca, san=None):
    """Signed by ca: a server certificate when san is given, else a client one."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
    with open(os.path.join(TMP.name, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\n" % san if san else "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext")
    return os.path.join(TMP.name, name + ".pem"), os.path.join(TMP.name, name + ".key")


class MutualTls(unittest.TestCase):
    """[tls] client_ca and require_client_cert hold on the REST port as on gRPC, and
    admin by certificate identity works there too."""

    def curl(self, d, path, cert=None, method="GET"):
        args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", method,
                "--cacert", self.ca]
        if cert:
            args += ["--cert", cert[0], "--key", cert[1]]
        r = subprocess.run(args + ["https://127.0.0.1:%d%s" % (d.http_port, path)],
                           capture_output=True, text=True, timeout=30)
        return r.stdout

    def test_client_certificates_are_required_and_checked(self):
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        self.ca = make_ca("rest-ca")
        make_ca("rest-other-ca")
        server = make_cert("rest-server", "rest-ca", san="IP:127.0.0.1")
        admin = make_cert("rest-admin", "rest-ca")
        user = make_cert("rest-user", "rest-ca")
        rogue = make_cert("rest-rogue", "rest-other-ca")
        conf = ("[tls]\ncert = %s\nkey = %s\nclient_ca = %s\nrequire_client_cert = true\n"
                "[admin]\nallowed_identities = rest-admin\n[models]\nsmall = %s\n"
                % (server[0], server[1], self.ca, MODEL))
        with Daemon("[server]\ndrain_delay = 0s\n" + conf) as d:
            self.assertIsNotNone(d.http_port)
            self.assertEqual(self.curl(d, "/v2/health/live"), "403")
            self.assertEqual(self.curl(d, "/v2/health/live", rogue), "403")
            self.assertEqual(self.curl(d, "/v2/health/live", user), "200")
            self.assertEqual(self.curl(d, "/v2/repository/models/small/unload", user, "POST"),
                             "403")
            self.assertEqual(self.curl(d, "/v2/repository/models/small/unload", admin,
                                       "POST"), "200")


class Limits(unittest.TestCase):
    def test_a_body_over_http_max_body_is_refused_with_413(self):
        with Daemon(config("http_max_body = 4KiB\n")) as d:
            self.assertTrue(wait_ready(d))
            status, _, body = http(d, "POST", "/v2/models/small/infer", infer_json(rows(8)))
            self.assertEqual(status, 413)
            self.assertIn("http_max_body", json.loads(body)["error"])
            status, _, _ = http(d, "POST", "/v2/models/small/infer", infer_json(rows(1)))
            self.assertEqual(status, 200)

    def test_an_empty_http_listen_turns_rest_off(self):
        with Daemon(config(), args=("--set", "server.http_listen=")) as d:
            self.assertIsNone(d.http_port)
            self.assertIsNotNone(d.port)


if __name__ == "__main__":
    harness.main()
