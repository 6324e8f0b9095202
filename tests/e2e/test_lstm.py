"""End-to-end: an ONNX LSTM whose initial state comes from graph inputs h0, c0
[1, N, H], imported and served. The model then has three inputs, which the
KServe metadata lists; a request gives the sequence x [T, N, I] and one
[1, N, H] state each; the outputs equal a float64 LSTM started from that
state, for T = 1 and T > 1, on the cpu backend and within the fixed-point
bound on eie-sim; a request without a state, or with one of the wrong
shape, is refused naming it. Sequences sent together run side by side in
one engine run, each with its own state and length and with the bits it
has alone. Python grpcio is the independent client."""
import json
import os
import sys
import tempfile
import time
import unittest

import grpc
import numpy as np
import onnx

import harness
from harness import Daemon, eiectl

sys.path.insert(0, os.path.join(harness.SOURCE, "tests", "engine", "onnx"))
import test_graph_import as cases  # noqa: E402

SVC = "/inference.GRPCInferenceService/"
N, I, H = 2, 5, 4


def wait_ready(ch, name):
    for _ in range(200):
        if harness.unary(ch, SVC + "ModelReady",
                         harness.message("inference.ModelReadyRequest")(name=name),
                         harness.message("inference.ModelReadyResponse")).ready:
            return
        time.sleep(0.05)
    raise AssertionError("model %s never became ready" % name)


def infer_stub(ch):
    return ch.unary_unary(SVC + "ModelInfer",
                          request_serializer=lambda q: q.SerializeToString(),
                          response_deserializer=harness.message(
                              "inference.ModelInferResponse").FromString)


def request(model, tensors, backend=None):
    req = harness.message("inference.ModelInferRequest")(model_name=model)
    for name, a in tensors:
        t = req.inputs.add(name=name, datatype="FP32")
        t.shape.extend(a.shape)
        req.raw_input_contents.append(a.astype("<f4").tobytes())
    if backend:
        req.parameters["backend"].string_param = backend
    return req


class LstmFedStateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="eie-lstm-fed-")
        rng = np.random.default_rng(8)
        paths = {}
        for name, outs in (("fed", ("y", "Y_h", "Y_c")), ("fed1", ("y",))):
            m, w, _, _ = cases.lstm_model(rng, I=I, H=H, N=N, state="input", outputs=outs)
            src = os.path.join(cls.tmp.name, name + ".onnx")
            onnx.save(m, src)
            paths[name] = os.path.join(cls.tmp.name, name + ".eie")
            r = eiectl("import", src, "-o", paths[name])
            assert r.returncode == 0, r.stderr
            setattr(cls, "w_" + name, w)
        cls.paths = paths
        cls.rng = rng

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def state(self):
        return (self.rng.standard_normal((1, N, H)).astype(np.float32) * 0.8,
                self.rng.standard_normal((1, N, H)).astype(np.float32) * 0.8)

    def check(self, resp, x, h0, c0, w, names, tol):
        Y, Yh, Yc = cases.np_lstm(x, w["W"], w["R"], w["B"], h0, c0)
        want = {"y": Y[:, 0], "Y_h": Yh, "Y_c": Yc}
        self.assertEqual([o.name for o in resp.outputs], list(names))
        for o, raw in zip(resp.outputs, resp.raw_output_contents):
            exp = want[o.name]
            self.assertEqual(list(o.shape), list(exp.shape), o.name)
            got = np.frombuffer(raw, "<f4").astype(np.float64)
            err = np.abs(got - exp.ravel()) / np.maximum(1.0, np.abs(exp.ravel()))
            self.assertLessEqual(np.max(err), tol, o.name)

    def test_three_inputs_in_metadata_and_sequences_from_their_own_state(self):
        conf = ("[server]\ndrain_delay = 0s\nexit_timeout = 5s\n[inference]\n"
                "max_sequence = 16\nbatch_window_us = 20000\n[models]\nfed = %s\n"
                % self.paths["fed"])
        with Daemon(conf) as d, d.channel() as ch:
            wait_ready(ch, "fed")
            mm = harness.unary(ch, SVC + "ModelMetadata",
                               harness.message("inference.ModelMetadataRequest")(name="fed"),
                               harness.message("inference.ModelMetadataResponse"))
            self.assertEqual([(t.name, t.datatype, list(t.shape)) for t in mm.inputs],
                             [("x", "FP32", [-1, N, I]), ("h0", "FP32", [1, N, H]),
                              ("c0", "FP32", [1, N, H])])
            self.assertEqual([(t.name, list(t.shape)) for t in mm.outputs],
                             [("y", [-1, N, H]), ("Y_h", [1, N, H]), ("Y_c", [1, N, H])])
            stub = infer_stub(ch)
            # sent at once, each with its own state: none is joined to another or
            # starts from another's state; the inputs in any order
            sent = []
            for T in (1, 7, 16, 3):
                x = self.rng.standard_normal((T, N, I)).astype(np.float32)
                x[x < -0.8] = 0.0
                h0, c0 = self.state()
                ts = [("x", x), ("h0", h0), ("c0", c0)]
                if T == 3:
                    ts = ts[::-1]
                sent.append((x, h0, c0, request("fed", ts)))
            futures = [stub.future(q, timeout=10) for *_, q in sent]
            for (x, h0, c0, _), f in zip(sent, futures):
                self.check(f.result(), x, h0, c0, self.w_fed, ("y", "Y_h", "Y_c"), 1e-5)
            # every input is required, each of its own shape
            x = np.zeros((4, N, I), np.float32)
            h0, c0 = self.state()
            bad = [
                ([("x", x), ("h0", h0)], "expected 3 input tensors, got 2"),
                ([("x", x), ("h0", h0), ("h0b", c0)], "unknown input 'h0b'"),
                ([("x", x), ("h0", np.zeros((4, N, H), np.float32)), ("c0", c0)],
                 "input 'h0': shape [4,2,4] does not match [1,2,4]"),
                ([("x", x), ("h0", h0), ("c0", np.zeros((1, N, H + 1), np.float32))],
                 "input 'c0': shape [1,2,5] does not match [1,2,4]"),
                ([("x", np.zeros((17, N, I), np.float32)), ("h0", h0), ("c0", c0)],
                 "sequence of steps 17 is over max_sequence 16"),
            ]
            for ts, needle in bad:
                with self.assertRaises(grpc.RpcError) as e:
                    stub(request("fed", ts), timeout=10)
                self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, needle)
                self.assertIn(needle, e.exception.details())
            # the daemon still answers after the refusals
            self.check(stub(request("fed", [("x", x), ("h0", h0), ("c0", c0)]), timeout=10),
                       x, h0, c0, self.w_fed, ("y", "Y_h", "Y_c"), 1e-5)

    def test_eiectl_infer_sends_the_state_at_its_own_size(self):
        # x carries T rows, h0 and c0 one each ([1, N, H] whatever T); Y_h, Y_c come
        # back as one row, y as T
        conf = ("[server]\ndrain_delay = 0s\nexit_timeout = 5s\n[models]\nfed = %s\n"
                % self.paths["fed"])
        T = 5
        x = self.rng.standard_normal((T, N, I)).astype(np.float32)
        h0, c0 = self.state()
        files = {}
        for name, a in (("x", x), ("h0", h0), ("c0", c0)):
            files[name] = os.path.join(self.tmp.name, "infer_%s.npy" % name)
            np.save(files[name], a)
        with Daemon(conf) as d, d.channel() as ch:
            wait_ready(ch, "fed")
            addr = "127.0.0.1:%d" % d.port
            r = eiectl("infer", "-m", "fed", "--addr", addr, "--json",
                       *[a for k in ("x", "h0", "c0") for a in ("--input", "%s=%s" % (k, files[k]))])
            self.assertEqual(r.returncode, 0, r.stderr)
            out = {o["name"]: o for o in json.loads(r.stdout)["outputs"]}
            Y, Yh, Yc = cases.np_lstm(x, self.w_fed["W"], self.w_fed["R"], self.w_fed["B"], h0, c0)
            for name, exp in (("y", Y[:, 0]), ("Y_h", Yh), ("Y_c", Yc)):
                got = np.array(out[name]["data"], np.float64)
                self.assertEqual(got.shape, (exp.shape[0], N * H), name)
                self.assertLessEqual(np.max(np.abs(got.ravel() - exp.ravel())), 1e-5, name)
            # a state of T rows is refused before anything is sent, naming the fixed size
            np.save(files["h0"], np.zeros((T, N, H), np.float32))
            r = eiectl("infer", "-m", "fed", "--addr", addr,
                       *[a for k in ("x", "h0", "c0") for a in ("--input", "%s=%s" % (k, files[k]))])
            self.assertEqual(r.returncode, 1)
            self.assertIn("input 'h0' has 5 rows of 8 values", r.stderr)
            self.assertIn("takes exactly 1 rows", r.stderr)

    def test_eie_sim_backend_starts_from_the_fed_state(self):
        conf = ("[server]\ndrain_delay = 0s\nexit_timeout = 5s\n[engine]\n"
                "extra_backends = eie-sim\n[models]\nfed1 = %s\nfed = %s\n"
                % (self.paths["fed1"], self.paths["fed"]))
        with Daemon(conf) as d, d.channel() as ch:
            stub = infer_stub(ch)
            # one output, and Y with the final states Y_h, Y_c beside it
            for name, w, outs in (("fed1", self.w_fed1, ("y",)),
                                  ("fed", self.w_fed, ("y", "Y_h", "Y_c"))):
                wait_ready(ch, name)
                for T in (1, 9):
                    x = self.rng.standard_normal((T, N, I)).astype(np.float32)
                    h0, c0 = self.state()
                    ts = [("x", x), ("h0", h0), ("c0", c0)]
                    self.check(stub(request(name, ts), timeout=10), x, h0, c0, w, outs, 1e-5)
                    resp = stub(request(name, ts, backend="eie-sim"), timeout=10)
                    self.assertEqual(resp.parameters["backend"].string_param, "eie-sim")
                    # engine/sim/README.md, "Error bound": 2^-5 relative to max(1, |y|)
                    self.check(resp, x, h0, c0, w, outs, 1.0 / 32.0)



class LstmSequencesSideBySideTest(unittest.TestCase):
    """Concurrent sequences of a model heavy enough that they overlap a run
    (H = 160: about a millisecond a step here) are micro-batched side by side:
    fewer engine runs than requests with a window, one each without, and each
    sequence's outputs (y and the final states) bit for bit those it gets
    alone (batch_invariant), from its own state, at its own length (12 or 20
    steps: a run takes sequences within twice each other's length)."""
    BN, BI, BH = 1, 24, 160

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="eie-lstm-seqs-")
        rng = np.random.default_rng(21)
        m, cls.w, _, _ = cases.lstm_model(rng, I=cls.BI, H=cls.BH, N=cls.BN, state="input")
        src = os.path.join(cls.tmp.name, "big.onnx")
        onnx.save(m, src)
        cls.path = os.path.join(cls.tmp.name, "big.eie")
        r = eiectl("import", src, "-o", cls.path)
        assert r.returncode == 0, r.stderr
        cls.sent = []
        for i in range(24):
            T = 12 if i % 3 == 0 else 20
            x = rng.standard_normal((T, cls.BN, cls.BI)).astype(np.float32)
            x[x < -0.5] = 0.0
            h0 = rng.standard_normal((1, cls.BN, cls.BH)).astype(np.float32) * 0.5
            c0 = rng.standard_normal((1, cls.BN, cls.BH)).astype(np.float32) * 0.5
            cls.sent.append((x, h0, c0))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def serve_all(self, window):
        conf = ("[server]\ndrain_delay = 0s\nexit_timeout = 5s\n[inference]\n"
                "max_sequence = 32\nbatch_window_us = %d\n[engine.cpu]\n"
                "batch_invariant = true\n[models]\nbig = %s\n" % (window, self.path))
        with Daemon(conf) as d:
            with d.channel() as ch:
                wait_ready(ch, "big")

            def call(ch, i):
                x, h0, c0 = self.sent[i]
                resp = infer_stub(ch)(request("big", [("x", x), ("h0", h0), ("c0", c0)]),
                                      timeout=60)
                return ([o.name for o in resp.outputs], list(resp.raw_output_contents),
                        resp.parameters["batch_rows"].int64_param)
            got = harness.send_together(d, len(self.sent), call)
            execs = harness.metrics(d.metrics_port)[
                'eie_inference_exec_count{model="big",version="1"}']
        self.assertNotIn(None, got)
        return got, execs

    def test_sequences_of_one_length_share_runs_with_their_own_bits(self):
        alone, execs_alone = self.serve_all(0)
        together, execs_together = self.serve_all(50000)
        self.assertEqual(execs_alone, len(self.sent))  # window 0: a run each
        self.assertLess(execs_together, len(self.sent))  # sequences shared runs
        shared = 0
        for (x, h0, c0), a, b in zip(self.sent, alone, together):
            self.assertEqual(a[0], ["y", "Y_h", "Y_c"])
            self.assertEqual(a[1], b[1])  # bit for bit, from its own state
            self.assertEqual(a[2], len(x))  # alone: its own steps
            shared += b[2] > len(x)
            Y, Yh, Yc = cases.np_lstm(x, self.w["W"], self.w["R"], self.w["B"], h0, c0)
            for raw, exp in zip(b[1], (Y[:, 0], Yh, Yc)):
                got = np.frombuffer(raw, "<f4").astype(np.float64)
                err = np.abs(got - exp.ravel()) / np.maximum(1.0, np.abs(exp.ravel()))
                # float32 against float64 over 20 steps of 160 units: up to 8e-5 seen (a
                # sequence run from another's state or inputs is off by tenths)
                self.assertLessEqual(np.max(err), 2e-4)
        self.assertGreater(shared, 0)

if __name__ == "__main__":
    harness.main()
