"""End-to-end: the command lines of eied and eiectl as a user types them."""
import os
import subprocess
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


if __name__ == "__main__":
    harness.main()
