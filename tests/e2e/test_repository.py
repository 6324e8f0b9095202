"""End-to-end: the model repository and hot swap. Versions published under
load never fail a request and every answer is exactly one complete
version's; bad, truncated, half-copied and unsigned files never serve;
explicit mode, version policies, unload under load, signatures, memory."""
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
from harness import EIECTL, Daemon, message, metrics, reference, synth_model, unary

SVC = "/inference.GRPCInferenceService/"
InferReq = message("inference.ModelInferRequest")
InferResp = message("inference.ModelInferResponse")
DIMS = [256, 128, 10]
TMP = tempfile.TemporaryDirectory(prefix="eie-repo-")
A = synth_model(os.path.join(TMP.name, "a.eie"), DIMS, density=0.3, seed=11, name="a")
B = synth_model(os.path.join(TMP.name, "b.eie"), DIMS, density=0.3, seed=22, name="b")
ROW = [((i * 37) % 11) / 10.0 - 0.5 for i in range(DIMS[0])]
REF = {A: reference(A, [ROW], TMP.name)[0], B: reference(B, [ROW], TMP.name)[0]}


def publish(repo, model, version, src, slow=False):
    """The documented deploy: write under a temporary name, rename into place."""
    d = os.path.join(repo, model, str(version))
    os.makedirs(d, exist_ok=True)
    if slow:
        with open(src, "rb") as f:
            data = f.read()
        with open(os.path.join(d, "model.eie"), "wb") as f:  # in place, no rename
            for i in range(0, len(data), 4096):
                f.write(data[i:i + 4096])
                f.flush()
                time.sleep(0.01)
        return
    if os.path.exists(src + ".sig"):  # the signature goes first, the model last
        shutil.copyfile(src + ".sig", os.path.join(d, "model.eie.sig.tmp"))
        os.rename(os.path.join(d, "model.eie.sig.tmp"), os.path.join(d, "model.eie.sig"))
    tmp = os.path.join(d, "model.eie.tmp")
    shutil.copyfile(src, tmp)
    os.rename(tmp, os.path.join(d, "model.eie"))


def config(repo, extra=""):
    return ("[server]\ndrain_delay = 0s\nexit_timeout = 5s\n"
            "[admin]\nallow_unauthenticated = true\n"
            "[repository]\npath = %s\npoll_interval = 100ms\n%s" % (repo, extra))


def infer(ch, model="m", version="", timeout=10):
    req = InferReq(model_name=model, model_version=version)
    req.inputs.add(name="input", datatype="FP32", shape=[1, DIMS[0]])
    req.raw_input_contents.append(struct.pack("<%df" % DIMS[0], *ROW))
    resp = unary(ch, SVC + "ModelInfer", req, InferResp, timeout=timeout)
    return resp.model_version, list(struct.unpack("<%df" % DIMS[-1], resp.raw_output_contents[0]))


def same(a, b):
    return all(abs(x - y) <= 1e-5 * max(1.0, abs(y)) for x, y in zip(a, b))


def ready(ch, model="m", version=""):
    r = unary(ch, SVC + "ModelReady", message("inference.ModelReadyRequest")(
        name=model, version=version), message("inference.ModelReadyResponse"))
    return r.ready


def wait_for(pred, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def index(ch):
    r = unary(ch, SVC + "RepositoryIndex", message("inference.RepositoryIndexRequest")(),
              message("inference.RepositoryIndexResponse"))
    return [(m.name, m.version, m.state, m.reason) for m in r.models]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Load:
    """16 clients calling ModelInfer until stopped; every answer is checked."""

    def __init__(self, d, expect, n=16, model="m"):
        self.d, self.expect, self.model = d, expect, model
        self.stop = threading.Event()
        self.failures, self.codes, self.count = [], {}, 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run) for _ in range(n)]
        for t in self.threads:
            t.start()

    def run(self):
        with self.d.channel() as ch:
            while not self.stop.is_set():
                try:
                    version, out = infer(ch, self.model)
                    problem = self.expect(version, out)
                    with self.lock:
                        self.count += 1
                        if problem:
                            self.failures.append(problem)
                except grpc.RpcError as e:
                    with self.lock:
                        self.codes[e.code()] = self.codes.get(e.code(), 0) + 1

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()
        return self


def alternating(version, out):
    """Version v holds A when v is odd, B when even: the answer must be exactly that one."""
    want = REF[A] if int(version) % 2 == 1 else REF[B]
    return None if same(out, want) else "version %s answered other bytes" % version


class RepositoryTest(unittest.TestCase):
    def setUp(self):
        self.repo = tempfile.mkdtemp(prefix="repo-", dir=TMP.name)

    def test_100_versions_published_under_load_fail_nothing_and_leak_nothing(self):
        publish(self.repo, "m", 1, A)
        with Daemon(config(self.repo)) as d, d.channel() as ch:
            wait_for(lambda: ready(ch), what="version 1")
            load = Load(d, alternating)
            rss = {}
            for v in range(2, 102):
                publish(self.repo, "m", v, A if v % 2 == 1 else B)
                wait_for(lambda: ready(ch, version=str(v)), what="version %d" % v)
                # retire the folder the policy dropped, as an operator would
                shutil.rmtree(os.path.join(self.repo, "m", str(v - 1)))
                if v == 12:
                    rss["warm"] = rss_kib(d.proc.pid)
            time.sleep(0.3)
            load.finish()
            rss["end"] = rss_kib(d.proc.pid)
            self.assertEqual(load.codes, {})  # zero failed requests
            self.assertEqual(load.failures, [])  # every answer is one complete version's
            self.assertGreater(load.count, 100)
            self.assertEqual(infer(ch)[0], "101")
            m = metrics(d.metrics_port)
            self.assertGreaterEqual(m["eie_model_loads_total"], 101)
            print("rss after 10 swaps %d KiB, after 100 swaps %d KiB" % (rss["warm"], rss["end"]))
            if not harness.SANITIZED:  # ASan keeps freed memory in quarantine; LSan checks leaks
                self.assertLess(rss["end"], rss["warm"] * 1.10)

    def test_corrupt_truncated_then_good_version(self):
        publish(self.repo, "m", 1, A)
        with Daemon(config(self.repo)) as d, d.channel() as ch:
            wait_for(lambda: ready(ch), what="version 1")
            load = Load(d, lambda v, out: None if v == "1" and same(out, REF[A]) else "wrong " + v)
            with open(B, "rb") as f:
                data = bytearray(f.read())
            bad = os.path.join(TMP.name, "corrupt.eie")
            data[len(data) // 2] ^= 0xFF
            with open(bad, "wb") as f:
                f.write(data)
            publish(self.repo, "m", 2, bad)
            wait_for(lambda: any("version 2" in r[3] for r in index(ch)), what="v2 rejected")
            self.assertIn("checksum", " ".join(r[3] for r in index(ch)))
            short = os.path.join(TMP.name, "short.eie")
            with open(short, "wb") as f:
                f.write(data[: len(data) // 3])
            publish(self.repo, "m", 3, short)
            wait_for(lambda: any("version 3" in r[3] for r in index(ch)), what="v3 rejected")
            self.assertIn("truncated", " ".join(r[3] for r in index(ch)))
            load.finish()
            self.assertEqual(load.codes, {})
            self.assertEqual(load.failures, [])
            self.assertFalse(ready(ch, version="2"))
            self.assertFalse(ready(ch, version="3"))
            self.assertGreaterEqual(metrics(d.metrics_port)["eie_model_load_failures_total"], 2)
            publish(self.repo, "m", 4, B)  # a bad version followed by a good one
            wait_for(lambda: ready(ch, version="4"), what="version 4")
            self.assertTrue(same(infer(ch)[1], REF[B]))

    def test_file_copied_in_place_slowly_is_never_served_half_written(self):
        publish(self.repo, "m", 1, A)
        with Daemon(config(self.repo)) as d, d.channel() as ch:
            wait_for(lambda: ready(ch), what="version 1")

            def expect(v, out):
                want = {"1": REF[A], "2": REF[B]}.get(v)
                return None if want is not None and same(out, want) else "bad answer " + v
            load = Load(d, expect)
            publish(self.repo, "m", 2, B, slow=True)
            wait_for(lambda: ready(ch, version="2"), what="version 2")
            time.sleep(0.2)
            load.finish()
            self.assertEqual(load.codes, {})
            self.assertEqual(load.failures, [])
            self.assertTrue(same(infer(ch)[1], REF[B]))

    def test_latest_2_keeps_two_versions_addressable(self):
        for v, src in ((1, A), (2, B), (3, A)):
            publish(self.repo, "m", v, src)
        with Daemon(config(self.repo, "[version_policy]\nm = latest 2\n")) as d, \
                d.channel() as ch:
            wait_for(lambda: ready(ch, version="3") and ready(ch, version="2"), what="v2+v3")
            self.assertEqual(infer(ch)[0], "3")
            self.assertTrue(same(infer(ch, version="2")[1], REF[B]))
            self.assertTrue(same(infer(ch, version="3")[1], REF[A]))
            with self.assertRaises(grpc.RpcError) as cm:
                infer(ch, version="1")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
            self.assertIn("serving: 2, 3", cm.exception.details())

    def test_ignored_names_never_load(self):
        publish(self.repo, "m", 1, A)
        for bad in ("m/01", "m/abc", "m/.2"):
            os.makedirs(os.path.join(self.repo, bad))
            shutil.copyfile(B, os.path.join(self.repo, bad, "model.eie"))
        os.makedirs(os.path.join(self.repo, ".hidden", "1"))
        os.makedirs(os.path.join(self.repo, "x.tmp", "1"))
        with Daemon(config(self.repo)) as d, d.channel() as ch:
            wait_for(lambda: ready(ch), what="version 1")
            time.sleep(0.3)
            self.assertEqual([(r[0], r[1]) for r in index(ch)], [("m", "1")])

    def test_explicit_mode_loads_on_request_and_ignores_repository_changes(self):
        publish(self.repo, "m", 1, A)
        with Daemon(config(self.repo, "control_mode = explicit\n")) as d, d.channel() as ch:
            time.sleep(0.3)
            self.assertFalse(ready(ch))  # nothing loads until asked
            unary(ch, SVC + "RepositoryModelLoad",
                  message("inference.RepositoryModelLoadRequest")(model_name="m"),
                  message("inference.RepositoryModelLoadResponse"))
            wait_for(lambda: ready(ch), what="explicit load")
            publish(self.repo, "m", 2, B)
            time.sleep(0.5)  # several poll intervals: nothing may change
            self.assertEqual(infer(ch)[0], "1")
            load = Load(d, lambda v, out: None if same(out, REF[A]) else "wrong")
            time.sleep(0.2)
            unary(ch, SVC + "RepositoryModelUnload",
                  message("inference.RepositoryModelUnloadRequest")(model_name="m"),
                  message("inference.RepositoryModelUnloadResponse"))
            time.sleep(0.2)
            load.finish()
            self.assertEqual(load.failures, [])
            self.assertEqual(set(load.codes), {grpc.StatusCode.NOT_FOUND})  # after the unload
            with self.assertRaises(grpc.RpcError) as cm:
                infer(ch)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
            unary(ch, SVC + "RepositoryModelLoad",
                  message("inference.RepositoryModelLoadRequest")(model_name="m"),
                  message("inference.RepositoryModelLoadResponse"))
            wait_for(lambda: ready(ch, version="2"), what="reload picks up version 2")

    def test_poll_mode_refuses_load_and_unload_requests(self):
        publish(self.repo, "m", 1, A)
        with Daemon(config(self.repo)) as d, d.channel() as ch:
            wait_for(lambda: ready(ch), what="version 1")
            for rpc, req, resp in (
                    ("RepositoryModelLoad", "inference.RepositoryModelLoadRequest",
                     "inference.RepositoryModelLoadResponse"),
                    ("RepositoryModelUnload", "inference.RepositoryModelUnloadRequest",
                     "inference.RepositoryModelUnloadResponse")):
                with self.assertRaises(grpc.RpcError) as cm:
                    unary(ch, SVC + rpc, message(req)(model_name="m"), message(resp))
                self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
                self.assertIn("control_mode is poll", cm.exception.details())

    def test_sighup_rescans_in_none_mode(self):
        publish(self.repo, "m", 1, A)
        with Daemon(config(self.repo, "control_mode = none\n")) as d, d.channel() as ch:
            wait_for(lambda: ready(ch), what="version 1")
            publish(self.repo, "m", 2, B)
            time.sleep(0.4)
            self.assertEqual(infer(ch)[0], "1")
            d.signal(signal.SIGHUP)
            wait_for(lambda: ready(ch, version="2"), what="version 2 after SIGHUP")
            self.assertTrue(same(infer(ch)[1], REF[B]))

    def test_signatures_are_required_and_checked(self):
        key = os.path.join(TMP.name, "k.pem")
        pub = os.path.join(TMP.name, "k.pub.pem")
        other = os.path.join(TMP.name, "other.pem")
        other_pub = os.path.join(TMP.name, "other.pub.pem")
        for k, p in ((key, pub), (other, other_pub)):
            if not os.path.exists(k):
                subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", k],
                               check=True, capture_output=True)
                subprocess.run(["openssl", "pkey", "-in", k, "-pubout", "-out", p], check=True,
                               capture_output=True)

        def signed(src, keyfile, name, tamper_model=False, tamper_sig=False):
            """A signed copy of src in a staging folder, optionally tampered after signing."""
            path = os.path.join(TMP.name, name)
            shutil.copyfile(src, path)
            r = subprocess.run([EIECTL, "sign", "--key", keyfile, path], capture_output=True,
                               text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            for target, flip in ((path, tamper_model), (path + ".sig", tamper_sig)):
                if flip:
                    with open(target, "r+b") as f:
                        f.seek(10)
                        byte = f.read(1)
                        f.seek(10)
                        f.write(bytes([byte[0] ^ 1]))
            return path

        publish(self.repo, "m", 1, signed(A, key, "s1.eie"))
        with Daemon(config(self.repo, "require_signed = true\npublic_keys = %s\n" % pub)) as d, \
                d.channel() as ch:
            wait_for(lambda: ready(ch), what="signed version 1")
            reasons = lambda: " ".join(r[3] for r in index(ch))
            publish(self.repo, "m", 2, B)  # unsigned
            wait_for(lambda: "version 2" in reasons(), what="v2 refused")
            self.assertIn("unsigned", reasons())
            publish(self.repo, "m", 3, signed(B, other, "s3.eie"))  # wrong key
            wait_for(lambda: "version 3" in reasons(), what="v3 refused")
            self.assertIn("does not verify", reasons())
            publish(self.repo, "m", 4, signed(B, key, "s4.eie", tamper_model=True))
            wait_for(lambda: "version 4" in reasons(), what="v4 refused")
            self.assertIn("does not verify", reasons())
            publish(self.repo, "m", 5, signed(B, key, "s5.eie", tamper_sig=True))
            wait_for(lambda: "version 5" in reasons(), what="v5 refused")
            self.assertIn("does not verify", reasons())
            self.assertEqual(infer(ch)[0], "1")  # the signed version still serves
            publish(self.repo, "m", 6, signed(B, key, "s6.eie"))
            wait_for(lambda: ready(ch, version="6"), what="signed version 6")
            self.assertTrue(same(infer(ch)[1], REF[B]))

    def test_memory_budget_refuses_a_load_that_does_not_fit(self):
        big = synth_model(os.path.join(TMP.name, "bigger.eie"), [1024, 1024, 10], density=0.5)
        publish(self.repo, "m", 1, A)
        with Daemon(config(self.repo, "memory_budget = 600KiB\n")) as d, d.channel() as ch:
            wait_for(lambda: ready(ch), what="version 1")
            publish(self.repo, "m", 2, big)
            wait_for(lambda: any("memory_budget" in r[3] for r in index(ch)),
                     what="budget refusal")
            self.assertEqual(infer(ch)[0], "1")


if __name__ == "__main__":
    try:
        harness.main()
    finally:
        TMP.cleanup()
