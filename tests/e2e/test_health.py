"""End-to-end: grpc.health.v1 through eiectl and through Python grpcio,
unknown services and methods, malformed requests, and the SIGTERM drain
with a Watch stream open."""
import signal
import threading
import time
import unittest

import grpc

import harness
from harness import Daemon, eiectl, message, unary, raw_unary

Req = message("grpc.health.v1.HealthCheckRequest")
Resp = message("grpc.health.v1.HealthCheckResponse")
SERVING = harness.enum_value("grpc.health.v1.HealthCheckResponse.ServingStatus", "SERVING")
NOT_SERVING = harness.enum_value("grpc.health.v1.HealthCheckResponse.ServingStatus", "NOT_SERVING")
SERVICE_UNKNOWN = harness.enum_value("grpc.health.v1.HealthCheckResponse.ServingStatus",
                                     "SERVICE_UNKNOWN")
CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"
FAST_DRAIN = "[server]\ndrain_delay = 200ms\nexit_timeout = 5s\n"


class HealthTest(unittest.TestCase):
    def test_eiectl_reports_serving_and_exits_0(self):
        with Daemon(FAST_DRAIN) as d:
            for service in ("", "liveness", "readiness"):
                r = eiectl("health", "--addr", d.addr, "--service", service)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout.strip(), "SERVING")

    def test_python_client_sees_serving_for_every_service(self):
        with Daemon(FAST_DRAIN) as d, d.channel() as ch:
            for service in ("", "liveness", "readiness"):
                self.assertEqual(unary(ch, CHECK, Req(service=service), Resp).status, SERVING)

    def test_unknown_service_is_not_found(self):
        with Daemon(FAST_DRAIN) as d, d.channel() as ch:
            with self.assertRaises(grpc.RpcError) as cm:
                unary(ch, CHECK, Req(service="nope"), Resp)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
            self.assertIn("nope", cm.exception.details())
            r = eiectl("health", "--addr", d.addr, "--service", "nope")
            self.assertEqual(r.returncode, 1)
            self.assertIn("NOT_FOUND", r.stderr)

    def test_eiectl_unreachable_daemon_exits_1(self):
        r = eiectl("health", "--addr", "127.0.0.1:1", "--timeout", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAVAILABLE", r.stderr + r.stdout)

    def test_unknown_method_is_unimplemented(self):
        with Daemon(FAST_DRAIN) as d, d.channel() as ch:
            with self.assertRaises(grpc.RpcError) as cm:
                raw_unary(ch, "/no.Such/Method", b"")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
            self.assertEqual(unary(ch, CHECK, Req(), Resp).status, SERVING)

    def test_reflection_on_the_health_port_lists_only_what_it_serves(self):
        Req_ = message("grpc.reflection.v1.ServerReflectionRequest")
        Resp_ = message("grpc.reflection.v1.ServerReflectionResponse")
        with Daemon(FAST_DRAIN) as d, \
                grpc.insecure_channel("127.0.0.1:%d" % d.health_port) as ch:
            call = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                    request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=Resp_.FromString)
            answers = list(call(iter([Req_(list_services=""),
                                      Req_(file_by_filename="grpc/health/v1/health.proto")]),
                                timeout=10))
            names = {s.name for s in answers[0].list_services_response.service}
            self.assertIn("grpc.health.v1.Health", names)
            self.assertIn("grpc.reflection.v1.ServerReflection", names)
            self.assertNotIn("inference.GRPCInferenceService", names)
            self.assertTrue(answers[1].file_descriptor_response.file_descriptor_proto)
            # and inference itself is still not served there
            with self.assertRaises(grpc.RpcError) as cm:
                raw_unary(ch, "/inference.GRPCInferenceService/ServerLive", b"")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_malformed_request_is_invalid_argument_and_daemon_keeps_serving(self):
        with Daemon(FAST_DRAIN) as d, d.channel() as ch:
            for junk in (b"\xff\xff\xff", b"\x0a\x10abc", b"\x0b"):
                with self.assertRaises(grpc.RpcError) as cm:
                    raw_unary(ch, CHECK, junk)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(unary(ch, CHECK, Req(), Resp).status, SERVING)

    def test_watch_unknown_service_reports_service_unknown(self):
        with Daemon(FAST_DRAIN) as d, d.channel() as ch:
            watch = ch.unary_stream(WATCH, request_serializer=Req.SerializeToString,
                                    response_deserializer=Resp.FromString)
            stream = watch(Req(service="nope"), timeout=10)
            self.assertEqual(next(stream).status, SERVICE_UNKNOWN)
            stream.cancel()

    def test_sigterm_with_watch_open_flips_readiness_and_exits_0_within_drain(self):
        with Daemon("[server]\ndrain_delay = 500ms\nexit_timeout = 3s\n") as d, \
                d.channel() as ch:
            watch = ch.unary_stream(WATCH, request_serializer=Req.SerializeToString,
                                    response_deserializer=Resp.FromString)
            stream = watch(Req(service="readiness"), timeout=30)
            self.assertEqual(next(stream).status, SERVING)
            live = watch(Req(service="liveness"), timeout=30)
            self.assertEqual(next(live).status, SERVING)
            t0 = time.monotonic()
            d.signal(signal.SIGTERM)
            self.assertEqual(next(stream).status, NOT_SERVING)  # readiness flips first
            # during drain_delay the daemon still serves (Kubernetes keeps routing)
            self.assertEqual(unary(ch, CHECK, Req(service="liveness"), Resp).status, SERVING)
            self.assertEqual(unary(ch, CHECK, Req(service="readiness"), Resp).status, NOT_SERVING)
            with self.assertRaises(grpc.RpcError) as cm:
                for _ in stream:
                    pass
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertEqual(d.wait(timeout=0.5 + 3 + 2), 0)
            self.assertLess(time.monotonic() - t0, 0.5 + 3 + 1)
            self.assertIn("stopped", d.log())

    def test_second_signal_stops_at_once(self):
        with Daemon("[server]\ndrain_delay = 30s\nexit_timeout = 30s\n") as d:
            d.signal(signal.SIGTERM)
            time.sleep(0.2)
            t0 = time.monotonic()
            d.signal(signal.SIGINT)
            self.assertEqual(d.wait(timeout=10), 0)
            self.assertLess(time.monotonic() - t0, 5)

    def test_parallel_checks_all_succeed(self):
        with Daemon(FAST_DRAIN) as d, d.channel() as ch:
            errors = []

            def worker():
                try:
                    for _ in range(50):
                        assert unary(ch, CHECK, Req(), Resp).status == SERVING
                except Exception as e:  # collected and asserted below
                    errors.append(e)
            threads = [threading.Thread(target=worker) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])


if __name__ == "__main__":
    harness.main()
