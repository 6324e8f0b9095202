"""End-to-end: inference.GRPCInferenceService over loopback with Python
grpcio as the independent client: results equal the engine's, every error
path returns its code and names what is wrong, 64 concurrent clients,
batching on and off agree, metrics move, reflection lists the services."""
import os
import random
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import grpc

import harness
from harness import (Daemon, message, metrics, raw_unary, reference, send_together, synth_model,
                     unary)

SVC = "/inference.GRPCInferenceService/"
InferReq = message("inference.ModelInferRequest")
InferResp = message("inference.ModelInferResponse")
LAYERS = [64, 48, 32, 10]

TMP = tempfile.TemporaryDirectory(prefix="eie-infer-")
MODEL = synth_model(os.path.join(TMP.name, "small.eie"), LAYERS, density=0.3, seed=7,
                    softmax=True, name="small")
BIG = synth_model(os.path.join(TMP.name, "big.eie"), [2048, 2048, 2048], density=0.5, seed=3,
                  name="big")


def config(extra="", models=None):
    models = models or {"small": MODEL}
    text = ("[server]\ndrain_delay = 0s\nexit_timeout = 5s\n"
            "[admin]\nallow_unauthenticated = true\n")
    text += extra
    text += "[models]\n" + "".join("%s = %s\n" % kv for kv in models.items())
    return text


def rows(n, dim=LAYERS[0], seed=0):
    rnd = random.Random(seed)
    return [[rnd.uniform(-1, 1) if rnd.random() < 0.6 else 0.0 for _ in range(dim)]
            for _ in range(n)]


def request(data, model="small", raw=True, name="input", datatype="FP32", shape=None, id=""):
    req = InferReq(model_name=model, id=id)
    t = req.inputs.add(name=name, datatype=datatype)
    t.shape.extend(shape if shape is not None else [len(data), len(data[0])])
    flat = [x for r in data for x in r]
    if raw:
        req.raw_input_contents.append(struct.pack("<%df" % len(flat), *flat))
    else:
        t.contents.fp32_contents.extend(flat)
    return req


def write_npy(path, flat, shape):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else ""))
    header += " " * ((10 + len(header) + 1 + 63) // 64 * 64 - 10 - len(header) - 1) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() +
                struct.pack("<%df" % len(flat), *flat))


def outputs(resp):
    shape = list(resp.outputs[0].shape)
    flat = struct.unpack("<%df" % (shape[0] * shape[1]), resp.raw_output_contents[0])
    return [list(flat[i * shape[1]:(i + 1) * shape[1]]) for i in range(shape[0])]


def assert_close(tc, got, want, rel=1e-5):
    tc.assertEqual(len(got), len(want))
    for g, w in zip(got, want):
        tc.assertEqual(len(g), len(w))
        for a, b in zip(g, w):
            tc.assertLessEqual(abs(a - b), rel * max(1.0, abs(b)), (a, b))


def wait_ready(ch, model, timeout=20):
    Ready = message("inference.ModelReadyRequest")
    ReadyResp = message("inference.ModelReadyResponse")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if unary(ch, SVC + "ModelReady", Ready(name=model), ReadyResp).ready:
            return
        time.sleep(0.05)
    raise AssertionError("model %s never became ready" % model)


def infer(ch, req, timeout=10):
    return unary(ch, SVC + "ModelInfer", req, InferResp, timeout=timeout)


class InferTest(unittest.TestCase):
    def code_of(self, ch, req, timeout=10):
        with self.assertRaises(grpc.RpcError) as cm:
            infer(ch, req, timeout)
        return cm.exception.code(), cm.exception.details()

    def test_results_equal_engine_and_dense_reference_raw_and_contents(self):
        data = rows(5)
        want = reference(MODEL, data, TMP.name)
        dense = reference(MODEL, data, TMP.name, dense=True)
        assert_close(self, want, dense)
        with Daemon(config()) as d, d.channel() as ch:
            wait_ready(ch, "small")
            resp = infer(ch, request(data, id="req-42"))
            self.assertEqual(resp.model_name, "small")
            self.assertEqual(resp.model_version, "1")
            self.assertEqual(resp.id, "req-42")
            self.assertEqual(resp.outputs[0].name, "output")
            self.assertEqual(resp.outputs[0].datatype, "FP32")
            self.assertEqual(list(resp.outputs[0].shape), [5, 10])
            self.assertEqual(resp.parameters["backend"].string_param, "cpu")
            assert_close(self, outputs(resp), want)
            assert_close(self, outputs(infer(ch, request(data, raw=False))), want)
            # a requested output by its name is honoured
            req = request(data)
            req.outputs.add(name="output")
            assert_close(self, outputs(infer(ch, req)), want)

    def test_every_bad_request_gets_its_code_and_a_message_naming_it(self):
        good = rows(2)
        with Daemon(config("[server]\nmax_receive_message_size = 4KiB\n"
                           "[inference]\nmax_batch = 8\nreject_non_finite = true\n")
                    .replace("[server]\ndrain_delay", "[server]\ndrain_delay", 1)) as d, \
                d.channel() as ch:
            wait_ready(ch, "small")
            cases = [
                (request(good, model="nope"), grpc.StatusCode.NOT_FOUND, "unknown model 'nope'"),
                (request(good, name="pixels"), grpc.StatusCode.INVALID_ARGUMENT,
                 "unknown input 'pixels'"),
                (request(good, datatype="INT8"), grpc.StatusCode.INVALID_ARGUMENT,
                 "datatype 'INT8'"),
                (request(good, shape=[2, 63]), grpc.StatusCode.INVALID_ARGUMENT,
                 "shape [2,63] does not match [-1,64]"),
                (request(good, shape=[128]), grpc.StatusCode.INVALID_ARGUMENT, "shape [128]"),
                (request(rows(9)), grpc.StatusCode.INVALID_ARGUMENT, "over max_batch 8"),
                (request([[float("nan")] * 64]), grpc.StatusCode.INVALID_ARGUMENT, "NaN or Inf"),
                (request(rows(20)), grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
            ]
            bad_size = request(good)
            bad_size.raw_input_contents[0] = bad_size.raw_input_contents[0][:-4]
            cases.append((bad_size, grpc.StatusCode.INVALID_ARGUMENT,
                          "raw_input_contents has 508 bytes, shape [2,64] FP32 needs 512"))
            both = request(good)
            both.inputs[0].contents.fp32_contents.extend([0.0] * 128)
            cases.append((both, grpc.StatusCode.INVALID_ARGUMENT, "both raw_input_contents"))
            none = request(good)
            del none.raw_input_contents[:]
            cases.append((none, grpc.StatusCode.INVALID_ARGUMENT, "has no data"))
            wrong_count = request(good, raw=False)
            wrong_count.inputs[0].contents.fp32_contents.append(1.0)
            cases.append((wrong_count, grpc.StatusCode.INVALID_ARGUMENT, "129 fp32 values"))
            two = request(good)
            two.inputs.add(name="other", datatype="FP32", shape=[1, 64])
            cases.append((two, grpc.StatusCode.INVALID_ARGUMENT, "expected 1 input tensor"))
            out = request(good)
            out.outputs.add(name="logits")
            cases.append((out, grpc.StatusCode.INVALID_ARGUMENT, "unknown requested output"))
            version = request(good)
            version.model_version = "7"
            cases.append((version, grpc.StatusCode.NOT_FOUND, "has no version '7'"))
            for req, code, text in cases:
                got, details = self.code_of(ch, req)
                self.assertEqual(got, code, details)
                self.assertIn(text, details)
                if code != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    self.assertTrue("'small'" in details or "'nope'" in details, details)
            # malformed protobuf bytes: INVALID_ARGUMENT and the daemon keeps serving
            with self.assertRaises(grpc.RpcError) as cm:
                raw_unary(ch, SVC + "ModelInfer", b"\x0a\xff\xff\xff\x0f")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(len(outputs(infer(ch, request(good)))), 2)
            m = metrics(d.metrics_port)
            self.assertGreaterEqual(m['eie_request_failure_total{reason="invalid_argument"}'], 11)
            self.assertEqual(m['eie_request_failure_total{reason="not_found"}'], 2)

    def test_model_that_failed_to_load_is_unavailable_with_the_reason(self):
        missing = os.path.join(TMP.name, "missing.eie")
        with Daemon(config(models={"small": MODEL, "broken": missing})) as d, \
                d.channel() as ch:
            wait_ready(ch, "small")
            time.sleep(0.2)
            code, details = self.code_of(ch, request(rows(1), model="broken"))
            self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)
            self.assertIn("broken", details)
            self.assertIn("missing.eie", details)
            Ready = message("inference.ServerReadyRequest")
            self.assertFalse(unary(ch, SVC + "ServerReady", Ready(),
                                   message("inference.ServerReadyResponse")).ready)

    def test_64_concurrent_clients_all_get_correct_answers(self):
        inputs = [rows(1 + i % 3, seed=i) for i in range(64)]
        wants = [reference(MODEL, x, TMP.name) for x in inputs]
        with Daemon(config()) as d:
            with d.channel() as ch:
                wait_ready(ch, "small")
            errors = []

            def client(i):
                try:
                    with d.channel() as ch:
                        for _ in range(5):
                            assert_close(self, outputs(infer(ch, request(inputs[i]))), wants[i])
                except Exception as e:  # asserted below
                    errors.append(e)
            threads = [threading.Thread(target=client, args=(i,)) for i in range(64)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            m = metrics(d.metrics_port)
            self.assertEqual(m['eie_inference_request_success{model="small",version="1"}'], 320)

    def assert_batching_keeps_bits(self, inputs, extra=""):
        # the big model takes milliseconds a row, so requests sent together overlap a run
        results = {}
        execs = {}
        for window in (0, 50000):
            with Daemon(config("[inference]\nbatch_window_us = %d\n" % window + extra,
                               models={"big": BIG})) as d:
                with d.channel() as ch:
                    wait_ready(ch, "big", timeout=60)
                results[window] = send_together(d, 32, lambda ch, i: outputs(
                    infer(ch, request(inputs[i], model="big"), timeout=60)))
                execs[window] = metrics(d.metrics_port)[
                    'eie_inference_exec_count{model="big",version="1"}']
        for a, b in zip(results[0], results[50000]):
            self.assertEqual(a, b)  # bit-identical: batching changes nothing per row
        self.assertEqual(execs[0], 32)  # window 0: one engine run per request
        self.assertLess(execs[50000], 32)  # batching: requests shared runs

    def test_batching_on_and_off_give_identical_results(self):
        self.assert_batching_keeps_bits([rows(1, dim=2048, seed=100 + i) for i in range(32)])

    def test_batch_invariant_keeps_dense_rows_identical_with_batching(self):
        # every input nonzero: alone, a row would take the row form that fuses its
        # multiply-adds; batch_invariant keeps it to the bits of a batch's forms
        dense = [[[v if v != 0.0 else 0.5 for v in r] for r in rows(1, dim=2048, seed=200 + i)]
                 for i in range(32)]
        self.assert_batching_keeps_bits(dense, "[engine.cpu]\nbatch_invariant = true\n")

    def test_a_model_of_one_fixed_batch_size_runs_each_request_alone(self):
        # an export's fixed [1, 2048]: requests that arrive together cannot be stacked
        # into one run of 2 or more rows; each runs alone, none fails
        import onnx
        src = os.path.join(TMP.name, "fixed.onnx")
        fixed = os.path.join(TMP.name, "fixed.eie")
        r = harness.eiectl("export", BIG, "-o", src)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = onnx.load(src)
        for v in list(m.graph.input) + list(m.graph.output):
            v.type.tensor_type.shape.dim[0].dim_value = 1
        onnx.save(m, src)
        r = harness.eiectl("import", src, "-o", fixed)
        self.assertEqual(r.returncode, 0, r.stderr)
        inputs = [rows(1, dim=2048, seed=300 + i) for i in range(16)]
        with Daemon(config("[inference]\nbatch_window_us = 50000\n",
                           models={"fixed": fixed})) as d:
            with d.channel() as ch:
                wait_ready(ch, "fixed", timeout=60)
                want = [outputs(infer(ch, request(x, model="fixed"), timeout=60))
                        for x in inputs[:2]]

            def call(ch, i):
                try:
                    return outputs(infer(ch, request(inputs[i], model="fixed"), timeout=60))
                except grpc.RpcError as e:
                    return e.details()
            got = send_together(d, len(inputs), call)
            execs = metrics(d.metrics_port)['eie_inference_exec_count{model="fixed",version="1"}']
        for g in got:
            self.assertIsInstance(g, list, g)
        self.assertEqual(got[:2], want)
        self.assertEqual(execs, 2 + len(inputs))  # one run a request

    def test_a_model_of_two_inputs_and_two_outputs_batches_with_its_bits(self):
        # y = W (a + b), z = relu(y): requests sent together share runs, each input's
        # rows stacked, each output's rows given back to their request, the bits those
        # of the request alone
        import numpy as np
        import onnx
        from onnx import helper, numpy_helper, TensorProto
        rng = np.random.default_rng(5)
        w = (rng.standard_normal((1024, 2048)) * (rng.random((1024, 2048)) < 0.5)).astype(
            np.float32)
        g = helper.make_graph(
            [helper.make_node("Add", ["a", "b"], ["s"], name="add"),
             helper.make_node("Gemm", ["s", "w"], ["y"], name="fc", transB=1),
             helper.make_node("Relu", ["y"], ["z"], name="relu")],
            "two", [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 2048])
                    for n in ("a", "b")],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 1024]) for n in ("y", "z")],
            [numpy_helper.from_array(w, "w")])
        src = os.path.join(TMP.name, "two.onnx")
        path = os.path.join(TMP.name, "two.eie")
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), src)
        r = harness.eiectl("import", src, "-o", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        sent = [(rng.standard_normal((1 + i % 3, 2048)).astype(np.float32),
                 rng.standard_normal((1 + i % 3, 2048)).astype(np.float32)) for i in range(24)]
        results, execs = {}, {}
        for window in (0, 50000):
            with Daemon(config("[inference]\nbatch_window_us = %d\n[engine.cpu]\n"
                               "batch_invariant = true\n" % window,
                               models={"two": path})) as d:
                with d.channel() as ch:
                    wait_ready(ch, "two", timeout=60)

                def call(ch, i):
                    req = InferReq(model_name="two")
                    for name, a in zip(("a", "b"), sent[i]):
                        t = req.inputs.add(name=name, datatype="FP32")
                        t.shape.extend(a.shape)
                        req.raw_input_contents.append(a.tobytes())
                    resp = infer(ch, req, timeout=60)
                    return [(o.name, list(o.shape), raw) for o, raw in
                            zip(resp.outputs, resp.raw_output_contents)]
                results[window] = send_together(d, len(sent), call)
                execs[window] = metrics(d.metrics_port)[
                    'eie_inference_exec_count{model="two",version="1"}']
        for (a, b), alone, together in zip(sent, results[0], results[50000]):
            self.assertEqual(alone, together)
            self.assertEqual([o[:2] for o in alone], [("y", [len(a), 1024]), ("z", [len(a), 1024])])
            y = np.frombuffer(alone[0][2], "<f4").reshape(len(a), 1024)
            want = (a.astype(np.float64) + b) @ w.T.astype(np.float64)
            self.assertLessEqual(np.max(np.abs(y - want) / np.maximum(1.0, np.abs(want))), 1e-4)
            self.assertEqual(alone[1][2], np.maximum(y, 0).astype("<f4").tobytes())
        self.assertEqual(execs[0], len(sent))
        self.assertLess(execs[50000], len(sent))

    def test_metrics_move_as_requests_are_served(self):
        with Daemon(config()) as d, d.channel() as ch:
            wait_ready(ch, "small")
            before = metrics(d.metrics_port)
            for _ in range(3):
                infer(ch, request(rows(2)))
            after = metrics(d.metrics_port)
            key = '{model="small",version="1"}'
            self.assertEqual(after["eie_inference_request_success" + key]
                             - before["eie_inference_request_success" + key], 3)
            self.assertEqual(after["eie_inference_count" + key]
                             - before["eie_inference_count" + key], 6)
            self.assertGreater(after["eie_inference_compute_infer_duration_us" + key],
                               before["eie_inference_compute_infer_duration_us" + key])
            self.assertGreater(after["eie_model_weight_bytes" + key], 0)
            self.assertEqual(after['eie_model_ready{model="small"}'], 1)
            Stats = message("inference.ModelStatisticsRequest")
            StatsResp = message("inference.ModelStatisticsResponse")
            s = unary(ch, SVC + "ModelStatistics", Stats(name="small"), StatsResp).model_stats[0]
            self.assertEqual(s.inference_stats.success.count, 3)
            self.assertEqual(s.inference_count, 6)

    def test_row_form_off_keeps_only_the_column_form_and_answers_the_same(self):
        # every activation nonzero: a batch-1 run takes the row form if it is there
        data = [[0.1 + 0.9 * random.Random(5).random() for _ in range(LAYERS[0])]]
        want = reference(MODEL, data, TMP.name)
        key = '{model="small",version="1"}'
        weight_bytes = {}
        for flag in ("true", "false"):
            with Daemon(config("[engine]\nrow_form = %s\n" % flag)) as d, d.channel() as ch:
                wait_ready(ch, "small")
                assert_close(self, outputs(infer(ch, request(data))), want)
                weight_bytes[flag] = metrics(d.metrics_port)["eie_model_weight_bytes" + key]
        self.assertLess(weight_bytes["false"], weight_bytes["true"])

    def test_deadline_passed_while_queued_is_skipped(self):
        with Daemon(config("[inference]\nmax_inflight_batches = 1\nbatch_window_us = 0\nmax_batch = 256\n",
                           models={"big": BIG})) as d, d.channel() as ch:
            wait_ready(ch, "big", timeout=60)
            slow = request(rows(256, dim=2048), model="big")
            futures = [ch.unary_unary(SVC + "ModelInfer",
                                      request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=InferResp.FromString)
                       .future(slow, timeout=60) for _ in range(3)]
            time.sleep(0.05)
            code, _ = self.code_of(ch, request(rows(1, dim=2048), model="big"), timeout=0.02)
            self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED)
            for f in futures:
                self.assertEqual(len(outputs(f.result())), 256)
            time.sleep(0.2)
            Stats = message("inference.ModelStatisticsRequest")
            StatsResp = message("inference.ModelStatisticsResponse")
            s = unary(ch, SVC + "ModelStatistics", Stats(name="big"), StatsResp).model_stats[0]
            self.assertEqual(s.inference_count, 3 * 256)  # the expired request never ran
            # counted as failed unless the client gave up before the server admitted it
            self.assertLessEqual(s.inference_stats.fail.count, 1)

    def test_full_queue_is_unavailable_quickly(self):
        with Daemon(config("[inference]\nqueue_depth = 1\nmax_inflight_batches = 1\n"
                           "batch_window_us = 0\nmax_batch = 256\n", models={"big": BIG})) as d, d.channel() as ch:
            wait_ready(ch, "big", timeout=60)
            call = ch.unary_unary(SVC + "ModelInfer",
                                  request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=InferResp.FromString)
            slow = call.future(request(rows(256, dim=2048), model="big"), timeout=60)
            deadline = time.monotonic() + 10
            while metrics(d.metrics_port)['eie_inference_pending_request_count{model="big"}'] < 1:
                self.assertFalse(slow.done(), "the slow request ended early: %r" % slow)
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.001)
            t0 = time.monotonic()
            code, details = self.code_of(ch, request(rows(1, dim=2048), model="big"))
            self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)
            self.assertIn("queue full", details)
            self.assertLess(time.monotonic() - t0, 1.0)  # refused at once, not timed out
            self.assertEqual(len(outputs(slow.result())), 256)

    def test_server_and_model_metadata(self):
        with Daemon(config()) as d, d.channel() as ch:
            wait_ready(ch, "small")
            live = unary(ch, SVC + "ServerLive", message("inference.ServerLiveRequest")(),
                         message("inference.ServerLiveResponse"))
            self.assertTrue(live.live)
            ready = unary(ch, SVC + "ServerReady", message("inference.ServerReadyRequest")(),
                          message("inference.ServerReadyResponse"))
            self.assertTrue(ready.ready)
            meta = unary(ch, SVC + "ServerMetadata", message("inference.ServerMetadataRequest")(),
                         message("inference.ServerMetadataResponse"))
            self.assertEqual(meta.name, "eied")
            mm = unary(ch, SVC + "ModelMetadata",
                       message("inference.ModelMetadataRequest")(name="small"),
                       message("inference.ModelMetadataResponse"))
            self.assertEqual(mm.platform, "eie_eiev1")
            self.assertEqual(list(mm.inputs[0].shape), [-1, 64])
            self.assertEqual(list(mm.outputs[0].shape), [-1, 10])
            self.assertEqual(mm.properties["fc_layers"], "3")
            self.assertEqual(int(mm.properties["weights"]), 64 * 48 + 48 * 32 + 32 * 10)
            self.assertGreater(float(mm.properties["compression_ratio"]), 1.0)
            with self.assertRaises(grpc.RpcError) as cm:
                unary(ch, SVC + "ModelMetadata",
                      message("inference.ModelMetadataRequest")(name="nope"),
                      message("inference.ModelMetadataResponse"))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_graph_model_keeps_its_names_and_full_shapes(self):
        path = os.path.join(TMP.name, "cnn.eie")
        subprocess.run([harness.SYNTH, path, "--cnn", "--name", "cnn"], check=True)
        data = rows(3, dim=64, seed=5)
        want = reference(path, data, TMP.name)
        assert_close(self, want, reference(path, data, TMP.name, dense=True))
        with Daemon(config(models={"cnn": path})) as d, d.channel() as ch:
            wait_ready(ch, "cnn")
            mm = unary(ch, SVC + "ModelMetadata",
                       message("inference.ModelMetadataRequest")(name="cnn"),
                       message("inference.ModelMetadataResponse"))
            self.assertEqual([(t.name, t.datatype, list(t.shape)) for t in mm.inputs],
                             [("image", "FP32", [-1, 1, 8, 8])])
            self.assertEqual([(t.name, t.datatype, list(t.shape)) for t in mm.outputs],
                             [("logits", "FP32", [-1, 10])])
            resp = infer(ch, request(data, model="cnn", name="image", shape=[3, 1, 8, 8]))
            self.assertEqual(resp.outputs[0].name, "logits")
            self.assertEqual(list(resp.outputs[0].shape), [3, 10])
            assert_close(self, outputs(resp), want)
            # the flattened shape is refused, naming the shape the model takes
            with self.assertRaises(grpc.RpcError) as cm:
                infer(ch, request(data, model="cnn", name="image"))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("shape [3,64] does not match [-1,1,8,8]", cm.exception.details())
            # eiectl sends a 4-D .npy in the model's full shape
            flat = [x for r in data for x in r]
            header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1, 8, 8), }"
            header += " " * ((10 + len(header) + 1 + 63) // 64 * 64 - 10 - len(header) - 1)
            header += "\n"
            npy_path = os.path.join(TMP.name, "images.npy")
            with open(npy_path, "wb") as f:
                f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) +
                        header.encode() + struct.pack("<%df" % len(flat), *flat))
            r = subprocess.run([harness.EIECTL, "infer", "--addr", "127.0.0.1:%d" % d.port,
                                "--model", "cnn", "--input-file", npy_path],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            got = [[float(v) for v in line.split()] for line in r.stdout.strip().splitlines()]
            assert_close(self, got, want, rel=1e-4)

    def test_two_inputs_and_two_outputs_by_their_names(self):
        path = os.path.join(TMP.name, "two.eie")
        subprocess.run([harness.SYNTH, path, "--two", "--name", "two"], check=True)
        left, right = rows(3, dim=6, seed=8), rows(3, dim=6, seed=9)
        # eie-ref takes and gives a graph's tensors one after the other
        flat = reference(path, [sum(left, []) + sum(right, [])], TMP.name)[0]
        want_sum = [flat[i * 4:(i + 1) * 4] for i in range(3)]
        want_lrelu = [flat[12 + i * 4:12 + (i + 1) * 4] for i in range(3)]
        self.assertTrue(all(x >= 0 for r in want_lrelu for x in r))
        with Daemon(config(models={"two": path})) as d, d.channel() as ch:
            wait_ready(ch, "two")
            mm = unary(ch, SVC + "ModelMetadata",
                       message("inference.ModelMetadataRequest")(name="two"),
                       message("inference.ModelMetadataResponse"))
            self.assertEqual([(t.name, list(t.shape)) for t in mm.inputs],
                             [("left", [-1, 6]), ("right", [-1, 3, 2])])
            self.assertEqual([(t.name, list(t.shape)) for t in mm.outputs],
                             [("sum", [-1, 4]), ("lrelu", [-1, 4])])

            def req_for(order, raw=True):
                req = InferReq(model_name="two")
                data = {"left": (left, [3, 6]), "right": (right, [3, 3, 2])}
                for name in order:
                    vals, shape = data[name]
                    t = req.inputs.add(name=name, datatype="FP32")
                    t.shape.extend(shape)
                    flat_in = [x for r in vals for x in r]
                    if raw:
                        req.raw_input_contents.append(struct.pack("<%df" % len(flat_in),
                                                                  *flat_in))
                    else:
                        t.contents.fp32_contents.extend(flat_in)
                return req

            for order, raw in ((["left", "right"], True), (["right", "left"], False)):
                resp = infer(ch, req_for(order, raw))
                self.assertEqual([(o.name, list(o.shape)) for o in resp.outputs],
                                 [("sum", [3, 4]), ("lrelu", [3, 4])])
                got = [struct.unpack("<12f", c) for c in resp.raw_output_contents]
                assert_close(self, [list(got[0][i * 4:(i + 1) * 4]) for i in range(3)],
                             want_sum)
                assert_close(self, [list(got[1][i * 4:(i + 1) * 4]) for i in range(3)],
                             want_lrelu)
            # one requested output comes alone
            req = req_for(["left", "right"])
            req.outputs.add(name="lrelu")
            resp = infer(ch, req)
            self.assertEqual([o.name for o in resp.outputs], ["lrelu"])
            # a missing input and a wrong shape are named
            req = req_for(["left"])
            with self.assertRaises(grpc.RpcError) as cm:
                infer(ch, req)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("expected 2 input tensors, got 1", cm.exception.details())
            req = req_for(["left", "right"])
            del req.inputs[1].shape[:]
            req.inputs[1].shape.extend([3, 6])
            with self.assertRaises(grpc.RpcError) as cm:
                infer(ch, req)
            self.assertIn("input 'right': shape [3,6] does not match [-1,3,2]",
                          cm.exception.details())
            # eiectl: one --input NAME=FILE per input
            paths = {}
            for name, vals, shape in (("left", left, (3, 6)), ("right", right, (3, 3, 2))):
                paths[name] = os.path.join(TMP.name, name + ".npy")
                write_npy(paths[name], [x for r in vals for x in r], shape)
            r = subprocess.run([harness.EIECTL, "infer", "--addr", "127.0.0.1:%d" % d.port,
                                "--model", "two", "--json", "--input", "right=" + paths["right"],
                                "--input", "left=" + paths["left"]],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            import json
            got = {o["name"]: o for o in json.loads(r.stdout)["outputs"]}
            self.assertEqual(sorted(got), ["lrelu", "sum"])
            assert_close(self, got["sum"]["data"], want_sum, rel=1e-4)
            r = subprocess.run([harness.EIECTL, "infer", "--addr", "127.0.0.1:%d" % d.port,
                                "--model", "two", "--input", "left=" + paths["left"]],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1)
            self.assertIn("model 'two' has 2 inputs; 1 given by name", r.stderr)

    def test_unload_then_load_through_the_repository_api(self):
        with Daemon(config()) as d, d.channel() as ch:
            wait_ready(ch, "small")
            Unload = message("inference.RepositoryModelUnloadRequest")
            Load = message("inference.RepositoryModelLoadRequest")
            Index = message("inference.RepositoryIndexRequest")
            IndexResp = message("inference.RepositoryIndexResponse")
            unary(ch, SVC + "RepositoryModelUnload", Unload(model_name="small"),
                  message("inference.RepositoryModelUnloadResponse"))
            code, _ = self.code_of(ch, request(rows(1)))
            self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
            idx = unary(ch, SVC + "RepositoryIndex", Index(), IndexResp)
            self.assertEqual(idx.models[0].state, "UNLOADED")
            unary(ch, SVC + "RepositoryModelLoad", Load(model_name="small"),
                  message("inference.RepositoryModelLoadResponse"))
            wait_ready(ch, "small")
            self.assertEqual(len(outputs(infer(ch, request(rows(1))))), 1)
            with self.assertRaises(grpc.RpcError) as cm:
                unary(ch, SVC + "RepositoryModelLoad", Load(model_name="other"),
                      message("inference.RepositoryModelLoadResponse"))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_eie_sim_backend_replies_carry_cycles_time_efficiency_energy(self):
        data = rows(3)
        want = reference(MODEL, data, TMP.name)
        with Daemon(config("[engine]\nbackend = eie-sim\npes = 64\n")) as d, d.channel() as ch:
            wait_ready(ch, "small")
            resp = infer(ch, request(data))
            p = resp.parameters
            self.assertEqual(p["backend"].string_param, "eie-sim")
            self.assertGreater(p["sim_cycles"].uint64_param, 0)
            self.assertGreater(p["sim_time_us"].double_param, 0)
            self.assertGreater(p["sim_efficiency"].double_param, 0)
            self.assertLessEqual(p["sim_efficiency"].double_param, 1)
            self.assertGreater(p["sim_energy_uj"].double_param, 0)
            # 16-bit fixed point: within the simulator's documented bound of the cpu backend
            assert_close(self, outputs(resp), want, rel=2 ** -5)
            m = metrics(d.metrics_port)
            self.assertGreater(m['eie_sim_cycles{model="small",version="1"}'], 0)
            self.assertGreater(m['eie_sim_energy_uj{model="small",version="1"}'], 0)

    def test_backend_per_model_and_per_request(self):
        models = {"small": MODEL, "sim": MODEL}
        with Daemon(config("[model_backend]\nsim = eie-sim\n", models=models)) as d, \
                d.channel() as ch:
            wait_ready(ch, "small")
            wait_ready(ch, "sim")
            self.assertEqual(infer(ch, request(rows(1))).parameters["backend"].string_param, "cpu")
            resp = infer(ch, request(rows(1), model="sim"))
            self.assertEqual(resp.parameters["backend"].string_param, "eie-sim")
            self.assertGreater(resp.parameters["sim_cycles"].uint64_param, 0)
            # with two backends running, a request picks either for any model
            data = rows(2)
            req = request(data)
            req.parameters["backend"].string_param = "eie-sim"
            resp = infer(ch, req)
            self.assertEqual(resp.parameters["backend"].string_param, "eie-sim")
            self.assertGreater(resp.parameters["sim_cycles"].uint64_param, 0)
            assert_close(self, outputs(resp), reference(MODEL, data, TMP.name), rel=2 ** -5)
            req = request(rows(1), model="sim")
            req.parameters["backend"].string_param = "cpu"
            self.assertEqual(infer(ch, req).parameters["backend"].string_param, "cpu")
            req = request(rows(1))
            req.parameters["backend"].string_param = "tpu"
            code, details = self.code_of(ch, req)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("one of: cpu, eie-sim", details)

    def test_extra_backends_without_per_model_entries(self):
        with Daemon(config("[engine]\nextra_backends = eie-sim\n")) as d, d.channel() as ch:
            wait_ready(ch, "small")
            self.assertEqual(infer(ch, request(rows(1))).parameters["backend"].string_param, "cpu")
            req = request(rows(1))
            req.parameters["backend"].string_param = "eie-sim"
            self.assertEqual(infer(ch, req).parameters["backend"].string_param, "eie-sim")

    def test_reflection_lists_services_and_serves_their_files(self):
        Req = message("grpc.reflection.v1.ServerReflectionRequest")
        Resp = message("grpc.reflection.v1.ServerReflectionResponse")
        with Daemon(config()) as d, d.channel() as ch:
            for version in ("v1", "v1alpha"):
                call = ch.stream_stream(
                    "/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version,
                    request_serializer=lambda m: m.SerializeToString(),
                    response_deserializer=Resp.FromString)
                answers = list(call(iter([
                    Req(list_services=""),
                    Req(file_containing_symbol="inference.GRPCInferenceService"),
                    Req(file_by_filename="grpc/health/v1/health.proto"),
                    Req(file_containing_symbol="no.Such"),
                ]), timeout=10))
                self.assertEqual(len(answers), 4)
                names = {s.name for s in answers[0].list_services_response.service}
                self.assertIn("inference.GRPCInferenceService", names)
                self.assertIn("grpc.health.v1.Health", names)
                self.assertIn("grpc.reflection.v1.ServerReflection", names)
                from google.protobuf import descriptor_pb2
                fd = descriptor_pb2.FileDescriptorProto.FromString(
                    answers[1].file_descriptor_response.file_descriptor_proto[0])
                self.assertEqual(fd.name, "inference.proto")
                self.assertEqual(fd.service[0].name, "GRPCInferenceService")
                self.assertEqual(answers[3].error_response.error_code, 5)


if __name__ == "__main__":
    try:
        harness.main()
    finally:
        TMP.cleanup()
