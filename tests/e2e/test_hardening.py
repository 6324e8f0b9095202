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
import signal
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
    """Polls predicate until it is true; returns its last value (tests bound, never time).
    An UNAVAILABLE answer counts as "not yet": once, under ASan and a parallel test, the
    first call on a fresh connection saw "Socket closed"; what these tests check is what
    follows, and a client retries UNAVAILABLE anyway."""
    deadline = time.monotonic() + timeout

    def attempt():
        try:
            return predicate()
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() >= deadline:
                raise
            return False

    value = attempt()
    while not value and time.monotonic() < deadline:
        time.sleep(step)
        value = attempt()
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


def scrape(port):
    """True once /metrics answers 200 (503 until the daemon has seen closes)."""
    try:
        return "eie_server_uptime_seconds" in metrics(port)
    except OSError:
        return False


class MetricsEndpoint(unittest.TestCase):
    def test_scrape_works_after_more_idle_connections_than_the_limit(self):
        with Daemon() as d:
            socks = [socket.create_connection(("127.0.0.1", d.metrics_port)) for _ in range(80)]
            time.sleep(0.2)  # let the loop see every one
            for s in socks:
                s.close()
            # a listener that stopped accepting times out for ever
            self.assertTrue(wait_for(lambda: scrape(d.metrics_port)))

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
            self.assertTrue(wait_for(lambda: scrape(d.metrics_port)))


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

    def test_with_log_format_json_every_line_eied_writes_is_json(self):
        with Daemon("[server]\nlog_format = json\n") as d:
            self.assertIsNotNone(d.metrics_port)
            self.assertIsNotNone(d.health_port)
            out = list(d.stdout_lines)
            self.assertEqual(d.stop(), 0)
            rest = d.proc.stdout.read()  # to the end: nothing but JSON either
            err = d.log()
        self.assertEqual(len(out), 4, out)  # http, metrics, health, listening: the ports
        announced = {}
        for line in out:
            rec = json.loads(line)
            self.assertEqual(rec["level"], "info")
            announced[rec["msg"]] = rec["addr"]
        self.assertEqual(announced["listening on"], "127.0.0.1:%d" % d.port)
        self.assertEqual(announced["metrics on"], "127.0.0.1:%d" % d.metrics_port)
        self.assertEqual(announced["health on"], "127.0.0.1:%d" % d.health_port)
        self.assertEqual(announced["http on"], "127.0.0.1:%d" % d.http_port)
        self.assertIn('"msg":"stopped"', err)
        for line in (rest + err).splitlines():
            json.loads(line)

    def test_with_log_format_logfmt_the_ports_are_plain_text(self):
        with Daemon("") as d:
            out = list(d.stdout_lines)
        self.assertIn("listening on 127.0.0.1:%d\n" % d.port, out)
        self.assertIn("metrics on 127.0.0.1:%d\n" % d.metrics_port, out)
        self.assertIn("health on 127.0.0.1:%d\n" % d.health_port, out)
        self.assertIn("http on 127.0.0.1:%d\n" % d.http_port, out)


AS_NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--")
ROOT = os.geteuid() == 0
TINY = synth_model(os.path.join(TMP.name, "tiny.eie"), [8, 4], density=0.5, seed=5, name="tiny")


def new_repo():
    repo = tempfile.mkdtemp(prefix="repo-", dir=TMP.name)
    os.chmod(TMP.name, 0o755)
    os.chmod(repo, 0o755)
    return repo


def rows(ch, name=None):
    return [(r.name, r.version, r.state, r.reason) for r in index(ch)
            if name is None or r.name == name]


def model_ready(ch, name, version=""):
    req = message("inference.ModelReadyRequest")(name=name, version=version)
    return unary(ch, SVC + "ModelReady", req, message("inference.ModelReadyResponse")).ready


class Repository(unittest.TestCase):
    def test_restart_with_a_corrupt_newest_version_serves_the_older_good_one(self):
        repo = new_repo()
        publish(repo, "lenet", 1, GOOD)
        with open(GOOD, "rb") as f:
            head = f.read(100)
        os.makedirs(os.path.join(repo, "lenet", "2"))
        with open(os.path.join(repo, "lenet", "2", "model.eie"), "wb") as f:
            f.write(head)  # truncated
        with Daemon(repo_config(repo)) as d, d.channel() as ch:
            self.assertTrue(wait_for(lambda: health(d.health_port, "readiness") == SERVING),
                            d.log()[-3000:])
            self.assertTrue(model_ready(ch, "lenet"))
            self.assertTrue(model_ready(ch, "lenet", "1"))
            r = {v: (state, reason) for _, v, state, reason in rows(ch, "lenet")}
            self.assertEqual(r["1"][0], "READY")
            self.assertEqual(r["2"][0], "UNAVAILABLE")
            self.assertIn("version 2", r["2"][1])
            self.assertIn("lenet/2/model.eie", r["2"][1])
            self.assertNotIn(repo, r["2"][1])  # clients see model and version, not paths
            self.assertEqual(
                metrics(d.metrics_port)['eie_model_version_load_failed{model="lenet",version="2"}'],
                1)

    @unittest.skipUnless(ROOT, "needs root to run eied as another user")
    def test_unreadable_model_folder_keeps_serving_and_is_reported(self):
        repo = new_repo()
        publish(repo, "a", 1, TINY)
        publish(repo, "b", 1, TINY)
        with Daemon(repo_config(repo), wrapper=AS_NOBODY) as d, d.channel() as ch:
            self.assertTrue(wait_for(lambda: health(d.health_port, "readiness") == SERVING),
                            d.log()[-3000:])
            os.chmod(os.path.join(repo, "a"), 0)
            try:
                self.assertTrue(wait_for(lambda: "cannot read a model folder" in d.log()))
                time.sleep(0.5)  # several more polls
                self.assertTrue(model_ready(ch, "a"), d.log()[-2000:])
                self.assertTrue(any("cannot be read" in r[3] for r in rows(ch, "a")))
            finally:
                os.chmod(os.path.join(repo, "a"), 0o755)

    @unittest.skipUnless(ROOT, "needs root to run eied as another user")
    def test_a_folder_unreadable_from_the_start_is_reported_and_loaded_once_readable(self):
        repo = new_repo()
        publish(repo, "a", 1, TINY)
        publish(repo, "b", 1, TINY)
        os.chmod(os.path.join(repo, "a"), 0)
        try:
            with Daemon(repo_config(repo), wrapper=AS_NOBODY) as d, d.channel() as ch:
                self.assertTrue(wait_for(lambda: model_ready(ch, "b")), d.log()[-3000:])
                self.assertTrue(wait_for(lambda: any("cannot be read" in r[3]
                                                     for r in rows(ch, "a"))),
                                (rows(ch), d.log()[-2000:]))
                self.assertFalse(model_ready(ch, "a"))
                os.chmod(os.path.join(repo, "a"), 0o755)
                self.assertTrue(wait_for(lambda: model_ready(ch, "a")), d.log()[-2000:])
        finally:
            os.chmod(os.path.join(repo, "a"), 0o755)

    @unittest.skipUnless(ROOT, "needs root to run eied as another user")
    def test_a_version_that_failed_with_eacces_is_retried_on_chmod_and_on_sighup(self):
        repo = new_repo()
        publish(repo, "m", 1, TINY)
        publish(repo, "n", 1, TINY)
        fm = os.path.join(repo, "m", "1", "model.eie")
        fn = os.path.join(repo, "n", "1", "model.eie")
        os.chmod(fm, 0)
        os.chmod(fn, 0o600)  # root's: nobody cannot read it
        with Daemon(repo_config(repo), wrapper=AS_NOBODY) as d, d.channel() as ch:
            self.assertTrue(wait_for(lambda: "Permission denied" in d.log()), d.log()[-2000:])
            self.assertFalse(model_ready(ch, "m"))
            os.chmod(fm, 0o644)
            self.assertTrue(wait_for(lambda: model_ready(ch, "m")), d.log()[-2000:])
            self.assertFalse(model_ready(ch, "n"))
            os.chown(fn, 65534, -1)  # the owner changes, not the mode: only SIGHUP retries
            time.sleep(0.5)
            self.assertFalse(model_ready(ch, "n"))
            d.signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: model_ready(ch, "n")), d.log()[-2000:])

    def test_more_than_256_models_all_serve_and_adding_one_unloads_none(self):
        repo = new_repo()
        names = ["m%03d" % i for i in range(260)]
        for n in names:
            os.makedirs(os.path.join(repo, n, "1"))
            os.link(TINY, os.path.join(repo, n, "1", "model.eie"))
        with Daemon(repo_config(repo, "poll_interval = 1s\n"), start_timeout=60) as d, \
                d.channel() as ch:
            self.assertTrue(wait_for(lambda: health(d.health_port, "readiness") == SERVING,
                                     timeout=120))
            publish(repo, "new", 1, TINY)
            self.assertTrue(wait_for(lambda: model_ready(ch, "new"), timeout=60))
            ready = {r[0] for r in rows(ch) if r[2] == "READY"}
            self.assertEqual(ready, set(names) | {"new"})

    def test_over_max_models_a_new_model_is_refused_loudly_and_none_is_unloaded(self):
        repo = new_repo()
        publish(repo, "a", 1, TINY)
        publish(repo, "b", 1, TINY)
        with Daemon(repo_config(repo, "max_models = 2\n")) as d, d.channel() as ch:
            self.assertTrue(wait_for(lambda: health(d.health_port, "readiness") == SERVING))
            publish(repo, "c", 1, TINY)
            self.assertTrue(wait_for(lambda: "model limit reached" in d.log()))
            self.assertTrue(model_ready(ch, "a") and model_ready(ch, "b"))
            self.assertEqual(metrics(d.metrics_port)["eie_repository_models_refused"], 1)
            self.assertIn("model=c", d.log())

    def test_latest_1_serves_the_newest_of_200_version_folders(self):
        repo = new_repo()
        for v in range(1, 201):
            os.makedirs(os.path.join(repo, "m", str(v)))
            os.link(TINY, os.path.join(repo, "m", str(v), "model.eie"))
        with Daemon(repo_config(repo)) as d, d.channel() as ch:
            self.assertTrue(wait_for(lambda: health(d.health_port, "readiness") == SERVING))
            self.assertEqual([r[1] for r in rows(ch, "m")], ["200"])
            self.assertIn("more version folders than repository.max_versions", d.log())

    def test_removed_models_are_forgotten(self):
        repo = new_repo()
        with Daemon(repo_config(repo, "forget_after = 0s\n")) as d, d.channel() as ch:
            for i in range(30):
                publish(repo, "churn%02d" % i, 1, TINY)
            self.assertTrue(wait_for(lambda: len(rows(ch)) == 30 and
                                     all(r[2] == "READY" for r in rows(ch))))
            for i in range(30):
                shutil.rmtree(os.path.join(repo, "churn%02d" % i))
            self.assertTrue(wait_for(lambda: rows(ch) == []), rows(ch)[:3])
            self.assertFalse([k for k in metrics(d.metrics_port) if "churn" in k])


def overflowing_model(path):
    """GOOD with every nonzero codebook value of its first layer set to 3e38: a valid,
    checksummed file whose every output overflows float."""
    import hashlib
    import struct
    with open(GOOD, "rb") as f:
        data = bytearray(f.read())
    header = data.find(struct.pack("<IIII", DIMS[1], DIMS[0], 4, 0))  # rows, cols, bits
    assert header > 0
    codebook = header + 32
    for k in range(1, 16):
        data[codebook + 4 * k:codebook + 4 * k + 4] = struct.pack("<f", 3e38)
    data[-32:] = hashlib.sha256(bytes(data[:-32])).digest()
    with open(path, "wb") as f:
        f.write(data)
    return path


class NonFinite(unittest.TestCase):
    def test_a_model_whose_outputs_overflow_never_serves(self):
        repo = new_repo()
        bad = overflowing_model(os.path.join(TMP.name, "overflow.eie"))
        publish(repo, "nan", 1, bad)
        publish(repo, "ok", 1, GOOD)
        with Daemon(repo_config(repo)) as d, d.channel() as ch:
            self.assertTrue(wait_for(lambda: model_ready(ch, "ok")))
            self.assertTrue(wait_for(lambda: "model load failed" in d.log()), d.log()[-2000:])
            self.assertFalse(model_ready(ch, "nan"))
            (row,) = [r for r in rows(ch, "nan") if r[1] == "1"]
            self.assertEqual(row[2], "UNAVAILABLE")
            self.assertIn("version 1", row[3])
            # refused by the loader (non-finite weights) or by the warm-up (outputs)
            self.assertRegex(row[3], "finite|overflow")


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class Amplification(unittest.TestCase):
    def test_a_small_file_of_one_wide_empty_layer_is_refused_before_allocating(self):
        wide = os.path.join(TMP.name, "wide.eie")
        subprocess.run([harness.SYNTH, wide, "--layers", "1048576,1", "--density", "0.000001",
                        "--bits", "1"], check=True)
        size = os.path.getsize(wide)
        self.assertLess(size, 64 * 1024)
        with Daemon("[engine]\npes = 64\n[models]\nwide = %s\nok = %s\n" % (wide, GOOD)) as d, \
                d.channel() as ch:
            self.assertTrue(wait_for(lambda: "model load failed" in d.log() and
                                     model_ready(ch, "ok")), d.log()[-2000:])
            self.assertFalse(model_ready(ch, "wide"))
            self.assertIn("layout bytes", d.log())
            peak_mb = status_kb(d.proc.pid, "VmHWM") / 1024
            # 64 PEs x 1M columns x 4 bytes would be 268 MB of column pointers
            self.assertLess(peak_mb, 100, "peak RSS %.0f MB for a %d-byte file" % (peak_mb, size))


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def flood(port, n):
    """Opens n connections that each start HTTP/2, then closes them all."""
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(PREFACE)
            socks.append(s)
        except OSError:
            break
    time.sleep(0.5)  # the daemon accepts what it can
    for s in socks:
        s.close()
    time.sleep(0.3)


def answers(target, creds=None, options=()):
    try:
        ch = grpc.secure_channel(target, creds, options) if creds else grpc.insecure_channel(target)
        with ch:
            unary(ch, HEALTH + "Check", HealthReq(service=""), HealthResp, timeout=3)
        return True
    except grpc.RpcError:
        return False


class FileDescriptors(unittest.TestCase):
    def test_fd_exhaustion_on_plaintext_leaves_the_main_port_accepting(self):
        conf = "[server]\nprobe_interval = 200ms\n[models]\nm = %s\n" % GOOD
        with Daemon(conf, wrapper=("prlimit", "--nofile=256", "--")) as d:
            self.assertIn("fd_limit=256", d.log())
            self.assertIn("max_connections=96", d.log())
            self.assertTrue(wait_for(lambda: health(d.health_port, "readiness") == SERVING))
            flood(d.port, 300)
            self.assertTrue(wait_for(lambda: answers(d.addr)), d.log()[-2000:])
            self.assertEqual(health(d.health_port, "readiness"), SERVING)
            self.assertEqual(health(d.health_port, "liveness"), SERVING)
            m = metrics(d.metrics_port)
            self.assertGreater(m['eie_server_refused_connections_total{port="grpc"}'], 0)

    def test_an_idle_connection_is_closed_after_idle_timeout(self):
        with Daemon("[server]\nidle_timeout = 300ms\n") as d:
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            s.sendall(PREFACE)
            received = b""
            while True:  # SETTINGS, then GOAWAY and the close once idle
                chunk = s.recv(4096)
                if not chunk:
                    break
                received += chunk
            s.close()
            types, at = [], 0
            while at + 9 <= len(received):
                types.append(received[at + 3])
                at += 9 + int.from_bytes(received[at:at + 3], "big")
            self.assertIn(7, types)  # GOAWAY
            self.assertTrue(wait_for(lambda: metrics(d.metrics_port)[
                'eie_server_connections{port="grpc"}'] == 0))

    def test_a_tls_port_that_stops_accepting_turns_readiness_then_liveness_off(self):
        """gRPC itself accepts on a TLS port and gives up on EMFILE: the probe sees it."""
        def openssl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=TMP.name)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", "fd.key", "-out", "fd.pem", "-days", "30", "-subj",
                "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
        conf = ("[server]\nprobe_interval = 200ms\nliveness_grace = 2s\n"
                "[tls]\ncert = %s/fd.pem\nkey = %s/fd.key\n" % (TMP.name, TMP.name))
        with open(os.path.join(TMP.name, "fd.pem"), "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        os.chmod(os.path.join(TMP.name, "fd.key"), 0o644)
        with Daemon(conf, wrapper=("prlimit", "--nofile=256", "--")) as d:
            self.assertTrue(wait_for(lambda: health(d.health_port, "readiness") == SERVING))
            flood(d.port, 300)
            # gRPC 1.51 stops accepting on this port after EMFILE
            self.assertFalse(answers(d.addr, creds,
                                     (("grpc.ssl_target_name_override", "localhost"),)))
            self.assertTrue(wait_for(lambda: health(d.health_port, "readiness") == NOT_SERVING),
                            d.log()[-2000:])
            self.assertTrue(wait_for(lambda: health(d.health_port, "liveness") == NOT_SERVING,
                                     timeout=30), d.log()[-2000:])
            self.assertIn("main port does not accept connections", d.log())
            # the health port itself still answers: the probe is what kubelet sees
            self.assertEqual(health(d.health_port, "liveness"), NOT_SERVING)


def rss_kb(pid):
    return status_kb(pid, "VmRSS")


def h2_frame(ftype, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + \
        stream.to_bytes(4, "big") + payload


def hpack_literal(name, value):
    name, value = name.encode(), value.encode()
    return bytes([0, len(name)]) + name + bytes([len(value)]) + value


def stalled_calls(port, n, path=HEALTH + "Check"):
    """A raw HTTP/2 client that advertises a zero receive window and sends n unary
    calls: the server can never send their replies."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    settings = (4).to_bytes(2, "big") + (0).to_bytes(4, "big")  # INITIAL_WINDOW_SIZE = 0
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, settings))
    s.sendall(h2_frame(4, 1, 0))  # ack the server's SETTINGS
    headers = b"".join(hpack_literal(k, v) for k, v in (
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "x"),
        ("content-type", "application/grpc"), ("te", "trailers")))
    for i in range(n):
        stream = 1 + 2 * i
        s.sendall(h2_frame(1, 4, stream, headers) + h2_frame(0, 1, stream, bytes(5)))
    return s


class Streams(unittest.TestCase):
    def test_watch_streams_are_limited_and_refused_with_resource_exhausted(self):
        with Daemon("[server]\nmax_watch_streams = 50\n") as d, \
                grpc.insecure_channel("127.0.0.1:%d" % d.health_port) as ch:
            watch = ch.unary_stream(HEALTH + "Watch",
                                    request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=HealthResp.FromString)
            calls, refused = [], 0
            for _ in range(120):
                c = watch(HealthReq(service="readiness"), timeout=30)
                try:
                    next(c)
                    calls.append(c)
                except grpc.RpcError as e:
                    self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
                    refused += 1
            self.assertEqual(len(calls), 50)
            self.assertEqual(refused, 70)
            self.assertEqual(health(d.health_port, "readiness"), SERVING)  # Check still answers
            for c in calls:
                c.cancel()
            self.assertTrue(wait_for(lambda: metrics(d.metrics_port)[
                "eie_server_live_calls"] == 0))
            self.assertGreaterEqual(metrics(d.metrics_port)["eie_server_refused_streams_total"],
                                    70)

    def test_calls_over_max_streams_are_refused(self):
        with Daemon("[server]\nmax_streams = 20\nsend_timeout = 60s\n") as d:
            s = stalled_calls(d.port, 20)  # 20 calls held by a client that reads nothing
            try:
                self.assertTrue(wait_for(lambda: metrics(d.metrics_port)[
                    "eie_server_live_calls"] >= 20))
                with self.assertRaises(grpc.RpcError) as e, d.channel() as ch:
                    unary(ch, HEALTH + "Check", HealthReq(service=""), HealthResp)
                self.assertEqual(e.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
                self.assertIn("max_streams", e.exception.details())
            finally:
                s.close()

    def test_a_reply_the_client_never_takes_is_cancelled_after_send_timeout(self):
        with Daemon("[server]\nsend_timeout = 500ms\n") as d:
            s = stalled_calls(d.port, 100)
            try:
                self.assertTrue(wait_for(lambda: metrics(d.metrics_port)[
                    "eie_server_send_timeouts_total"] >= 100), d.log()[-2000:])
                self.assertTrue(wait_for(lambda: metrics(d.metrics_port)[
                    "eie_server_live_calls"] == 0))
            finally:
                s.close()


def self_signed(name, days, key="ec"):
    args = ["-newkey", "rsa:512"] if key == "rsa512" else \
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    subprocess.run(["openssl", "req", "-x509", *args, "-nodes", "-keyout", name + ".key",
                    "-out", name + ".pem", "-days", str(days), "-subj", "/CN=localhost"],
                   check=True, capture_output=True, cwd=TMP.name)
    os.chmod(os.path.join(TMP.name, name + ".key"), 0o600)
    return os.path.join(TMP.name, name + ".pem"), os.path.join(TMP.name, name + ".key")


class Tls(unittest.TestCase):
    def test_a_certificate_expiring_soon_is_reported_at_start_and_on_sighup(self):
        long_cert, long_key = self_signed("long", 365)
        soon_cert, soon_key = self_signed("soon", 5)
        cert = os.path.join(TMP.name, "served.pem")
        key = os.path.join(TMP.name, "served.key")
        shutil.copyfile(long_cert, cert)
        shutil.copyfile(long_key, key)
        conf = "[tls]\ncert = %s\nkey = %s\n" % (cert, key)
        with Daemon(conf) as d:
            self.assertGreater(metrics(d.metrics_port)["eie_tls_cert_expiry_seconds"],
                               300 * 86400)
            self.assertNotIn("expires within 14 days", d.log())
            shutil.copyfile(soon_cert, cert)
            shutil.copyfile(soon_key, key)
            d.signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: "expires within 14 days" in d.log()))
            left = metrics(d.metrics_port)["eie_tls_cert_expiry_seconds"]
            self.assertLess(left, 6 * 86400)
            self.assertGreater(left, 3 * 86400)
        with Daemon(conf) as d:
            self.assertIn("expires within 14 days", d.log())

    def test_an_rsa_512_key_is_an_error_naming_the_key(self):
        cert, key = self_signed("weak", 30, key="rsa512")
        with self.assertRaises(RuntimeError) as e:
            Daemon("[tls]\ncert = %s\nkey = %s\n" % (cert, key))
        self.assertIn("tls.key: %s" % key, str(e.exception))
        self.assertIn("too weak", str(e.exception))


class PathsAndSecrets(unittest.TestCase):
    def test_a_symlink_out_of_the_repository_is_refused_unless_allowed(self):
        repo = new_repo()
        outside = tempfile.mkdtemp(prefix="outside-", dir=TMP.name)
        publish(outside, "x", 1, TINY)
        os.symlink(os.path.join(outside, "x"), os.path.join(repo, "linked"))
        publish(repo, "plain", 1, TINY)
        with Daemon(repo_config(repo)) as d, d.channel() as ch:
            self.assertTrue(wait_for(lambda: model_ready(ch, "plain")))
            self.assertTrue(wait_for(lambda: "leads out of the repository" in d.log()))
            self.assertFalse(model_ready(ch, "linked"))
        with Daemon(repo_config(repo, "follow_symlinks = true\n")) as d, d.channel() as ch:
            self.assertTrue(wait_for(lambda: model_ready(ch, "linked")), d.log()[-2000:])

    def test_a_file_that_is_not_a_config_is_refused_without_printing_it(self):
        secret = os.path.join(TMP.name, "shadow")
        with open(secret, "w") as f:
            f.write("root:$y$j9T$notarealhash:19000:0:99999:7:::\n")
        fifo = os.path.join(TMP.name, "fifo.conf")
        os.mkfifo(fifo)
        for path in (secret, fifo, TMP.name):
            r = subprocess.run([harness.EIED, "--config", path, "--check-config"],
                               capture_output=True, text=True, timeout=10)
            self.assertNotEqual(r.returncode, 0)
            self.assertNotIn("notarealhash", r.stdout + r.stderr)
            self.assertIn(path, r.stderr)


if __name__ == "__main__":
    harness.main()
