"""End-to-end: eiectl over TLS and mutual TLS against a TLS eied.

Certificates come from a test CA made here with openssl. Every remote
command builds its channel in client/channel.c, so health, models,
metadata, infer, bench and load are run through it: server verification
against --ca, --server-name, client certificates (mTLS and admin by
certificate identity), the EIECTL_* environment, the refusal to send a
token in plaintext to a non-loopback address, and a clear error naming the
file for each bad PEM file, before any connection is made.
"""
import os
import subprocess
import tempfile
import time
import unittest

import harness
from harness import Daemon, synth_model

TMP = tempfile.TemporaryDirectory(prefix="eie-eiectl-tls-")
MODEL = synth_model(os.path.join(TMP.name, "m.eie"), [32, 16, 4], density=0.5, name="m")


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=TMP.name)


def path(name):
    return os.path.join(TMP.name, name)


def make_ca(name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
            "-subj", "/CN=" + name)
    return path(name + ".pem")


def make_cert(name, ca, san=None):
    """A certificate signed by ca: a server one when san is given, else a client one."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
    with open(path(name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\n" % san if san else "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext")
    return path(name + ".pem"), path(name + ".key")


CA = make_ca("ca")
OTHER_CA = make_ca("other-ca")
SERVER = make_cert("server", "ca", san="IP:127.0.0.1,DNS:localhost")
# valid only for a name that is not the address eiectl dials: needs --server-name
NAMED = make_cert("named-server", "ca", san="DNS:eied.example")
ADMIN = make_cert("admin-client", "ca")
USER = make_cert("plain-client", "ca")
ROGUE = make_cert("rogue-client", "other-ca")
TOKEN = path("token")
with open(TOKEN, "w") as f:
    f.write("tok-tls-42\n")


def tls_config(cert=SERVER, extra="", admin=""):
    return "[tls]\ncert = %s\nkey = %s\n%s%s[models]\nm = %s\n" % (
        cert[0], cert[1], extra, admin, MODEL)


def run(*args, env=None, timeout=60):
    """eiectl with an environment free of the caller's EIECTL_* settings, plus env."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("EIECTL_")}
    full.update(env or {})
    return subprocess.run([harness.EIECTL, *args], capture_output=True, text=True,
                          timeout=timeout, env=full, stdin=subprocess.DEVNULL)


def wait_ready(addr, *tls, env=None, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = run("health", "--addr", addr, "--service", "readiness", "--timeout", "2", *tls,
                env=env)
        if r.returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError("not ready over TLS: " + r.stdout + r.stderr)


class EiectlTls(unittest.TestCase):
    def ok(self, r):
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def refused(self, r, *needles, rc=1):
        self.assertEqual(r.returncode, rc, r.stdout + r.stderr)
        for n in needles:
            self.assertIn(n, r.stderr)
        return r.stderr

    def test_every_remote_command_verifies_the_server_against_the_ca(self):
        with Daemon(tls_config()) as d:
            tls = ("--ca", CA)
            wait_ready(d.addr, *tls)
            self.assertEqual(self.ok(run("health", "--addr", d.addr, *tls)).strip(), "SERVING")
            self.assertIn("READY", self.ok(run("models", "--addr", d.addr, *tls)))
            self.assertIn('"name":"m"', self.ok(run("metadata", "--model", "m", "--json",
                                                    "--addr", d.addr, *tls)))
            out = self.ok(run("infer", "--model", "m", "--input", str([[0.25] * 32]),
                              "--addr", d.addr, *tls))
            self.assertEqual(len(out.split()), 4)
            # bench opens one TLS channel per connection besides the first
            out = self.ok(run("bench", "--model", "m", "-n", "20", "-c", "2",
                              "--connections", "2", "--addr", d.addr, *tls))
            self.assertIn("OK", out)
            # --tls alone verifies against the default roots, which do not hold the test CA
            self.refused(run("health", "--addr", d.addr, "--tls", "--timeout", "3"),
                         "UNAVAILABLE")
            # a CA that did not sign the server's certificate
            self.refused(run("health", "--addr", d.addr, "--ca", OTHER_CA, "--timeout", "3"),
                         "UNAVAILABLE")
            # plaintext to the TLS port
            self.refused(run("health", "--addr", d.addr, "--timeout", "3"), "UNAVAILABLE")
            # the name checked is the one asked for: localhost is in the certificate
            self.ok(run("health", "--addr", d.addr, "--server-name", "localhost", *tls))
            if not harness.SANITIZED:  # c-ares leaks 10 bytes per lookup under LeakSanitizer
                port = d.addr.rsplit(":", 1)[1]
                self.ok(run("health", "--addr", "localhost:" + port, *tls))

    def test_tls_to_a_plaintext_port_fails(self):
        with Daemon("[models]\nm = %s\n" % MODEL) as d:
            self.refused(run("health", "--addr", d.addr, "--ca", CA, "--timeout", "3"),
                         "UNAVAILABLE")
            self.ok(run("health", "--addr", d.addr))

    def test_server_name_checks_a_certificate_issued_for_another_name(self):
        with Daemon(tls_config(cert=NAMED)) as d:
            r = run("health", "--addr", d.addr, "--ca", CA, "--timeout", "3")
            self.refused(r, "UNAVAILABLE")
            wait_ready(d.addr, "--ca", CA, "--server-name", "eied.example")
            self.ok(run("models", "--addr", d.addr, "--ca", CA, "--server-name", "eied.example"))
            self.refused(run("health", "--addr", d.addr, "--ca", CA, "--server-name",
                             "other.example", "--timeout", "3"), "UNAVAILABLE")
            env = {"EIECTL_ADDR": d.addr, "EIECTL_CA": CA, "EIECTL_SERVER_NAME": "eied.example"}
            self.assertEqual(self.ok(run("health", env=env)).strip(), "SERVING")

    def test_environment_gives_the_defaults_and_options_override_it(self):
        with Daemon(tls_config()) as d:
            env = {"EIECTL_ADDR": d.addr, "EIECTL_CA": CA}
            wait_ready(d.addr, env=env)
            self.assertIn("READY", self.ok(run("models", env=env)))
            self.ok(run("health", env={"EIECTL_ADDR": d.addr, "EIECTL_TLS": "1",
                                       "EIECTL_CA": CA}))
            # EIECTL_TLS alone: TLS against the default roots, so the test CA is unknown
            self.refused(run("health", "--timeout", "3",
                             env={"EIECTL_ADDR": d.addr, "EIECTL_TLS": "true"}), "UNAVAILABLE")
            # --no-tls reaches the plaintext health port though the environment says TLS
            self.assertIsNotNone(d.health_port)
            health = "127.0.0.1:%d" % d.health_port
            self.ok(run("health", "--no-tls", "--addr", health, env=env))
            self.refused(run("health", "--addr", health, "--timeout", "3", env=env),
                         "UNAVAILABLE")
            # --addr wins over EIECTL_ADDR
            self.ok(run("health", "--addr", d.addr, env={"EIECTL_ADDR": "127.0.0.1:1",
                                                         "EIECTL_CA": CA}))
            self.refused(run("health", env={"EIECTL_ADDR": d.addr, "EIECTL_TLS": "maybe"}),
                         "EIECTL_TLS 'maybe'")

    def test_mutual_tls_client_certificates_and_admin_by_identity(self):
        extra = "client_ca = %s\nrequire_client_cert = true\n" % CA
        admin = "[admin]\nallowed_identities = admin-client\n"
        with Daemon(tls_config(extra=extra, admin=admin)) as d:
            tls = ("--addr", d.addr, "--ca", CA)
            self.refused(run("health", *tls, "--timeout", "3"), "UNAVAILABLE")
            self.refused(run("health", *tls, "--cert", ROGUE[0], "--key", ROGUE[1],
                             "--timeout", "3"), "UNAVAILABLE")
            user = ("--cert", USER[0], "--key", USER[1])
            wait_ready(d.addr, "--ca", CA, *user)
            self.assertEqual(self.ok(run("health", *tls, *user)).strip(), "SERVING")
            self.refused(run("unload", "m", *tls, *user), "PERMISSION_DENIED")
            self.assertEqual(self.ok(run("unload", "m", *tls, "--cert", ADMIN[0],
                                         "--key", ADMIN[1])).strip(), "unloaded: m")
            env = {"EIECTL_ADDR": d.addr, "EIECTL_CA": CA, "EIECTL_CERT": ADMIN[0],
                   "EIECTL_KEY": ADMIN[1]}
            self.assertEqual(self.ok(run("load", "m", env=env)).strip(), "loaded: m")

    def test_admin_token_travels_over_tls(self):
        admin = "[admin]\ntoken_file = %s\n" % TOKEN
        with Daemon(tls_config(admin=admin)) as d:
            tls = ("--addr", d.addr, "--ca", CA)
            wait_ready(d.addr, "--ca", CA)
            self.refused(run("load", "m", *tls), "UNAUTHENTICATED")
            self.assertEqual(self.ok(run("load", "m", *tls, "--token-file", TOKEN)).strip(),
                             "loaded: m")
            self.assertNotIn("tok-tls-42", d.log())

    def test_token_is_refused_in_plaintext_to_a_non_loopback_address(self):
        # eied.invalid never resolves (RFC 2606), and the refusal comes before any lookup
        for cmd in (("load", "m"), ("unload", "m"), ("models",)):
            with self.subTest(cmd=cmd[0]):
                err = self.refused(run(*cmd, "--addr", "eied.invalid:8001", "--token-file",
                                       TOKEN, "--timeout", "2"),
                                   "refusing to send the token from " + TOKEN,
                                   "eied.invalid:8001", "--insecure-token", "--tls")
                self.assertNotIn("tok-tls-42", err)
        # loopback by address, as a gRPC target, or by name is fine in plaintext
        with Daemon("[admin]\ntoken_file = %s\n[models]\nm = %s\n" % (TOKEN, MODEL)) as d:
            port = d.addr.rsplit(":", 1)[1]
            addrs = [d.addr, "ipv4:" + d.addr]
            if not harness.SANITIZED:  # c-ares leaks 10 bytes per lookup under LeakSanitizer
                addrs.append("localhost:" + port)
            for addr in addrs:
                with self.subTest(addr=addr):
                    self.assertEqual(self.ok(run("load", "m", "--addr", addr, "--token-file",
                                                 TOKEN)).strip(), "loaded: m")

    def test_bad_files_and_settings_are_named_before_any_connection(self):
        notpem = path("not.pem")
        with open(notpem, "w") as f:
            f.write("hello\n")
        big = path("big.pem")
        with open(big, "wb") as f:
            f.truncate((1 << 20) + 1)
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-aes256", "-pass", "pass:secret", "-out", "encrypted.key")
        cases = [
            (("--ca", "/nonexistent/ca.pem"), {}, ["--ca /nonexistent/ca.pem", "cannot open"]),
            (("--ca", notpem), {}, ["--ca " + notpem, "no PEM certificate"]),
            (("--ca", big), {}, [big, "larger than the 1048576 bytes"]),
            ((), {"EIECTL_CA": notpem}, ["EIECTL_CA " + notpem]),
            (("--cert", USER[0]), {}, ["--cert is set but --key"]),
            ((), {"EIECTL_KEY": USER[1]}, ["EIECTL_KEY is set but --cert"]),
            (("--cert", notpem, "--key", USER[1]), {}, ["--cert " + notpem,
                                                        "no PEM certificate"]),
            (("--cert", USER[0], "--key", notpem), {}, ["--key " + notpem, "private key"]),
            (("--cert", USER[0], "--key", ADMIN[1]), {},
             ["--key " + ADMIN[1], "does not match", USER[0]]),
            (("--cert", USER[0], "--key", path("encrypted.key")), {},
             [path("encrypted.key"), "passphrase"]),
            (("--server-name", "bad name!"), {}, ["--server-name 'bad name!'"]),
            (("--tls", "--no-tls"), {}, ["--tls and --no-tls"]),
            (("--no-tls", "--ca", CA), {}, ["--ca needs TLS"]),
        ]
        for args, env, needles in cases:
            with self.subTest(args=args, env=env):
                # 127.0.0.1:1 has no server: these fail before dialing, so never UNAVAILABLE
                r = run("health", "--addr", "127.0.0.1:1", "--timeout", "2", *args, env=env)
                err = self.refused(r, *needles)
                self.assertNotIn("UNAVAILABLE", err)
        self.refused(run("health", "--ca", ""), "--ca is empty", rc=2)
        self.refused(run("models", env={"EIECTL_ADDR": ""}), "EIECTL_ADDR is empty")


if __name__ == "__main__":
    harness.main()
