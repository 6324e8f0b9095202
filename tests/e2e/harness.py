"""Start the real eied on a loopback port with an inline config, talk to it
with an independent client (Debian's python3-grpcio), stop it for sure.

Message classes are built at run time from the descriptor set the build
generates (build/proto/eie.protoset), so no generated Python is needed.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

BUILD = os.environ.get("EIE_BUILD_ROOT", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE = os.environ.get("EIE_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../.."))
EIED = os.path.join(BUILD, "daemon", "eied")
EIECTL = os.path.join(BUILD, "client", "eiectl")
SYNTH = os.path.join(BUILD, "tests", "tools", "eie-synth")
REF = os.path.join(BUILD, "tests", "tools", "eie-ref")
PROTOSET = os.path.join(BUILD, "proto", "eie.protoset")

_pool = descriptor_pool.DescriptorPool()
_fds = descriptor_pb2.FileDescriptorSet()
with open(PROTOSET, "rb") as f:
    _fds.ParseFromString(f.read())
for _fd in _fds.file:
    _pool.Add(_fd)


# Every port a test daemon opens is on loopback and picked by the kernel.
LOOPBACK_FLAGS = ("--listen", "127.0.0.1:0", "--set", "server.health_listen=127.0.0.1:0",
                  "--set", "server.metrics_listen=127.0.0.1:0",
                  "--set", "server.http_listen=127.0.0.1:0")

SANITIZED = os.environ.get("EIE_SANITIZE", "none") != "none"


def message(full_name):
    """The Python class of a message type, e.g. 'grpc.health.v1.HealthCheckRequest'."""
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName(full_name)) \
        if hasattr(message_factory, "GetMessageClass") \
        else message_factory.MessageFactory(_pool).GetPrototype(_pool.FindMessageTypeByName(full_name))


def enum_value(full_enum, name):
    return _pool.FindEnumTypeByName(full_enum).values_by_name[name].number


class Daemon:
    """One eied process on 127.0.0.1:0 with the given config text."""

    def __init__(self, config="", args=(), env=None, start_timeout=15.0, wrapper=()):
        """wrapper: a command line eied runs under, e.g. ("prlimit", "--nofile=256", "--")."""
        self.tmp = tempfile.TemporaryDirectory(prefix="eied-test-")
        os.chmod(self.tmp.name, 0o755)  # a wrapper may run eied as another user
        self.config_path = os.path.join(self.tmp.name, "eied.conf")
        if "drain_delay" not in config:
            config = "[server]\ndrain_delay = 0s\n" + config  # tests stop fast by default
        with open(self.config_path, "w") as f:
            f.write(config)
        self.stderr_path = os.path.join(self.tmp.name, "stderr.log")
        self._stderr = open(self.stderr_path, "w")
        full_env = dict(os.environ)
        if SANITIZED:  # a known OpenSSL thread-exit leak, see the file
            full_env.setdefault("LSAN_OPTIONS", "suppressions=" +
                                os.path.join(SOURCE, "tests/e2e/lsan-openssl.supp"))
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [*wrapper, EIED, "--config", self.config_path, *LOOPBACK_FLAGS, *args],
            stdout=subprocess.PIPE, stderr=self._stderr, env=full_env, text=True)
        self.port = None
        self.metrics_port = None
        self.health_port = None
        self.http_port = None
        self.stdout_lines = []  # what eied printed up to "listening on"
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.stdout_lines.append(line)
            # "listening on ADDR", or with log_format = json the same as a JSON event
            if line.startswith("{"):
                rec = json.loads(line)
                line = "%s %s" % (rec.get("msg", ""), rec.get("addr", ""))
            if line.startswith("health on "):
                self.health_port = int(line.strip().rsplit(":", 1)[1])
            if line.startswith("metrics on "):
                self.metrics_port = int(line.strip().rsplit(":", 1)[1])
            if line.startswith("http on "):
                self.http_port = int(line.strip().rsplit(":", 1)[1])
            if line.startswith("listening on "):
                self.port = int(line.strip().rsplit(":", 1)[1])
                break
        if self.port is None:
            self.kill()
            raise RuntimeError("eied did not start:\n" + self.log())
        self.addr = "127.0.0.1:%d" % self.port

    def log(self):
        self._stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def channel(self):
        return grpc.insecure_channel(self.addr)

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        return self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def stop(self, timeout=20):
        """SIGTERM and wait: the daemon must exit 0 (under ASan, LeakSanitizer runs at exit)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("eied did not stop within %ss:\n%s" % (timeout, self.log()))
        return self.proc.returncode

    def __exit__(self, exc_type, *exc):
        died = self.proc.poll() is not None  # exited by itself, before being asked to
        try:
            if exc_type is not None and died:
                # The test failed because the daemon is gone: its stderr (a sanitizer
                # report, a fatal log line) is the only clue, and tmp is deleted below.
                sys.stderr.write("eied exited %d by itself during the test; its log:\n%s\n"
                                 % (self.proc.returncode, self.log()[-8000:]))
            rc = self.stop()
            if exc_type is None and rc != 0:
                raise AssertionError("eied exited %d:\n%s" % (rc, self.log()[-4000:]))
        finally:
            self.kill()
        self.proc.stdout.close()
        self._stderr.close()
        self.tmp.cleanup()


def synth_model(path, layers, density=0.1, bits=4, seed=1, softmax=False, name="synthetic"):
    """Writes a synthetic .eie with the engine's own writer (tests/tools/eie-synth)."""
    args = [SYNTH, path, "--layers", ",".join(map(str, layers)), "--density", str(density),
            "--bits", str(bits), "--seed", str(seed), "--name", name]
    if softmax:
        args.append("--softmax")
    subprocess.run(args, check=True)
    return path


def reference(model_path, rows, tmpdir, dense=False):
    """The engine's outputs for rows (list of float lists), computed in-process by eie-ref."""
    import struct
    inp = os.path.join(tmpdir, "ref-in.f32")
    out = os.path.join(tmpdir, "ref-out.f32")
    with open(inp, "wb") as f:
        for r in rows:
            f.write(struct.pack("<%df" % len(r), *r))
    subprocess.run([REF, model_path, inp, out] + (["--dense"] if dense else []), check=True)
    with open(out, "rb") as f:
        data = f.read()
    n = len(data) // 4
    flat = struct.unpack("<%df" % n, data)
    per = n // len(rows)
    return [list(flat[i * per:(i + 1) * per]) for i in range(len(rows))]


def metrics(port):
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            values[key] = float(value)
    return values


def send_together(daemon, n, call):
    """n clients, each on a channel of its own to daemon, released at once by a
    barrier: call(channel, i) for i < n; returns their results in order."""
    got = [None] * n
    barrier = threading.Barrier(n)

    def client(i):
        with daemon.channel() as ch:
            grpc.channel_ready_future(ch).result(timeout=10)
            barrier.wait()
            got[i] = call(ch, i)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


def unary(channel, method, request, response_cls, timeout=5.0, metadata=None):
    call = channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=response_cls.FromString)
    return call(request, timeout=timeout, metadata=metadata)


def raw_unary(channel, method, payload, timeout=5.0):
    """Sends raw bytes as the request message; returns raw reply bytes."""
    call = channel.unary_unary(method, request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    return call(payload, timeout=timeout)


def eiectl(*args, timeout=30):
    return subprocess.run([EIECTL, *args], capture_output=True, text=True, timeout=timeout)


def main():
    sys.exit(0 if unittest.main(exit=False, verbosity=2).result.wasSuccessful() else 1)
