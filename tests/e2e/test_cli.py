"""End-to-end: the command lines of eied and eiectl as a user types them."""
import json
import os
import re
import struct
import subprocess
import tempfile
import time
import unittest

import harness
from harness import EIED, Daemon, eiectl


def eied(*args, env=None):
    return subprocess.run([EIED, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


class CliTest(unittest.TestCase):
    def test_eied_help_and_version(self):
        r = eied("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--listen", r.stdout)
        r = eied("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^eied \d+\.\d+\.\d+")

    def test_eied_unknown_flag_is_usage_error(self):
        r = eied("--bogus")
        self.assertEqual(r.returncode, 2)

    def test_eied_bad_config_names_file_line_and_key(self):
        with Daemon("") as d:  # any temp dir will do
            path = os.path.join(d.tmp.name, "bad.conf")
            with open(path, "w") as f:
                f.write("[server]\nlisten = 127.0.0.1:0\nlisen = oops\n")
            r = eied("--config", path)
            self.assertEqual(r.returncode, 2)
            self.assertIn(path + ":3: unknown key 'lisen' in section [server]", r.stderr)

    def test_eied_missing_config_file(self):
        r = eied("--config", "/nonexistent/eied.conf")
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/eied.conf: cannot open", r.stderr)

    def test_check_config_prints_effective_values_with_precedence(self):
        with Daemon("") as d:
            path = os.path.join(d.tmp.name, "c.conf")
            with open(path, "w") as f:
                f.write("[server]\nlisten = 127.0.0.1:1\ndrain_delay = 1s\nexit_timeout = 9s\n")
            r = eied("--config", path, "--check-config", "--set", "server.drain_delay=2s",
                     env={"EIED_SERVER_LISTEN": "127.0.0.1:2", "EIED_SERVER_DRAIN_DELAY": "3s"})
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("listen = 127.0.0.1:2\n", r.stdout)   # env over file
            self.assertIn("drain_delay = 2s\n", r.stdout)       # flag over env
            self.assertIn("exit_timeout = 9s\n", r.stdout)      # file over default
            r = eied("--config", path, "--check-config", "--listen", "127.0.0.1:4",
                     env={"EIED_SERVER_LISTEN": "127.0.0.1:2"})
            self.assertIn("listen = 127.0.0.1:4\n", r.stdout)   # --listen over env

    def test_bad_environment_override_is_refused(self):
        r = eied("--check-config", env={"EIED_SERVER_DRAIN_DELAY": "soon"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("EIED_SERVER_DRAIN_DELAY", r.stderr)

    def test_listen_on_a_bad_address_fails_cleanly(self):
        r = eied("--listen", "256.1.1.1:1", "--set", "server.drain_delay=0s",
                 "--set", "server.metrics_listen=127.0.0.1:0",
                 "--set", "server.health_listen=127.0.0.1:0")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot listen", r.stderr)

    def test_eiectl_help_for_every_command(self):
        r = eiectl("--help")
        self.assertEqual(r.returncode, 0)
        commands = [line.split()[0] for line in r.stdout.split("Commands:\n")[1].split("\n\n")[0]
                    .splitlines() if line.strip()]
        self.assertIn("health", commands)
        for c in commands:
            h = eiectl(c, "--help")
            self.assertEqual(h.returncode, 0, c)
            self.assertIn("usage: eiectl " + c, h.stdout)

    def test_eiectl_unknown_command_and_bad_option(self):
        r = eiectl("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", r.stderr)
        r = eiectl("health", "--timeout", "-3")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--timeout '-3'", r.stderr)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def write_idx(directory, split, images, labels, rows, cols):
    """An IDX split as eiectl train/eval read it (images 0x803, labels 0x801)."""
    with open(os.path.join(directory, split + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(images), rows, cols))
        for img in images:
            f.write(bytes(img))
    with open(os.path.join(directory, split + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)))
        f.write(bytes(labels))


def rank(scores, label):
    """How many classes score higher than the label's (ties to the lower index)."""
    return sum(1 for k, v in enumerate(scores)
               if v > scores[label] or (v == scores[label] and k < label))


class EvalTest(unittest.TestCase):
    """eiectl eval against accuracies computed here from eie-ref's outputs."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="eie-eval-")
        d = cls.tmp.name
        cls.model = harness.synth_model(os.path.join(d, "m.eie"), [16, 12, 7], density=0.6,
                                        bits=4, seed=9, softmax=True, name="m")
        state = 12345
        images, labels = [], []
        for _ in range(150):  # 2 batches of 64 and a remainder
            img = []
            for _ in range(16):
                state = (state * 1103515245 + 12345) % (1 << 31)
                img.append(state % 256 if state % 3 else 0)
            images.append(img)
            state = (state * 1103515245 + 12345) % (1 << 31)
            labels.append(state % 7)
        write_idx(d, "t10k", images, labels, 4, 4)
        cls.labels = labels
        scale = f32(1.0 / 255.0)
        cls.rows = [[f32(p * scale) for p in img] for img in images]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def expected(self, dense):
        outs = harness.reference(self.model, self.rows, self.tmp.name, dense=dense)
        ranks = [rank(o, l) for o, l in zip(outs, self.labels)]
        top1 = 100.0 * sum(r == 0 for r in ranks) / len(ranks)
        top5 = 100.0 * sum(r < 5 for r in ranks) / len(ranks)
        per_class = {}
        for r, l in zip(ranks, self.labels):
            n, c = per_class.get(l, (0, 0))
            per_class[l] = (n + 1, c + (r == 0))
        return top1, top5, per_class

    def check(self, r, backend, dense):
        self.assertEqual(r.returncode, 0, r.stderr)
        top1, top5, per_class = self.expected(dense)
        m = re.search(r"\(150 examples, (\S+)\): top-1 ([0-9.]+)%  top-5 ([0-9.]+)%", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual(m.group(1), backend)
        self.assertAlmostEqual(float(m.group(2)), top1, places=2)
        self.assertAlmostEqual(float(m.group(3)), top5, places=2)
        classes_seen = 0
        for line in r.stdout.splitlines():
            cm = re.match(r"\s*(\d+)\s+(\d+)\s+([0-9.]+)%$", line)
            if cm:
                n, c = per_class[int(cm.group(1))]
                self.assertEqual(int(cm.group(2)), n)
                self.assertAlmostEqual(float(cm.group(3)), 100.0 * c / n, places=2)
                classes_seen += 1
        self.assertEqual(classes_seen, len(per_class), r.stdout)

    def test_eie_model_is_evaluated_on_the_cpu_backend_by_default(self):
        self.check(eiectl("eval", self.model, "--data", self.tmp.name), "cpu", dense=False)

    def test_pe_count_does_not_change_the_result(self):
        for pes in ("1", "3"):
            self.check(eiectl("eval", self.model, "--data", self.tmp.name, "--pes", pes), "cpu",
                       dense=False)

    def test_decoded_backend_evaluates_the_decoded_weights(self):
        self.check(eiectl("eval", self.model, "--data", self.tmp.name, "--backend", "decoded"),
                   "decoded", dense=True)

    def test_bad_arguments_name_the_problem(self):
        r = eiectl("eval", self.model, "--data", self.tmp.name, "--pes", "0")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--pes '0'", r.stderr)
        r = eiectl("eval", self.model, "--data", self.tmp.name, "--backend", "nope")
        self.assertEqual(r.returncode, 1)
        self.assertIn("nope", r.stderr)
        r = eiectl("eval", os.path.join(self.tmp.name, "m.onnx"), "--data", self.tmp.name,
                   "--backend", "cpu")
        self.assertEqual(r.returncode, 2)
        self.assertIn("runs .eie models", r.stderr)
        wrong = os.path.join(self.tmp.name, "wrong")
        os.mkdir(wrong)
        write_idx(wrong, "t10k", [[1] * 9], [0], 3, 3)
        r = eiectl("eval", self.model, "--data", wrong)
        self.assertEqual(r.returncode, 1)
        self.assertIn("takes 16 inputs but", r.stderr)
        self.assertIn("3x3 = 9 pixels", r.stderr)


class ImportServeTest(unittest.TestCase):
    """eiectl import of ONNX models (built with python3-onnx), served by eied:
    ModelMetadata shows every input and output with its own name, datatype and
    full shape, ModelInfer by those names answers what a float64 reference of
    the ONNX file computes, and eiectl infer sends a 4-D .npy and one .npy per
    named input."""

    @classmethod
    def setUpClass(cls):
        import sys
        sys.path.insert(0, os.path.join(harness.SOURCE, "tests", "engine", "onnx"))
        import numpy
        import onnx
        import graph_reference
        import test_graph_import as cases
        cls.np, cls.onnx, cls.ref, cls.cases = numpy, onnx, graph_reference, cases
        cls.tmp = tempfile.TemporaryDirectory(prefix="eie-import-")
        cls.models, cls.feeds, cls.paths = {}, {}, {}
        for name, build in (("convnet", cases.convnet), ("two", cases.two_inputs)):
            m, feeds = build(numpy.random.default_rng(11))
            src = os.path.join(cls.tmp.name, name + ".onnx")
            onnx.save(m, src)
            cls.paths[name] = os.path.join(cls.tmp.name, name + ".eie")
            r = eiectl("import", src, "-o", cls.paths[name])
            assert r.returncode == 0, r.stderr
            cls.models[name], cls.feeds[name] = m, feeds

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def io(self, vals):
        return [(v.name, "FP32", [d.dim_value if d.HasField("dim_value") else -1
                                  for d in v.type.tensor_type.shape.dim]) for v in vals]

    def test_names_shapes_and_outputs_survive_import_and_serving(self):
        np = self.np
        svc = "/inference.GRPCInferenceService/"
        conf = ("[server]\ndrain_delay = 0s\nexit_timeout = 5s\n[models]\n" +
                "".join("%s = %s\n" % kv for kv in self.paths.items()))
        with Daemon(conf) as d, d.channel() as ch:
            for name in self.paths:
                for _ in range(200):
                    if harness.unary(ch, svc + "ModelReady",
                                     harness.message("inference.ModelReadyRequest")(name=name),
                                     harness.message("inference.ModelReadyResponse")).ready:
                        break
                    time.sleep(0.05)
                m = self.models[name]
                mm = harness.unary(ch, svc + "ModelMetadata",
                                   harness.message("inference.ModelMetadataRequest")(name=name),
                                   harness.message("inference.ModelMetadataResponse"))
                self.assertEqual([(t.name, t.datatype, list(t.shape)) for t in mm.inputs],
                                 self.io(m.graph.input))
                self.assertEqual([(t.name, t.datatype, list(t.shape)) for t in mm.outputs],
                                 self.io(m.graph.output))
                # ModelInfer by the model's own names and full shapes.
                req = harness.message("inference.ModelInferRequest")(model_name=name)
                for v in m.graph.input:
                    x = self.feeds[name][v.name]
                    t = req.inputs.add(name=v.name, datatype="FP32")
                    t.shape.extend(x.shape)
                    req.raw_input_contents.append(x.astype("<f4").tobytes())
                resp = harness.unary(ch, svc + "ModelInfer", req,
                                     harness.message("inference.ModelInferResponse"))
                want = self.ref.run(m, self.feeds[name])
                self.assertEqual([o.name for o in resp.outputs], [o.name for o in m.graph.output])
                for o, raw in zip(resp.outputs, resp.raw_output_contents):
                    exp = want[o.name]
                    self.assertEqual(list(o.shape), list(exp.shape), o.name)
                    got = np.frombuffer(raw, "<f4").astype(np.float64)
                    self.assertLessEqual(np.max(np.abs(got - exp.ravel())),
                                         1e-5 * np.max(np.abs(exp)), o.name)
            # eiectl infer sends the convnet's images as a 4-D .npy.
            npy = os.path.join(self.tmp.name, "images.npy")
            np.save(npy, self.feeds["convnet"]["image"])
            r = eiectl("infer", "--addr", d.addr, "--model", "convnet", "--input-file", npy,
                       "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('"probs"', r.stdout)
            # ... and the two-input model's inputs by name, one .npy each.
            args = []
            for v in ("a", "b"):
                p = os.path.join(self.tmp.name, v + ".npy")
                np.save(p, self.feeds["two"][v])
                args += ["--input", "%s=%s" % (v, p)]
            r = eiectl("infer", "--addr", d.addr, "--model", "two", *args, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            got = {o["name"]: np.array(o["data"], np.float64)
                   for o in json.loads(r.stdout)["outputs"]}
            want = self.ref.run(self.models["two"], self.feeds["two"])
            self.assertEqual(sorted(got), ["aux", "dist"])
            for k, exp in want.items():
                self.assertLessEqual(np.max(np.abs(got[k].ravel() - exp.ravel())),
                                     1e-5 * np.max(np.abs(exp)), k)


class CnnCompressTest(unittest.TestCase):
    """eiectl train --arch lenet5, compress with and without --data, the refusal
    to prune much without retraining data, and exact storage by --bits 32/--exact."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="eie-cnn-")
        d = cls.tmp.name
        state = 777
        for split, count in (("train", 120), ("t10k", 40)):
            images, labels = [], []
            for i in range(count):
                k = i % 10
                img = []
                for p in range(28 * 28):
                    state = (state * 1103515245 + 12345) % (1 << 31)
                    # class k: a bright band of rows 2k..2k+5, noise elsewhere
                    img.append(200 if 2 * k <= p // 28 < 2 * k + 6 else state % 60)
                images.append(img)
                labels.append(k)
            write_idx(d, split, images, labels, 28, 28)
        cls.lenet = os.path.join(d, "lenet5.eie")
        cls.train = eiectl("train", "--arch", "lenet5", "--data", d, "--epochs", "1", "--lr",
                           "0.01", "-o", cls.lenet, timeout=120)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def compress(self, *args, timeout=60):
        out = os.path.join(self.tmp.name, "c.eie")
        return eiectl("compress", self.lenet, "-o", out, *args, timeout=timeout)

    def layers(self, r):
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)["layers"]

    def test_lenet5_trains_and_reports_seconds_per_epoch(self):
        self.assertEqual(self.train.returncode, 0, self.train.stderr)
        self.assertRegex(self.train.stdout, r"trained lenet5 for 1 epochs in [0-9.]+ s "
                                            r"\([0-9.]+ s/epoch\)")
        r = eiectl("eval", self.lenet, "--data", self.tmp.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("top-1", r.stdout)

    def test_compress_with_data_retrains_conv_and_fc_layers(self):
        r = self.compress("--data", self.tmp.name, "--sparsity", "0.3,0.8,0.9,0.5", "--bits",
                          "8,8,5,5", "--retrain-epochs", "1", "--json", timeout=120)
        layers = self.layers(r)
        self.assertEqual([l["kind"] for l in layers], ["conv2d", "conv2d", "fc", "fc"])
        for l, density, bits in zip(layers, (0.7, 0.2, 0.1, 0.5), (8, 8, 5, 5)):
            self.assertAlmostEqual(l["density"], density, delta=0.01)
            self.assertEqual(l["weight_bits"], bits)
        self.assertIn("top1_after", r.stdout)
        r = eiectl("eval", os.path.join(self.tmp.name, "c.eie"), "--data", self.tmp.name)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_pruning_beyond_half_without_data_is_refused_naming_the_flags(self):
        for args in (("--sparsity", "0.9"), ("--sparsity", "0.2,0.6"), ("--prune-std", "1")):
            r = self.compress(*args)
            self.assertEqual(r.returncode, 2, args)
            for flag in ("--data", "--force"):
                self.assertIn(flag, r.stderr, args)
        self.assertIn("--sparsity 0.6 (layer 2) without --data", self.compress(
            "--sparsity", "0.2,0.6").stderr)

    def test_default_without_data_prunes_half_and_force_prunes_more(self):
        for l in self.layers(self.compress("--json")):
            self.assertAlmostEqual(l["density"], 0.5, delta=0.01)
        for l in self.layers(self.compress("--force", "--sparsity", "0.9", "--json")):
            self.assertAlmostEqual(l["density"], 0.1, delta=0.01)

    def test_quantization_only_needs_no_data(self):
        for l in self.layers(self.compress("--no-prune", "--bits", "8", "--json")):
            self.assertEqual((l["density"] > 0.99, l["weight_bits"]), (True, 8))

    def test_bits_32_and_exact_keep_float32_weights(self):
        bits = [l["weight_bits"] for l in self.layers(
            self.compress("--no-prune", "--bits", "32,8,32,5", "--json"))]
        self.assertEqual(bits, [32, 8, 32, 5])
        bits = [l["weight_bits"] for l in self.layers(
            self.compress("--no-prune", "--exact", "--json"))]
        self.assertEqual(bits, [32, 32, 32, 32])
        r = self.compress("--bits", "16")
        self.assertEqual(r.returncode, 2)
        self.assertIn("1..8 bits (weight sharing) or 32", r.stderr)
        self.assertIn("--exact", r.stderr)

    def test_train_arch_errors_name_the_value(self):
        r = eiectl("train", "--arch", "vgg", "--data", self.tmp.name, "-o", "x.eie")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown --arch 'vgg'", r.stderr)
        r = eiectl("train", "--arch", "lenet5", "--data", self.tmp.name, "-o", "x.onnx")
        self.assertEqual(r.returncode, 2)
        self.assertIn("'x.onnx' must end in .eie", r.stderr)


class LstmServeTest(unittest.TestCase):
    """An ONNX LSTM imported and served: [T, N, I] in with T variable (-1 in the
    metadata), y [T, N, H] and the final states Y_h, Y_c [1, N, H] out under their
    names, each request one sequence against a
    float64 LSTM; a sequence over inference.max_sequence is refused."""

    def test_sequences_of_several_lengths_and_the_limit(self):
        import sys
        sys.path.insert(0, os.path.join(harness.SOURCE, "tests", "engine", "onnx"))
        import grpc
        import numpy as np
        import onnx
        import test_graph_import as cases
        tmp = tempfile.TemporaryDirectory(prefix="eie-lstm-")
        self.addCleanup(tmp.cleanup)
        rng = np.random.default_rng(4)
        m, w, h0, c0 = cases.lstm_model(rng, I=5, H=4, N=2)
        src = os.path.join(tmp.name, "lstm.onnx")
        onnx.save(m, src)
        path = os.path.join(tmp.name, "lstm.eie")
        r = eiectl("import", src, "-o", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        svc = "/inference.GRPCInferenceService/"
        conf = ("[server]\ndrain_delay = 0s\nexit_timeout = 5s\n[inference]\n"
                "max_sequence = 12\nbatch_window_us = 20000\n[models]\nlstm = %s\n" % path)
        with Daemon(conf) as d, d.channel() as ch:
            for _ in range(200):
                if harness.unary(ch, svc + "ModelReady",
                                 harness.message("inference.ModelReadyRequest")(name="lstm"),
                                 harness.message("inference.ModelReadyResponse")).ready:
                    break
                time.sleep(0.05)
            mm = harness.unary(ch, svc + "ModelMetadata",
                               harness.message("inference.ModelMetadataRequest")(name="lstm"),
                               harness.message("inference.ModelMetadataResponse"))
            self.assertEqual([(t.name, list(t.shape)) for t in mm.inputs], [("x", [-1, 2, 5])])
            self.assertEqual([(t.name, list(t.shape)) for t in mm.outputs],
                             [("y", [-1, 2, 4]), ("Y_h", [1, 2, 4]), ("Y_c", [1, 2, 4])])

            def request(T):
                x = rng.standard_normal((T, 2, 5)).astype(np.float32)
                req = harness.message("inference.ModelInferRequest")(model_name="lstm")
                t = req.inputs.add(name="x", datatype="FP32")
                t.shape.extend(x.shape)
                req.raw_input_contents.append(x.astype("<f4").tobytes())
                return x, req

            # Two sequences sent at once must not be joined into one.
            stub = ch.unary_unary(svc + "ModelInfer",
                                  request_serializer=lambda q: q.SerializeToString(),
                                  response_deserializer=harness.message(
                                      "inference.ModelInferResponse").FromString)
            sent = [request(T) for T in (7, 1, 12)]
            futures = [stub.future(q, timeout=10) for _, q in sent]
            for (x, _), f in zip(sent, futures):
                resp = f.result()
                Y, Yh, Yc = cases.np_lstm(x, w["W"], w["R"], w["B"], h0, c0)
                want = {"y": Y[:, 0], "Y_h": Yh, "Y_c": Yc}
                self.assertEqual([o.name for o in resp.outputs], ["y", "Y_h", "Y_c"])
                for o, raw in zip(resp.outputs, resp.raw_output_contents):
                    exp = want[o.name]
                    self.assertEqual(list(o.shape), list(exp.shape), o.name)
                    got = np.frombuffer(raw, "<f4").astype(np.float64)
                    self.assertLessEqual(np.max(np.abs(got - exp.ravel())), 1e-5, o.name)
            _, q = request(13)
            with self.assertRaises(grpc.RpcError) as e:
                stub(q, timeout=10)
            self.assertIn("13", e.exception.details())
            self.assertIn("sequence of steps 13 is over max_sequence 12",
                          e.exception.details())

if __name__ == "__main__":
    harness.main()
