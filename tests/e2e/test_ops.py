"""End-to-end: production operations. TLS with an independent client and a
test CA made here with openssl; mTLS refusals; the plaintext health-only
port; admin authorization by token and by client certificate; certificate
reload on SIGHUP; limits; the SIGTERM drain."""
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import grpc

import harness
from harness import Daemon, message, synth_model, unary

SVC = "/inference.GRPCInferenceService/"
HReq = message("grpc.health.v1.HealthCheckRequest")
HResp = message("grpc.health.v1.HealthCheckResponse")
SERVING = harness.enum_value("grpc.health.v1.HealthCheckResponse.ServingStatus", "SERVING")
NOT_SERVING = harness.enum_value("grpc.health.v1.HealthCheckResponse.ServingStatus", "NOT_SERVING")
InferReq = message("inference.ModelInferRequest")
InferResp = message("inference.ModelInferResponse")
TMP = tempfile.TemporaryDirectory(prefix="eie-ops-")
MODEL = synth_model(os.path.join(TMP.name, "m.eie"), [32, 16, 4], density=0.5, name="m")
SLOW = synth_model(os.path.join(TMP.name, "slow.eie"), [2048, 2048, 2048], density=0.5,
                   name="slow")
# One 256-row run of this takes well over 50 ms on any machine here, so a request queued
# behind it outlives a 50 ms cap however fast the kernels get and however slowly a loaded
# client sends (with SLOW, the runs kept pace with the client's sends under load).
SLOWER = synth_model(os.path.join(TMP.name, "slower.eie"), [2048] * 6, density=0.9,
                     name="slow")


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=TMP.name)


def make_ca(name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
            "-subj", "/CN=" + name)
    return os.path.join(TMP.name, name + ".pem")


def make_cert(name, ca, server=False):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
    ext = os.path.join(TMP.name, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server
                else "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", ext)
    return os.path.join(TMP.name, name + ".pem"), os.path.join(TMP.name, name + ".key")


def read(path):
    with open(path, "rb") as f:
        return f.read()


CA = make_ca("ca")
OTHER_CA = make_ca("other-ca")
SERVER_CERT, SERVER_KEY = make_cert("server", "ca", server=True)
ADMIN_CERT, ADMIN_KEY = make_cert("admin-client", "ca")
USER_CERT, USER_KEY = make_cert("plain-client", "ca")
ROGUE_CERT, ROGUE_KEY = make_cert("rogue-client", "other-ca")


def tls_channel(addr, root=CA, cert=None, key=None):
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(root),
        private_key=read(key) if key else None,
        certificate_chain=read(cert) if cert else None)
    return grpc.secure_channel(addr, creds)


def infer_req(model="m", dim=32, rows=1):
    req = InferReq(model_name=model)
    req.inputs.add(name="input", datatype="FP32", shape=[rows, dim])
    req.raw_input_contents.append(struct.pack("<%df" % (rows * dim), *([0.25] * (rows * dim))))
    return req


def tls_config(extra=""):
    cert, key = SERVER_CERT_PATHS
    return ("[tls]\ncert = %s\nkey = %s\n%s[models]\nm = %s\n" % (cert, key, extra, MODEL))


# the server's files are copies, so the reload test can replace them
SERVER_CERT_PATHS = (os.path.join(TMP.name, "live-server.pem"),
                     os.path.join(TMP.name, "live-server.key"))


def wait_ready(ch, model="m", timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = unary(ch, SVC + "ModelReady", message("inference.ModelReadyRequest")(name=model),
                  message("inference.ModelReadyResponse"))
        if r.ready:
            return
        time.sleep(0.05)
    raise AssertionError("model not ready")


class OpsTest(unittest.TestCase):
    def setUp(self):
        shutil.copyfile(SERVER_CERT, SERVER_CERT_PATHS[0])
        shutil.copyfile(SERVER_KEY, SERVER_CERT_PATHS[1])

    def code(self, fn):
        with self.assertRaises(grpc.RpcError) as cm:
            fn()
        return cm.exception.code(), cm.exception.details()

    def test_tls_serves_and_plaintext_health_port_answers_health_only(self):
        with Daemon(tls_config()) as d:
            with tls_channel(d.addr) as ch:
                wait_ready(ch)
                self.assertEqual(unary(ch, "/grpc.health.v1.Health/Check", HReq(), HResp).status,
                                 SERVING)
                resp = unary(ch, SVC + "ModelInfer", infer_req(), InferResp)
                self.assertEqual(list(resp.outputs[0].shape), [1, 4])
            with grpc.insecure_channel(d.addr) as plain:  # plaintext to the TLS port fails
                code, _ = self.code(lambda: unary(plain, "/grpc.health.v1.Health/Check", HReq(),
                                                  HResp, timeout=3))
                self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)
            with grpc.insecure_channel("127.0.0.1:%d" % d.health_port) as h:
                for service in ("", "liveness", "readiness"):
                    self.assertEqual(unary(h, "/grpc.health.v1.Health/Check",
                                           HReq(service=service), HResp).status, SERVING)
                code, details = self.code(lambda: unary(h, SVC + "ModelInfer", infer_req(),
                                                        InferResp))
                self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED)
                self.assertIn("grpc.health.v1 only", details)
            r = harness.eiectl("health", "--addr", "127.0.0.1:%d" % d.health_port, "--service",
                               "readiness")
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_mtls_refuses_no_cert_and_wrong_ca_and_accepts_the_right_cert(self):
        extra = "client_ca = %s\nrequire_client_cert = true\n" % CA
        with Daemon(tls_config(extra)) as d:
            check = lambda ch: unary(ch, "/grpc.health.v1.Health/Check", HReq(), HResp, timeout=3)
            with tls_channel(d.addr) as ch:
                self.assertEqual(self.code(lambda: check(ch))[0], grpc.StatusCode.UNAVAILABLE)
            with tls_channel(d.addr, cert=ROGUE_CERT, key=ROGUE_KEY) as ch:
                self.assertEqual(self.code(lambda: check(ch))[0], grpc.StatusCode.UNAVAILABLE)
            with tls_channel(d.addr, cert=USER_CERT, key=USER_KEY) as ch:
                self.assertEqual(check(ch).status, SERVING)

    def test_admin_rpcs_by_client_certificate_identity(self):
        extra = "client_ca = %s\n[admin]\nallowed_identities = admin-client\n" % CA
        unload = message("inference.RepositoryModelUnloadRequest")(model_name="m")
        uresp = message("inference.RepositoryModelUnloadResponse")
        with Daemon(tls_config(extra)) as d:
            with tls_channel(d.addr) as ch:  # no certificate: not authenticated
                wait_ready(ch)
                code, _ = self.code(lambda: unary(ch, SVC + "RepositoryModelUnload", unload,
                                                  uresp))
                self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
            with tls_channel(d.addr, cert=USER_CERT, key=USER_KEY) as ch:
                code, details = self.code(lambda: unary(ch, SVC + "RepositoryModelUnload",
                                                        unload, uresp))
                self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
                self.assertIn("allowed_identities", details)
            with tls_channel(d.addr, cert=ADMIN_CERT, key=ADMIN_KEY) as ch:
                unary(ch, SVC + "RepositoryModelUnload", unload, uresp)
                code, _ = self.code(lambda: unary(ch, SVC + "ModelInfer", infer_req(), InferResp))
                self.assertEqual(code, grpc.StatusCode.NOT_FOUND)

    def test_admin_token_missing_wrong_right(self):
        token = os.path.join(TMP.name, "token")
        with open(token, "w") as f:
            f.write("tok-123\n")
        load = message("inference.RepositoryModelLoadRequest")(model_name="m")
        lresp = message("inference.RepositoryModelLoadResponse")
        with Daemon("[admin]\ntoken_file = %s\n[models]\nm = %s\n" % (token, MODEL)) as d, \
                d.channel() as ch:
            wait_ready(ch)
            code, _ = self.code(lambda: unary(ch, SVC + "RepositoryModelLoad", load, lresp))
            self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
            code, _ = self.code(lambda: unary(ch, SVC + "RepositoryModelLoad", load, lresp,
                                              metadata=[("authorization", "Bearer tok-124")]))
            self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
            unary(ch, SVC + "RepositoryModelLoad", load, lresp,
                  metadata=[("authorization", "Bearer tok-123")])
            # a new token takes effect on SIGHUP
            with open(token, "w") as f:
                f.write("tok-456\n")
            d.signal(signal.SIGHUP)
            time.sleep(0.3)
            code, _ = self.code(lambda: unary(ch, SVC + "RepositoryModelLoad", load, lresp,
                                              metadata=[("authorization", "Bearer tok-123")]))
            self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
            wait_ready(ch)
            unary(ch, SVC + "RepositoryModelLoad", load, lresp,
                  metadata=[("authorization", "Bearer tok-456")])
            self.assertNotIn("tok-", d.log())

    def test_admin_rpcs_are_refused_unless_configured(self):
        with Daemon("[models]\nm = %s\n" % MODEL) as d, d.channel() as ch:
            wait_ready(ch)
            code, details = self.code(lambda: unary(
                ch, SVC + "RepositoryModelUnload",
                message("inference.RepositoryModelUnloadRequest")(model_name="m"),
                message("inference.RepositoryModelUnloadResponse")))
            self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
            self.assertIn("admin RPCs are disabled", details)

    def test_sighup_reloads_certificates_without_dropping_connections(self):
        with Daemon(tls_config()) as d:
            old = tls_channel(d.addr)
            wait_ready(old)
            make_ca("ca2")
            cert2, key2 = make_cert("server2", "ca2", server=True)
            shutil.copyfile(cert2, SERVER_CERT_PATHS[0])
            shutil.copyfile(key2, SERVER_CERT_PATHS[1])
            d.signal(signal.SIGHUP)
            time.sleep(0.3)
            with tls_channel(d.addr, root=os.path.join(TMP.name, "ca2.pem")) as new:
                self.assertEqual(unary(new, "/grpc.health.v1.Health/Check", HReq(),
                                       HResp).status, SERVING)
            # the connection made before the reload still works
            self.assertEqual(unary(old, "/grpc.health.v1.Health/Check", HReq(), HResp).status,
                             SERVING)
            old.close()
            with tls_channel(d.addr) as stale:  # the old CA no longer verifies new handshakes
                code, _ = self.code(lambda: unary(stale, "/grpc.health.v1.Health/Check", HReq(),
                                                  HResp, timeout=3))
                self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)

    def test_bad_tls_configuration_fails_start_with_a_clear_error(self):
        cases = [
            ("[tls]\ncert = %s\n" % SERVER_CERT, "must both be set"),
            ("[tls]\ncert = %s\nkey = %s\n" % (SERVER_CERT, ADMIN_KEY), "does not match"),
            ("[tls]\ncert = /nonexistent.pem\nkey = %s\n" % SERVER_KEY, "/nonexistent.pem"),
            ("[tls]\ncert = %s\nkey = %s\nrequire_client_cert = true\n"
             % (SERVER_CERT, SERVER_KEY), "needs tls.client_ca"),
        ]
        for config, text in cases:
            path = os.path.join(TMP.name, "bad.conf")
            with open(path, "w") as f:
                f.write(config)
            r = subprocess.run([harness.EIED, "--config", path, *harness.LOOPBACK_FLAGS],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(text, r.stderr)

    def test_limits_return_their_codes(self):
        config = ("[server]\nmax_receive_message_size = 2KiB\n"
                  "[inference]\nmax_batch = 4\nmax_tensor_elements = 64\n"
                  "[models]\nm = %s\n" % MODEL)
        with Daemon(config) as d, d.channel() as ch:
            wait_ready(ch)
            infer = lambda req: unary(ch, SVC + "ModelInfer", req, InferResp)
            self.assertEqual(self.code(lambda: infer(infer_req(rows=5)))[0],
                             grpc.StatusCode.INVALID_ARGUMENT)  # max_batch
            code, details = self.code(lambda: infer(infer_req(rows=3)))  # 96 > 64 elements
            self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertIn("max_tensor_elements", details)
            big = infer_req(rows=1)
            big.id = "x" * 4096  # message over max_receive_message_size
            self.assertEqual(self.code(lambda: infer(big))[0],
                             grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertEqual(len(infer(infer_req(rows=2)).outputs), 1)

    def test_max_timeout_caps_what_a_request_may_wait(self):
        config = ("[inference]\nmax_timeout = 50ms\nmax_inflight_batches = 1\nmax_batch = 256\n"
                  "batch_window_us = 0\n[models]\nslow = %s\n" % SLOWER)
        with Daemon(config) as d, d.channel() as ch:
            wait_ready(ch, "slow", timeout=60)
            call = ch.unary_unary(SVC + "ModelInfer",
                                  request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=InferResp.FromString)
            reqs = [infer_req("slow", 2048, rows=256) for _ in range(4)]  # built before timing
            first = call.future(reqs[0], timeout=60)
            time.sleep(0.01)
            queued = [call.future(r, timeout=60) for r in reqs[1:]]
            codes = []
            for f in [first] + queued:
                try:
                    f.result()
                    codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as e:
                    codes.append(e.code())
            # the first ran at once; the client allowed the others 60 s, but the server's cap
            # is 50 ms: the last, queued behind the others' runs, expired and was not computed
            self.assertEqual(codes[0], grpc.StatusCode.OK)
            self.assertEqual(codes[-1], grpc.StatusCode.DEADLINE_EXCEEDED)

    def test_sigterm_readiness_flips_before_the_listener_closes_and_in_flight_work_finishes(self):
        # exit_timeout is generous: under ASan on a loaded machine the in-flight runs take
        # seconds each, and this test is about order, not speed
        config = ("[server]\ndrain_delay = 700ms\nexit_timeout = 300s\n"
                  "[inference]\nmax_inflight_batches = 1\nbatch_window_us = 0\nmax_batch = 256\n"
                  "[models]\nslow = %s\n" % SLOW)
        with Daemon(config) as d, d.channel() as ch:
            wait_ready(ch, "slow", timeout=60)
            health = grpc.insecure_channel("127.0.0.1:%d" % d.health_port)
            call = ch.unary_unary(SVC + "ModelInfer",
                                  request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=InferResp.FromString)
            reqs = [infer_req("slow", 2048, rows=256) for _ in range(4)]
            futures = [call.future(r, timeout=60) for r in reqs]
            time.sleep(0.05)
            d.signal(signal.SIGTERM)
            t0 = time.monotonic()
            while unary(health, "/grpc.health.v1.Health/Check", HReq(service="readiness"),
                        HResp).status != NOT_SERVING:
                self.assertLess(time.monotonic() - t0, 0.5)
            # still serving during drain_delay, liveness stays SERVING
            self.assertEqual(unary(health, "/grpc.health.v1.Health/Check",
                                   HReq(service="liveness"), HResp).status, SERVING)
            late = call.future(infer_req("slow", 2048, rows=1), timeout=60)
            for f in futures + [late]:
                self.assertEqual(list(f.result(timeout=300).outputs[0].shape)[1], 2048)
            self.assertEqual(d.wait(timeout=60), 0)
            health.close()


if __name__ == "__main__":
    try:
        harness.main()
    finally:
        TMP.cleanup()
