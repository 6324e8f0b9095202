"""End-to-end: what an attacker or an unlucky operator does to a running
eied. The /metrics port outlives a burst of idle connections; the main port
outlives running out of file descriptors, or readiness says it cannot; a
corrupt newest version does not hide an older good one across a restart;
streams and Watch calls are bounded and their memory returns; repository
folders that cannot be read are errors, not deletions; a tiny model cannot
claim gigabytes; floods of refusals cannot flood the log or break JSON lines;
models whose outputs are not finite never serve."""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import grpc

import harness
from harness import Daemon, message, metrics, synth_model, unary

SVC = "/inference.GRPCInferenceService/"
HEALTH = "/grpc.health.v1.Health/"
HealthReq = message("grpc.health.v1.HealthCheckRequest")
HealthResp = message("grpc.health.v1.HealthCheckResponse")
LoadReq = message("inference.RepositoryModelLoadRequest")
LoadResp = message("inference.RepositoryModelLoadResponse")
IndexReq = message("inference.RepositoryIndexRequest")
IndexResp = message("inference.RepositoryIndexResponse")
InferReq = message("inference.ModelInferRequest")
InferResp = message("inference.ModelInferResponse")
SERVING = 1
NOT_SERVING = 2
TMP = tempfile.TemporaryDirectory(prefix="eie-hard-")
DIMS = [64, 32, 10]
GOOD = synth_model(os.path.join(TMP.name, "good.eie"), DIMS, density=0.3, seed=3, name="good")


def health(port, service, timeout=3.0):
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        return unary(ch, HEALTH + "Check", HealthReq(service=service), HealthResp,
                     timeout=timeout).status


def wait_for(predicate, timeout=20.0, step=0.05):
    """Polls predicate until it is true; returns its last value (tests bound, never time)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(step)
        value = predicate()
    return value


def publish(repo, model, version, src):
    d = os.path.join(repo, model, str(version))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, "model.eie.tmp")
    shutil.copyfile(src, tmp)
    os.rename(tmp, os.path.join(d, "model.eie"))


def repo_config(repo, extra=""):
    return ("[server]\ndrain_delay = 0s\nexit_timeout = 5s\n"
            "[repository]\npath = %s\npoll_interval = 100ms\n%s" % (repo, extra))


def index(ch):
    return unary(ch, SVC + "RepositoryIndex", IndexReq(), IndexResp).models


class MetricsEndpoint(unittest.TestCase):
    def test_scrape_works_after_more_idle_connections_than_the_limit(self):
        with Daemon() as d:
            socks = [socket.create_connection(("127.0.0.1", d.metrics_port)) for _ in range(80)]
            time.sleep(0.2)  # let the loop see every one
            for s in socks:
                s.close()
            values = metrics(d.metrics_port)  # times out on a listener that stopped
            self.assertIn("eie_server_uptime_seconds", values)

    def test_over_the_limit_a_connection_gets_503_and_the_port_keeps_serving(self):
        with Daemon() as d:
            socks = [socket.create_connection(("127.0.0.1", d.metrics_port)) for _ in range(64)]
            extra = socket.create_connection(("127.0.0.1", d.metrics_port))
            extra.settimeout(5)
            extra.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while True:
                chunk = extra.recv(4096)
                if not chunk:
                    break
                reply += chunk
            self.assertTrue(reply.startswith(b"HTTP/1.1 503"), reply[:80])
            for s in socks:
                s.close()
            extra.close()
            self.assertIn("eie_server_uptime_seconds", metrics(d.metrics_port))


class LogFlood(unittest.TestCase):
    def test_refusal_flood_with_long_names_keeps_json_valid_and_is_rate_limited(self):
        calls = 400
        with Daemon("[server]\nlog_format = json\n") as d:
            name = "n" * 1900 + "\xe9\"\\\n"
            with d.channel() as ch:
                for _ in range(calls):
                    with self.assertRaises(grpc.RpcError):
                        unary(ch, SVC + "RepositoryModelLoad", LoadReq(model_name=name),
                              LoadResp)
                time.sleep(1.2)  # a new window: the next line reports what was suppressed
                with self.assertRaises(grpc.RpcError):
                    unary(ch, SVC + "RepositoryModelLoad", LoadReq(model_name=name), LoadResp)
            log = d.log()
        lines = log.splitlines()
        refusals = []
        for line in lines:
            rec = json.loads(line)  # every line parses
            self.assertLess(len(line.encode()), 8192)
            if rec["msg"] == "RepositoryModelLoad refused":
                refusals.append(rec)
        self.assertGreater(len(refusals), 0)
        self.assertLess(len(refusals), calls)
        self.assertTrue(all(len(r["model"]) < 700 for r in refusals))
        self.assertIn("bytes cut]", refusals[0]["model"])
        self.assertTrue(any("suppressed" in r for r in refusals), "no suppression count")


if __name__ == "__main__":
    harness.main()
