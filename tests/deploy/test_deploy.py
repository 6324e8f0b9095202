"""Checks the deployment files against the daemon they deploy.

No container engine or cluster runs here, so these tests check what can be
checked statically: every YAML file parses; every port, probe service name
and path in the manifests, the Dockerfile and the systemd unit matches the
defaults in conf/eied.conf (and the service names daemon/health.c answers);
kustomizations reference files that exist (and render, when kubectl is
installed); the grace periods cover drain_delay + exit_timeout; the
securityContext is locked down; the Dockerfile installs dependencies with
the script CI runs; the systemd unit passes `systemd-analyze verify`.

Run: /usr/bin/python3 tests/deploy/test_deploy.py (meson test --suite deploy).
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

SOURCE = os.path.abspath(os.environ.get(
    "EIE_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("EIE_BUILD_ROOT", os.path.join(SOURCE, "build"))
EIED = os.path.join(BUILD, "daemon", "eied")
EIECTL = os.path.join(BUILD, "client", "eiectl")

CONF = os.path.join(SOURCE, "conf", "eied.conf")
DOCKERFILE = os.path.join(SOURCE, "deploy", "docker", "Dockerfile")
K8S = os.path.join(SOURCE, "deploy", "k8s")
K8S_BASE = os.path.join(K8S, "base")
K8S_TLS = os.path.join(K8S, "overlays", "tls")
UNIT = os.path.join(SOURCE, "deploy", "systemd", "eied.service")
CI_RUN = os.path.join(SOURCE, ".ci", "run")
INSTALL_DEPS = "deploy/install-deps.sh"

# Shared libraries of the runtime image (Debian 12 names).
RUNTIME_PACKAGES = {"libgrpc29", "libprotobuf-c1", "libuv1", "libssl3", "zlib1g"}


# ---------------------------------------------------------------- helpers

def parse_conf(path):
    """eied.conf as {(section, key): value}, by the rules its header states:
    INI sections, `key = value`, '#' or ';' comments (also after a value,
    preceded by a space), "..." keeps spaces."""
    out = {}
    section = None
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            m = re.fullmatch(r"\[([A-Za-z0-9_]+)\]", line)
            if m:
                section = m.group(1)
                continue
            key, eq, value = line.partition("=")
            if not eq or section is None:
                raise ValueError(f"{path}:{n}: not 'key = value' in a section: {line}")
            value = value.strip()
            if value.startswith('"'):
                end = value.index('"', 1)
                value = value[1:end]
            else:
                value = re.split(r"\s[#;]", value, maxsplit=1)[0].strip()
            out[(section, key.strip())] = value
    return out


def seconds(duration):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", duration)
    if not m:
        raise ValueError(f"not a duration: {duration!r}")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def size_bytes(size):
    m = re.fullmatch(r"(\d+)(KiB|MiB|GiB)?", size)
    if not m:
        raise ValueError(f"not a size: {size!r}")
    return int(m.group(1)) * {None: 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m.group(2)]


def k8s_quantity_bytes(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|k|M|G)?", str(q))
    if not m:
        raise ValueError(f"not a memory quantity: {q!r}")
    mult = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
            "k": 10**3, "M": 10**6, "G": 10**9}[m.group(2)]
    return int(m.group(1)) * mult


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def env_key(name):
    """EIED_<SECTION>_<KEY> -> (section, key), as daemon/config.c splits it."""
    rest = name[len("EIED_"):]
    section, _, key = rest.partition("_")
    return section.lower(), key.lower()


DEFAULTS = parse_conf(CONF)
KNOWN_KEYS = set(DEFAULTS)


def default(section, key):
    return DEFAULTS[(section, key)]


def clean_env():
    """This environment minus EIED_* overrides (sanitizer options stay)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("EIED_")}


def default_ports():
    return {
        "grpc": port_of(default("server", "listen")),
        "metrics": port_of(default("server", "metrics_listen")),
        "health": port_of(default("server", "health_listen")),
    }


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def kubectl_kustomize(path):
    """Rendered manifests, or None when no kubectl or kustomize is installed."""
    for cmd in (["kubectl", "kustomize"], ["kustomize", "build"]):
        if shutil.which(cmd[0]):
            r = subprocess.run(cmd + [path], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise AssertionError(f"{' '.join(cmd)} {path} failed:\n{r.stderr}")
            return [d for d in yaml.safe_load_all(r.stdout) if d is not None]
    return None


def kustomization(path):
    return load_yaml_docs(os.path.join(path, "kustomization.yaml"))[0]


def render_base():
    """The base's objects: rendered by kustomize when installed, otherwise the
    listed resources plus the generated ConfigMap, assembled here."""
    docs = kubectl_kustomize(K8S_BASE)
    if docs is not None:
        return docs, True
    kz = kustomization(K8S_BASE)
    docs = []
    for r in kz.get("resources", []):
        docs += load_yaml_docs(os.path.join(K8S_BASE, r))
    for gen in kz.get("configMapGenerator", []):
        data = {}
        for spec in gen.get("files", []):
            key, _, rel = spec.rpartition("=")
            with open(os.path.join(K8S_BASE, rel)) as f:
                data[key or os.path.basename(rel)] = f.read()
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": gen["name"]}, "data": data})
    # the image name as kustomize would set it
    for img in kz.get("images", []):
        for d in docs:
            for c in pod_containers(d):
                if c.get("image") == img["name"]:
                    c["image"] = f"{img.get('newName', img['name'])}:{img.get('newTag', 'latest')}"
    print("note: kubectl/kustomize not installed; base assembled without kustomize")
    return docs, False


def pod_containers(doc):
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("initContainers", []) + spec.get("containers", [])


def one(docs, kind):
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def main_container(deploy):
    cs = [c for c in deploy["spec"]["template"]["spec"]["containers"] if c["name"] == "eied"]
    assert len(cs) == 1, "the Deployment needs one container named eied"
    return cs[0]


def effective_k8s_config(docs, deploy):
    """conf/eied.conf defaults overlaid with the ConfigMap's eied.conf and the
    container's literal EIED_* environment (precedence of the daemon)."""
    cm_name = config_volume(deploy)["configMap"]["name"]
    cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == cm_name]
    assert len(cms) == 1, f"ConfigMap {cm_name} missing"
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write(cms[0]["data"]["eied.conf"])
    try:
        cfg = dict(DEFAULTS)
        cfg.update(parse_conf(f.name))
    finally:
        os.unlink(f.name)
    for e in main_container(deploy).get("env", []):
        if e["name"].startswith("EIED_") and "value" in e:
            cfg[env_key(e["name"])] = e["value"]
    return cfg, cms[0]["data"]["eied.conf"]


def config_volume(deploy):
    c = main_container(deploy)
    entry_conf = dockerfile_config_path()
    mounts = [m for m in c["volumeMounts"] if m["mountPath"] == os.path.dirname(entry_conf)]
    assert len(mounts) == 1, \
        f"no volume mounted at {os.path.dirname(entry_conf)}, where the image reads {entry_conf}"
    vols = [v for v in deploy["spec"]["template"]["spec"]["volumes"]
            if v["name"] == mounts[0]["name"]]
    assert len(vols) == 1 and "configMap" in vols[0], "the config mount must be a ConfigMap"
    return vols[0]


# ---------------------------------------------------------------- Dockerfile

def parse_dockerfile(path):
    """[(stage name, base image, [(INSTRUCTION, args)])], continuation lines
    joined and comments dropped."""
    with open(path) as f:
        text = f.read()
    logical, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        logical.append(cur + s)
        cur = ""
    stages = []
    for line in logical:
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append((name, parts[0], []))
        else:
            assert stages, f"{path}: {instr} before FROM"
            stages[-1][2].append((instr, args.strip()))
    return stages


def instr_args(stage, instr):
    return [a for i, a in stage[2] if i == instr]


def json_or_shell(args):
    import json
    args = args.strip()
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def dockerfile_config_path():
    final = parse_dockerfile(DOCKERFILE)[-1]
    (entry,) = instr_args(final, "ENTRYPOINT")
    argv = json_or_shell(entry)
    assert "--config" in argv, "ENTRYPOINT must name a config file (--config)"
    return argv[argv.index("--config") + 1]


def dockerfile_uid():
    final = parse_dockerfile(DOCKERFILE)[-1]
    users = instr_args(final, "USER")
    assert users, "the runtime stage needs a USER"
    user = users[-1].split(":")[0]
    assert user.isdigit(), f"USER {user}: use a numeric UID so runAsNonRoot can verify it"
    return int(user)


class Dockerfile(unittest.TestCase):
    def setUp(self):
        self.stages = parse_dockerfile(DOCKERFILE)
        self.build, self.final = self.stages[0], self.stages[-1]

    def test_multi_stage_on_bookworm_slim(self):
        self.assertGreaterEqual(len(self.stages), 2)
        for name, base, _ in self.stages:
            self.assertEqual(base, "debian:bookworm-slim", f"stage {name}")

    def test_build_stage_runs_the_install_script_ci_runs(self):
        with open(CI_RUN) as f:
            ci = [l for l in f.read().splitlines() if not l.lstrip().startswith("#")]
        self.assertTrue(any(re.search(r"(^|[\s/.])" + re.escape(INSTALL_DEPS) + r"\b", l)
                            for l in ci), f".ci/run does not call {INSTALL_DEPS}")
        self.assertTrue(os.access(os.path.join(SOURCE, INSTALL_DEPS), os.X_OK))
        runs = instr_args(self.build, "RUN")
        self.assertTrue(any(INSTALL_DEPS in r for r in runs),
                        f"the build stage must RUN {INSTALL_DEPS}")
        # and it runs before the meson build
        i_deps = next(i for i, r in enumerate(runs) if INSTALL_DEPS in r)
        i_meson = next(i for i, r in enumerate(runs) if "meson setup" in r)
        self.assertLess(i_deps, i_meson)
        self.assertIn("--buildtype=release", runs[i_meson])
        self.assertIn("ninja -C build", runs[i_meson])

    def test_runtime_installs_only_runtime_libraries(self):
        runs = " ".join(instr_args(self.final, "RUN"))
        m = re.search(r"apt-get install ((?:-\S+\s+)*)(.*?)(?:&&|$)", runs)
        self.assertIsNotNone(m, "the runtime stage installs its libraries with apt-get")
        pkgs = {p for p in m.group(2).split() if not p.startswith("-")}
        self.assertEqual(pkgs, RUNTIME_PACKAGES)
        self.assertIn("--no-install-recommends", runs)
        self.assertNotIn("openblas", runs)
        self.assertNotRegex(runs, r"-dev\b")

    def test_runtime_user_is_not_root(self):
        uid = dockerfile_uid()
        self.assertGreater(uid, 0)
        runs = " ".join(instr_args(self.final, "RUN"))
        self.assertRegex(runs, rf"useradd\b.*--uid {uid}\b",
                         "the UID needs a passwd entry in the image")

    def test_exposes_the_conf_ports(self):
        exposed = set()
        for a in instr_args(self.final, "EXPOSE"):
            exposed |= {int(p.split("/")[0]) for p in a.split()}
        self.assertEqual(exposed, set(default_ports().values()))

    def test_healthcheck_asks_liveness_on_the_health_port(self):
        (hc,) = instr_args(self.final, "HEALTHCHECK")
        argv = json_or_shell(hc.split("CMD", 1)[1])
        self.assertTrue(argv[0].endswith("eiectl"))
        self.assertEqual(argv[1], "health")
        self.assertEqual(argv[argv.index("--addr") + 1],
                         f"127.0.0.1:{default_ports()['health']}")
        self.assertEqual(argv[argv.index("--service") + 1], "liveness")

    def test_stop_signal_and_entrypoint(self):
        self.assertEqual(instr_args(self.final, "STOPSIGNAL"), ["SIGTERM"])
        (entry,) = instr_args(self.final, "ENTRYPOINT")
        self.assertTrue(json_or_shell(entry)[0].endswith("/eied"))
        self.assertTrue(entry.strip().startswith("["),
                        "exec form, so eied is PID 1 and receives SIGTERM itself")

    def test_runtime_copies_binaries_config_and_models(self):
        copies = " ".join(instr_args(self.final, "COPY"))
        for what in ("eied", "eiectl", dockerfile_config_path(), "/opt/eie/models"):
            self.assertIn(what, copies)
        # build-stage COPY sources exist in the repository
        for a in instr_args(self.build, "COPY"):
            for src in a.split()[:-1]:
                if not src.startswith("--"):
                    self.assertTrue(os.path.exists(os.path.join(SOURCE, src)), src)

    def test_image_config_points_the_repository_at_the_bundled_models(self):
        """The sed that writes the image's eied.conf must still hit exactly
        one line of conf/eied.conf, in [repository]."""
        runs = " ".join(instr_args(self.build, "RUN"))
        m = re.search(r"sed -i '(s\|(.*?)\|(.*?)\|)'", runs)
        self.assertIsNotNone(m, "expected sed -i 's|^path =$|...|'")
        with open(CONF) as f:
            text = f.read()
        new, n = re.subn(m.group(2), m.group(3), text, flags=re.M)
        self.assertEqual(n, 1, f"{m.group(1)} matches {n} lines of conf/eied.conf")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "eied.conf")
            with open(path, "w") as f:
                f.write(new)
            self.assertEqual(parse_conf(path)[("repository", "path")], "/opt/eie/models")
            if os.access(EIED, os.X_OK):
                r = subprocess.run([EIED, "--check-config", "--config", path],
                                   capture_output=True, text=True, timeout=30,
                                   env=clean_env())
                self.assertEqual(r.returncode, 0, r.stderr)

    def test_dockerignore_keeps_builds_out_of_the_context(self):
        with open(os.path.join(SOURCE, ".dockerignore")) as f:
            lines = f.read().split()
        self.assertIn(".git", lines)
        self.assertTrue(any(l.startswith("build") for l in lines))

    def test_runtime_packages_cover_what_the_binaries_link(self):
        """Every shared library eied and eiectl load comes from a runtime
        package or something it depends on (checked on this Debian host)."""
        if not (os.access(EIED, os.X_OK) and shutil.which("ldd") and shutil.which("dpkg-query")):
            self.skipTest("needs the built binaries, ldd and dpkg")
        closure, todo = set(), list(RUNTIME_PACKAGES | {"libc6", "libgcc-s1", "libstdc++6"})
        while todo:
            p = todo.pop()
            if p in closure:
                continue
            closure.add(p)
            r = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", p],
                               capture_output=True, text=True)
            if r.returncode != 0:
                self.skipTest(f"{p} is not installed here; cannot follow its dependencies")
            for alt in r.stdout.split(","):
                names = [a.strip().split()[0].split(":")[0] for a in alt.split("|") if a.strip()]
                todo += names[:1]
        libs = set()
        for binary in (EIED, EIECTL):
            out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
            libs |= {(os.path.basename(binary), lib) for lib in re.findall(r"=>\s+(/\S+)", out)
                     if not re.search(r"lib(asan|ubsan|lsan)", lib)}  # sanitizer builds
        # one dpkg-query for every spelling of every path (merged /usr)
        spellings = {}
        for _, lib in libs:
            names = {lib, os.path.realpath(lib)}
            names |= {n[4:] if n.startswith("/usr/") else "/usr" + n for n in list(names)}
            spellings[lib] = names
        r = subprocess.run(["dpkg-query", "-S"] + sorted(set().union(*spellings.values())),
                           capture_output=True, text=True)
        owner_of = {}
        for line in r.stdout.splitlines():
            pkgs, _, path = line.partition(": ")
            owner_of.setdefault(path.strip(), set()).update(
                p.strip().split(":")[0] for p in pkgs.split(","))
        for binary, lib in sorted(libs):
            owners = set().union(*(owner_of.get(n, set()) for n in spellings[lib]))
            self.assertTrue(owners, f"{lib}: no package owns it")
            self.assertTrue(owners & closure,
                            f"{binary} links {lib} from {owners}, "
                            "which the runtime stage does not install")


# ---------------------------------------------------------------- Kubernetes

class KubernetesFiles(unittest.TestCase):
    def test_every_yaml_file_parses(self):
        files = glob.glob(os.path.join(K8S, "**", "*.yaml"), recursive=True) + \
            glob.glob(os.path.join(K8S, "**", "*.yml"), recursive=True)
        self.assertGreater(len(files), 5)
        for path in files:
            with self.subTest(path=os.path.relpath(path, SOURCE)):
                docs = load_yaml_docs(path)
                self.assertTrue(docs)
                for d in docs:
                    self.assertIn("apiVersion", d)
                    self.assertIn("kind", d)

    def test_kustomizations_reference_existing_files(self):
        for path in glob.glob(os.path.join(K8S, "**", "kustomization.yaml"), recursive=True):
            d = os.path.dirname(path)
            kz = kustomization(d)
            refs = list(kz.get("resources", []))
            refs += [p["path"] for p in kz.get("patches", []) if "path" in p]
            refs += kz.get("patchesStrategicMerge", [])
            for gen in kz.get("configMapGenerator", []) + kz.get("secretGenerator", []):
                refs += [f.rpartition("=")[2] for f in gen.get("files", [])]
            self.assertTrue(refs)
            for ref in refs:
                with self.subTest(kustomization=os.path.relpath(path, SOURCE), ref=ref):
                    full = os.path.join(d, ref)
                    self.assertTrue(os.path.exists(full), f"{ref} does not exist")
                    if os.path.isdir(full):
                        self.assertTrue(os.path.exists(os.path.join(full, "kustomization.yaml")))

    def test_shipped_config_uses_known_keys_and_passes_check_config(self):
        path = os.path.join(K8S_BASE, "eied.conf")
        for key in parse_conf(path):
            self.assertIn(key, KNOWN_KEYS, f"{key[0]}.{key[1]} is not a key of eied.conf")
        if not os.access(EIED, os.X_OK):
            self.skipTest(f"{EIED} not built")
        env = clean_env()
        deploy = one(render_base()[0], "Deployment")
        for e in main_container(deploy).get("env", []):
            env[e["name"]] = e.get("value", "2")  # resourceFieldRef: the CPU limit
        r = subprocess.run([EIED, "--check-config", "--config", path],
                           capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)


class KubernetesBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs, cls.rendered = render_base()
        cls.deploy = one(cls.docs, "Deployment")
        cls.pod = cls.deploy["spec"]["template"]["spec"]
        cls.eied = main_container(cls.deploy)
        cls.cfg, cls.conf_text = effective_k8s_config(cls.docs, cls.deploy)
        cls.ports = {
            "grpc": port_of(cls.cfg[("server", "listen")]),
            "metrics": port_of(cls.cfg[("server", "metrics_listen")]),
            "health": port_of(cls.cfg[("server", "health_listen")]),
        }

    def test_deployed_ports_are_the_conf_defaults(self):
        self.assertEqual(self.ports, default_ports())

    def test_container_ports_match_the_config(self):
        named = {p["name"]: p["containerPort"] for p in self.eied["ports"]}
        self.assertEqual(named, self.ports)

    def test_probes_use_the_health_port_and_its_services(self):
        with open(os.path.join(SOURCE, "daemon", "health.c")) as f:
            health_c = f.read()
        want = {"livenessProbe": "liveness", "readinessProbe": "readiness",
                "startupProbe": None}
        for probe, service in want.items():
            with self.subTest(probe=probe):
                p = self.eied[probe]
                self.assertIn("grpc", p, "gRPC probe (grpc.health.v1)")
                self.assertEqual(p["grpc"]["port"], self.ports["health"])
                name = p["grpc"].get("service", "")
                if service is not None:
                    self.assertEqual(name, service)
                self.assertIn(f'"{name}"', health_c,
                              f"daemon/health.c does not answer service {name!r}")

    def test_grace_period_covers_prestop_drain_and_exit_timeout(self):
        pre = self.eied["lifecycle"]["preStop"]
        if "sleep" in pre:
            sleep = int(pre["sleep"]["seconds"])
        else:
            argv = pre["exec"]["command"]
            self.assertTrue(argv[0].endswith("sleep"), argv)
            sleep = int(argv[1])
        drain = seconds(self.cfg[("server", "drain_delay")])
        exit_timeout = seconds(self.cfg[("server", "exit_timeout")])
        grace = self.pod["terminationGracePeriodSeconds"]
        self.assertGreater(sleep, 0)
        self.assertLessEqual(sleep, drain,
                             "preStop longer than drain_delay only delays the drain")
        self.assertGreaterEqual(grace, sleep + drain + exit_timeout)
        self.assertGreaterEqual(grace, drain + exit_timeout)
        # the arithmetic in the comment is the arithmetic in force
        with open(os.path.join(K8S_BASE, "deployment.yaml")) as f:
            m = re.search(r"terminationGracePeriodSeconds = (\d+) \+ (\d+) \+ (\d+) \+ (\d+) = (\d+)",
                          f.read())
        self.assertIsNotNone(m, "deployment.yaml should explain the grace period")
        a, b, c, margin, total = map(int, m.groups())
        self.assertEqual((a, b, c, a + b + c + margin, total),
                         (sleep, int(drain), int(exit_timeout), total, grace))

    def test_security_context(self):
        psc = self.pod.get("securityContext", {})
        uid = dockerfile_uid()
        for c in self.pod.get("initContainers", []) + self.pod["containers"]:
            with self.subTest(container=c["name"]):
                sc = c.get("securityContext", {})
                self.assertIs(sc.get("allowPrivilegeEscalation"), False)
                self.assertIs(sc.get("readOnlyRootFilesystem"), True)
                self.assertIs(sc.get("runAsNonRoot", psc.get("runAsNonRoot")), True)
                self.assertIn("ALL", sc.get("capabilities", {}).get("drop", []))
                self.assertNotIn("add", sc.get("capabilities", {}))
                seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
                self.assertEqual(seccomp.get("type"), "RuntimeDefault")
                self.assertIsNot(sc.get("privileged"), True)
                run_as = sc.get("runAsUser", psc.get("runAsUser"))
                self.assertEqual(run_as, uid, "runAsUser should be the image's USER")
        self.assertIs(self.pod.get("automountServiceAccountToken"), False)

    def test_service_links_are_off(self):
        """A Service named eied injects EIED_SERVICE_HOST etc., which eied
        parses as config overrides and rejects."""
        self.assertIs(self.pod.get("enableServiceLinks"), False)

    def test_env_overrides_name_real_keys(self):
        for e in self.eied.get("env", []):
            if e["name"].startswith("EIED_"):
                self.assertIn(env_key(e["name"]), KNOWN_KEYS, e["name"])

    def test_resources_and_memory_budget(self):
        res = self.eied["resources"]
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                self.assertIn(r, res.get(kind, {}), f"{kind}.{r}")
        limit = k8s_quantity_bytes(res["limits"]["memory"])
        budget = size_bytes(self.cfg[("repository", "memory_budget")])
        self.assertGreater(budget, 0, "set repository.memory_budget below the memory limit")
        self.assertLess(budget, limit)
        for c in self.pod.get("initContainers", []):
            self.assertIn("limits", c.get("resources", {}), c["name"])

    def test_config_and_model_volumes(self):
        vol = config_volume(self.deploy)
        self.assertTrue(vol["configMap"]["name"].startswith("eied-config"))
        mounts = {m["mountPath"]: m for m in self.eied["volumeMounts"]}
        models = self.cfg[("repository", "path")]
        self.assertIn(models, mounts, "the repository path must be a mounted volume")
        self.assertIs(mounts[models].get("readOnly"), True)
        for m in mounts.values():
            self.assertIs(m.get("readOnly"), True, f"{m['mountPath']}: eied writes nothing")
        names = {v["name"] for v in self.pod["volumes"]}
        self.assertIn(mounts[models]["name"], names)

    def test_prometheus_annotations(self):
        ann = self.deploy["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(ann["prometheus.io/scrape"], "true")
        self.assertEqual(ann["prometheus.io/port"], str(self.ports["metrics"]))
        self.assertEqual(ann["prometheus.io/path"], "/metrics")
        with open(os.path.join(SOURCE, "daemon", "metrics.c")) as f:
            self.assertIn("GET /metrics", f.read())

    def test_service_named_ports(self):
        svc = one(self.docs, "Service")
        labels = self.deploy["spec"]["template"]["metadata"]["labels"]
        for k, v in svc["spec"]["selector"].items():
            self.assertEqual(labels.get(k), v)
        container_ports = {p["name"]: p["containerPort"] for p in self.eied["ports"]}
        ports = {p["name"]: p for p in svc["spec"]["ports"]}
        self.assertEqual(set(ports), set(self.ports))
        for name, p in ports.items():
            with self.subTest(port=name):
                self.assertEqual(p["port"], self.ports[name])
                tp = p.get("targetPort", p["port"])
                self.assertEqual(container_ports[tp] if isinstance(tp, str) else tp,
                                 self.ports[name])
        self.assertEqual(ports["grpc"]["appProtocol"], "kubernetes.io/h2c")

    def test_hpa_targets_the_deployment_on_cpu(self):
        hpa = one(self.docs, "HorizontalPodAutoscaler")
        self.assertEqual(hpa["apiVersion"], "autoscaling/v2")
        ref = hpa["spec"]["scaleTargetRef"]
        self.assertEqual((ref["kind"], ref["name"]), ("Deployment", self.deploy["metadata"]["name"]))
        self.assertTrue(any(m["type"] == "Resource" and m["resource"]["name"] == "cpu"
                            for m in hpa["spec"]["metrics"]))
        self.assertLessEqual(1, hpa["spec"]["minReplicas"])
        self.assertLessEqual(hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
        self.assertNotIn("replicas", self.deploy["spec"],
                         "spec.replicas would reset the autoscaler on every apply")
        # HPA on CPU utilization needs CPU requests
        self.assertIn("cpu", self.eied["resources"]["requests"])

    def test_pdb_selects_the_pods(self):
        pdb = one(self.docs, "PodDisruptionBudget")
        self.assertEqual(pdb["apiVersion"], "policy/v1")
        labels = self.deploy["spec"]["template"]["metadata"]["labels"]
        for k, v in pdb["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(labels.get(k), v)
        self.assertTrue("minAvailable" in pdb["spec"] or "maxUnavailable" in pdb["spec"])


class KubernetesTlsOverlay(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        docs = kubectl_kustomize(K8S_TLS)
        if docs is None:
            # no kustomize: check the patches themselves
            kz = kustomization(K8S_TLS)
            docs = []
            for p in kz.get("patches", []):
                docs += load_yaml_docs(os.path.join(K8S_TLS, p["path"]))
            print("note: kubectl/kustomize not installed; tls overlay checked patch by patch")
        cls.docs = docs
        cls.deploy = one(docs, "Deployment")
        cls.pod = cls.deploy["spec"]["template"]["spec"]
        cls.eied = main_container(cls.deploy)

    def test_tls_keys_point_into_the_mounted_secret(self):
        env = {e["name"]: e.get("value") for e in self.eied["env"]}
        secret = load_yaml_docs(os.path.join(K8S_TLS, "secret.example.yaml"))[0]
        self.assertEqual(secret["kind"], "Secret")
        vols = {v["name"]: v for v in self.pod["volumes"]}
        mounts = {m["mountPath"]: m for m in self.eied["volumeMounts"]}
        for name in ("EIED_TLS_CERT", "EIED_TLS_KEY", "EIED_TLS_CLIENT_CA"):
            with self.subTest(env=name):
                self.assertIn(env_key(name), KNOWN_KEYS)
                path = env[name]
                mount = mounts[os.path.dirname(path)]
                self.assertIs(mount.get("readOnly"), True)
                vol = vols[mount["name"]]
                self.assertEqual(vol["secret"]["secretName"], secret["metadata"]["name"])
                self.assertIn(os.path.basename(path), secret["stringData"])
        self.assertIn(env["EIED_TLS_REQUIRE_CLIENT_CERT"], ("true", "false"))
        # under the config mount a nested mount would need a directory in a
        # read-only ConfigMap volume
        self.assertNotEqual(os.path.dirname(env["EIED_TLS_CERT"]),
                            os.path.dirname(dockerfile_config_path()))

    def test_eied_accepts_the_overlay_environment(self):
        if not os.access(EIED, os.X_OK):
            self.skipTest(f"{EIED} not built")
        env = clean_env()
        for e in self.eied["env"]:
            if e["name"].startswith("EIED_"):
                env[e["name"]] = e.get("value", "2")  # resourceFieldRef: the CPU limit
        r = subprocess.run([EIED, "--check-config", "--config", os.path.join(K8S_BASE, "eied.conf")],
                           capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"cert = {env['EIED_TLS_CERT']}", r.stdout)

    def test_grpc_port_is_no_longer_h2c(self):
        svc = one(self.docs, "Service")
        grpc = [p for p in svc["spec"]["ports"] if p["name"] == "grpc"]
        self.assertEqual(len(grpc), 1)
        self.assertNotEqual(grpc[0].get("appProtocol"), "kubernetes.io/h2c")

    def test_probes_stay_on_the_plaintext_health_port(self):
        if "livenessProbe" not in self.eied:
            self.skipTest("no kustomize: the overlay does not patch probes")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            self.assertEqual(self.eied[probe]["grpc"]["port"], default_ports()["health"])

    def test_secret_example_is_not_applied(self):
        kz = kustomization(K8S_TLS)
        self.assertNotIn("secret.example.yaml", kz.get("resources", []))


# ---------------------------------------------------------------- systemd

def parse_unit(path):
    out = {}
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, _, v = line.partition("=")
            out.setdefault((section, k.strip()), []).append(v.strip())
    return out


class SystemdUnit(unittest.TestCase):
    def setUp(self):
        self.unit = parse_unit(UNIT)

    def get(self, key, section="Service"):
        return self.unit.get((section, key), [None])[-1]

    def test_reload_sends_sighup(self):
        self.assertRegex(self.get("ExecReload"), r"^/bin/kill (-HUP|-s HUP|--signal HUP) \$MAINPID$")

    def test_stop_timeout_covers_drain_and_exit_timeout(self):
        self.assertEqual(self.get("KillSignal"), "SIGTERM")
        stop = seconds(self.get("TimeoutStopSec"))
        need = seconds(default("server", "drain_delay")) + seconds(default("server", "exit_timeout"))
        self.assertGreater(stop, need)

    def test_execstart_reads_the_config(self):
        argv = shlex.split(self.get("ExecStart"))
        self.assertTrue(argv[0].endswith("/eied"))
        conf = argv[argv.index("--config") + 1]
        ro = " ".join(self.unit.get(("Service", "ReadOnlyPaths"), []))
        self.assertIn(os.path.dirname(conf), ro)

    def test_hardening(self):
        want = {
            "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
            "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
            "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
            "MemoryDenyWriteExecute": "yes", "LockPersonality": "yes",
            "RestrictRealtime": "yes", "PrivateDevices": "yes",
            "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
            "ProtectControlGroups": "yes",
        }
        for k, v in want.items():
            self.assertEqual(self.get(k), v, k)
        self.assertIn("@system-service", self.unit[("Service", "SystemCallFilter")])
        self.assertTrue(self.get("DynamicUser") == "yes" or self.get("User") not in (None, "root"))

    def test_systemd_analyze_verify(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            print("skip: systemd-analyze is not installed")
            self.skipTest("systemd-analyze is not installed")
        # verify checks that ExecStart's binary exists; eied is not installed
        # here, so a copy with ExecStart=/bin/true is verified instead (every
        # other line unchanged).
        with open(UNIT) as f:
            text = f.read()
        text, n = re.subn(r"^ExecStart=.*$", "ExecStart=/bin/true", text, flags=re.M)
        self.assertEqual(n, 1)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "eied.service")
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([tool, "verify", path], capture_output=True, text=True, timeout=60)
        # verify exits 0 even for unknown keys and bad values; its complaints
        # about this file name the file
        complaints = [l for l in (r.stdout + r.stderr).splitlines() if "eied.service" in l]
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(complaints, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
