"""End-to-end: ModelStreamInfer (Triton's bidirectional inference stream) with
grpcio as the client: one response per request in order, equal to
ModelInfer's, an error answered in its place without closing the stream,
and streams that end early on either side."""
import os
import random
import struct
import tempfile
import unittest

import grpc

import harness
from harness import Daemon, message, synth_model, unary

SVC = "/inference.GRPCInferenceService/"
InferReq = message("inference.ModelInferRequest")
InferResp = message("inference.ModelInferResponse")
StreamResp = message("inference.ModelStreamInferResponse")
LAYERS = [32, 24, 8]

TMP = tempfile.TemporaryDirectory(prefix="eie-stream-")
MODEL = synth_model(os.path.join(TMP.name, "s.eie"), LAYERS, density=0.4, seed=3, name="s")
CONFIG = "[server]\ndrain_delay = 0s\nexit_timeout = 5s\n[models]\ns = %s\n" % MODEL


def request(seed, rows=1, width=LAYERS[0], id=""):
    rnd = random.Random(seed)
    req = InferReq(model_name="s", id=id)
    t = req.inputs.add(name="input", datatype="FP32")
    t.shape.extend([rows, width])
    t.contents.fp32_contents.extend([rnd.uniform(-1, 1) for _ in range(rows * width)])
    return req


def stream(ch):
    return ch.stream_stream(SVC + "ModelStreamInfer",
                            request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=StreamResp.FromString)


def wait_ready(ch):
    req = message("inference.ModelReadyRequest")(name="s")
    for _ in range(400):
        try:
            if unary(ch, SVC + "ModelReady", req, message("inference.ModelReadyResponse")).ready:
                return True
        except grpc.RpcError:
            pass
        import time
        time.sleep(0.05)
    return False


class Stream(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(CONFIG)
        cls.ch = cls.d.channel()
        if not wait_ready(cls.ch):
            cls.d.__exit__(None, None, None)
            raise RuntimeError("model never ready")

    @classmethod
    def tearDownClass(cls):
        cls.ch.close()
        cls.d.__exit__(None, None, None)

    def test_responses_come_in_order_and_equal_model_infer(self):
        reqs = [request(i, rows=1 + i % 3, id="r%d" % i) for i in range(12)]
        got = list(stream(self.ch)(iter(reqs), timeout=30))
        self.assertEqual(len(got), len(reqs))
        for req, r in zip(reqs, got):
            self.assertEqual(r.error_message, "")
            self.assertEqual(r.infer_response.id, req.id)
            want = unary(self.ch, SVC + "ModelInfer", req, InferResp)
            self.assertEqual(r.infer_response.raw_output_contents,
                             want.raw_output_contents)

    def test_an_error_is_answered_in_place_and_the_stream_goes_on(self):
        bad = request(1, width=LAYERS[0] - 1, id="bad")
        reqs = [request(0, id="a"), bad, InferReq(model_name="nope", id="c"), request(2, id="d")]
        got = list(stream(self.ch)(iter(reqs), timeout=30))
        self.assertEqual([r.error_message == "" for r in got], [True, False, False, True])
        with self.assertRaises(grpc.RpcError) as e:
            unary(self.ch, SVC + "ModelInfer", bad, InferResp)
        self.assertEqual(got[1].error_message, e.exception.details())
        self.assertIn("nope", got[2].error_message)
        self.assertEqual(got[3].infer_response.id, "d")

    def test_an_empty_stream_ends_ok_and_a_cancelled_one_costs_nothing(self):
        self.assertEqual(list(stream(self.ch)(iter([]), timeout=10)), [])
        call = stream(self.ch)(iter([request(i) for i in range(50)]), timeout=30)
        next(call)
        call.cancel()
        # the daemon goes on serving
        self.assertEqual(len(list(stream(self.ch)(iter([request(5)]), timeout=10))), 1)


if __name__ == "__main__":
    harness.main()
