#!/usr/bin/python3
"""test_compose - docker-compose.yml is valid and complete, and the pieces it
runs in containers work without Docker: the PostgreSQL init script against a
real scratch cluster, and the daemons' entrypoint."""

import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

import creneau_stack
from creneau_stack import SCHEMAS, SERVICES, SOURCE_DIR, run_tests

try:
    import yaml  # python3-yaml: a dependency of docker-compose
except ImportError:  # pragma: no cover
    yaml = None

DAEMONS = ("gateway",) + SERVICES
COMPOSE = os.path.join(SOURCE_DIR, "docker-compose.yml")
ENTRYPOINT = os.path.join(SOURCE_DIR, "deploy", "docker-entrypoint.sh")
INITDB = os.path.join(SOURCE_DIR, "deploy", "docker-initdb.sh")
PSQL = os.path.join(creneau_stack.PG_BIN, "psql")


def env_name(service):
    return service.upper().replace("-", "_")


@unittest.skipIf(shutil.which("docker-compose") is None,
                 "docker-compose is not installed")
@unittest.skipIf(yaml is None, "python3-yaml is not installed")
class ComposeConfigTest(unittest.TestCase):
    config = None

    @classmethod
    def setUpClass(cls):
        proc = subprocess.run(["docker-compose", "-f", COMPOSE, "config"],
                              cwd=SOURCE_DIR, capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0:
            raise AssertionError("docker-compose config failed:\n"
                                 + proc.stderr)
        cls.config = yaml.safe_load(proc.stdout)
        cls.services = cls.config["services"]

    def test_services(self):
        for name in DAEMONS + ("postgres", "booking-2"):
            self.assertIn(name, self.services)
        self.assertTrue(self.services["postgres"]["image"].startswith(
            "postgres:15"))

    def test_one_image_for_every_daemon(self):
        images = set()
        for name in DAEMONS + ("booking-2",):
            svc = self.services[name]
            images.add(svc["image"])
            self.assertEqual(svc["build"]["dockerfile"], "deploy/Dockerfile")
            program = "booking" if name == "booking-2" else name
            self.assertEqual(svc["command"][0], program)
        self.assertEqual(len(images), 1, images)
        self.assertTrue(os.path.isfile(os.path.join(SOURCE_DIR, "deploy",
                                                    "Dockerfile")))

    def test_health_checks(self):
        for name in DAEMONS + ("postgres", "booking-2"):
            with self.subTest(service=name):
                check = self.services[name].get("healthcheck")
                self.assertIsNotNone(check, name)
                self.assertTrue(check.get("test"), name)
        self.assertIn("/v1/health",
                      " ".join(self.services["gateway"]["healthcheck"]["test"]))

    def test_volumes(self):
        self.assertIn("pgdata", self.config.get("volumes", {}))
        mounts = [str(v) for v in self.services["postgres"]["volumes"]]
        self.assertTrue(any("pgdata:/var/lib/postgresql/data" in m
                            for m in mounts), mounts)
        self.assertTrue(any("docker-entrypoint-initdb.d" in m
                            for m in mounts), mounts)

    def test_peers_and_the_second_booking_replica(self):
        gateway_env = self.services["gateway"]["environment"]
        self.assertIn("tcp://booking-2:", gateway_env["CRENEAU_BOOKING_RPC"])
        for name in DAEMONS + ("booking-2",):
            env = self.services[name]["environment"]
            for peer in SERVICES:
                with self.subTest(service=name, peer=peer):
                    urls = env["CRENEAU_%s_RPC" % env_name(peer)]
                    for url in urls.split(","):
                        self.assertRegex(url, r"^tcp://[a-z0-9-]+:\d+$")
            if name != "gateway":
                self.assertTrue(env["CRENEAU_LISTEN"].startswith("tcp://"))
                self.assertTrue(env["CRENEAU_PUBLISH"].startswith("tcp://"))
        instances = [self.services[n]["environment"]["CRENEAU_INSTANCE"]
                     for n in DAEMONS + ("booking-2",)]
        self.assertEqual(len(set(instances)), len(instances), instances)

    def test_no_secret_in_the_file(self):
        with open(COMPOSE) as f:
            text = f.read()
        self.assertNotIn("CRENEAU_RPC_KEY", text)
        self.assertNotIn("CRENEAU_DB:", text)
        self.assertIsNone(re.search(r"PASSWORD\s*:", text))
        self.assertIsNone(re.search(r"[0-9a-f]{32}", text))
        for name in DAEMONS:
            for port in self.services[name].get("ports", []):
                published = str(port.get("host_ip", "")) if isinstance(
                    port, dict) else str(port)
                self.assertIn("127.0.0.1", published)


class DockerfileTest(unittest.TestCase):
    """What deploy/Dockerfile's build stage copies is enough to build."""

    def copies(self):
        """The sources of the build stage's COPY lines."""
        with open(os.path.join(SOURCE_DIR, "deploy", "Dockerfile")) as f:
            text = f.read()
        build_stage = text.split("\nFROM ", 2)[1]
        sources = []
        for line in build_stage.splitlines():
            words = line.split()
            if words[:1] == ["COPY"] and not any(
                    w.startswith("--from") for w in words):
                sources += [w.rstrip("/") for w in words[1:-1]]
        return sources

    def test_every_build_input_is_copied(self):
        with open(os.path.join(SOURCE_DIR, ".dockerignore")) as f:
            ignored = [l.strip().rstrip("/") for l in f
                       if l.strip() and not l.startswith("#")]
        refs = set()
        for top, dirs, files in os.walk(SOURCE_DIR):
            rel = os.path.relpath(top, SOURCE_DIR)
            dirs[:] = [d for d in dirs if not d.startswith((".", "build"))
                       and not (rel == "." and d == "tests")]
            for name in files:
                if name == "CMakeLists.txt" or name.endswith(".cmake"):
                    with open(os.path.join(top, name)) as f:
                        refs.update(re.findall(
                            r"\$\{PROJECT_SOURCE_DIR\}/([A-Za-z0-9_./-]+)",
                            f.read()))
        refs = {r for r in refs if not r.startswith("tests")}
        self.assertTrue(refs)
        copies = self.copies()
        for ref in sorted(refs):
            with self.subTest(path=ref):
                self.assertTrue(any(ref == c or ref.startswith(c + "/")
                                    for c in copies), (ref, copies))
                self.assertFalse(any(ref == i or ref.startswith(i + "/")
                                     for i in ignored), (ref, ignored))

    @unittest.skipIf(shutil.which("cmake") is None, "no cmake")
    def test_the_copied_context_configures(self):
        tmp = tempfile.mkdtemp(prefix="creneau-context-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for src in self.copies():
            dst = os.path.join(tmp, src)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            path = os.path.join(SOURCE_DIR, src)
            if os.path.isdir(path):
                shutil.copytree(path, dst)
            else:
                shutil.copy(path, dst)
        proc = subprocess.run(
            ["cmake", "-S", tmp, "-B", os.path.join(tmp, "b"),
             "-DCRENEAU_TESTS=OFF"], capture_output=True, text=True,
            timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        # every source of every target exists, e.g. the OpenAPI document
        # the gateway embeds (make -n -k: nothing is compiled; build
        # products a dry run never makes are not sources)
        proc = subprocess.run(
            ["cmake", "--build", os.path.join(tmp, "b"), "--", "-n", "-k"],
            capture_output=True, text=True, timeout=300)
        missing = [l for l in (proc.stdout + proc.stderr).splitlines()
                   if "No rule to make target '%s/" % tmp in l
                   and "'%s/b/" % tmp not in l]
        self.assertEqual(missing, [])


class ContainerScriptsTest(unittest.TestCase):
    """The init script and the entrypoint, run here as Docker would."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="creneau-compose-")
        os.chmod(self.tmp, 0o711)
        self.secrets = os.path.join(self.tmp, "secrets")
        os.mkdir(self.secrets)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        for name in ["rpc_key"] + ["pg_" + s for s in SCHEMAS.values()]:
            with open(os.path.join(self.secrets, name), "w") as f:
                f.write(os.urandom(24).hex())

    def read_secret(self, name):
        with open(os.path.join(self.secrets, name)) as f:
            return f.read()

    @unittest.skipUnless(os.geteuid() == 0, "init-secrets sets owners: root")
    def test_init_secrets(self):
        target = os.path.join(self.tmp, "generated")
        env = dict(os.environ, CRENEAU_SECRETS_DIR=target)
        for _ in range(2):  # the second run keeps every secret
            proc = subprocess.run([ENTRYPOINT, "init-secrets"], env=env,
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            if _ == 0:
                first = {n: open(os.path.join(target, n)).read()
                         for n in os.listdir(target)}
        names = sorted(os.listdir(target))
        self.assertEqual(names, sorted(["rpc_key", "pg_superuser"] +
                                       ["pg_" + s for s in SCHEMAS.values()]))
        for name in names:
            path = os.path.join(target, name)
            st = os.stat(path)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o440, name)
            self.assertEqual((st.st_uid, st.st_gid), (999, 10001), name)
            with open(path) as f:
                value = f.read()
            self.assertEqual(value, first[name])
            self.assertRegex(value, r"^[0-9a-f]{48,64}$")
        self.assertEqual(len(first["rpc_key"]), 64)

    def test_entrypoint_builds_the_environment(self):
        # a fake "booking" that prints its environment
        fake_dir = os.path.join(self.tmp, "bin")
        os.mkdir(fake_dir)
        for program in ("booking", "gateway"):
            fake = os.path.join(fake_dir, program)
            with open(fake, "w") as f:
                f.write("#!/bin/sh\nenv\n")
            os.chmod(fake, 0o755)
        env = {"PATH": os.environ["PATH"], "CRENEAU_SECRETS_DIR": self.secrets,
               "CRENEAU_INSTANCE": "booking-2", "CRENEAU_DB_HOST": "db",
               "CRENEAU_DB_PORT": "6543"}
        proc = subprocess.run([ENTRYPOINT, os.path.join(fake_dir, "booking")],
                              env=env, capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        seen = dict(line.split("=", 1) for line in proc.stdout.splitlines()
                    if "=" in line)
        self.assertEqual(seen["CRENEAU_RPC_KEY"], self.read_secret("rpc_key"))
        self.assertEqual(
            seen["CRENEAU_DB"],
            "host=db port=6543 dbname=creneau user=creneau_booking password=%s"
            " application_name=booking-2 connect_timeout=5"
            % self.read_secret("pg_booking"))
        for helper in ("CRENEAU_DB_HOST", "CRENEAU_DB_PORT",
                       "CRENEAU_SECRETS_DIR"):
            self.assertNotIn(helper, seen)
        # the gateway gets the key, no database
        proc = subprocess.run([ENTRYPOINT, os.path.join(fake_dir, "gateway")],
                              env=env, capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("CRENEAU_RPC_KEY=", proc.stdout)
        self.assertNotIn("CRENEAU_DB=", proc.stdout)
        # missing secrets: a clear error
        env["CRENEAU_SECRETS_DIR"] = os.path.join(self.tmp, "nowhere")
        proc = subprocess.run([ENTRYPOINT, os.path.join(fake_dir, "booking")],
                              env=env, capture_output=True, text=True,
                              timeout=60)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("rpc_key", proc.stderr)

    def test_initdb_script_on_a_real_cluster(self):
        """docker-initdb.sh on a scratch cluster, as the postgres image
        would run it; then every role logs in with its secret."""
        deploy = os.path.join(SOURCE_DIR, "deploy", "creneau")
        for attempt in range(3):  # another test may take the port first
            home = os.path.join(self.tmp, "home%d" % attempt)
            port = creneau_stack.free_port()
            deploy_env = {k: v for k, v in os.environ.items()
                          if not k.startswith("CRENEAU_")}
            deploy_env.update(CRENEAU_HOME=home, CRENEAU_PG_PORT=str(port),
                              CRENEAU_PG_FAST="1", CRENEAU_NO_INSTALL="1")
            self.addCleanup(subprocess.run, [deploy, "destroy", "--yes"],
                            env=deploy_env, capture_output=True, timeout=120)
            proc = subprocess.run([deploy, "pg-start"], env=deploy_env,
                                  capture_output=True, text=True, timeout=120)
            if "already in use" not in proc.stdout + proc.stderr:
                break
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        with open(os.path.join(home, "secrets", "pg_superuser")) as f:
            superuser = f.read().strip()
        env = dict(os.environ, CRENEAU_SECRETS_DIR=self.secrets,
                   CRENEAU_BOOTSTRAP_SQL=os.path.join(SOURCE_DIR, "deploy",
                                                      "bootstrap.sql"),
                   PGHOST="127.0.0.1", PGPORT=str(port), PGUSER="postgres",
                   PGPASSWORD=superuser,
                   PATH=creneau_stack.PG_BIN + ":" + os.environ["PATH"])
        proc = subprocess.run([INITDB], env=env, capture_output=True,
                              text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        for schema in SCHEMAS.values():
            with self.subTest(role=schema):
                login = dict(os.environ,
                             PGPASSWORD=self.read_secret("pg_" + schema))
                proc = subprocess.run(
                    [PSQL, "-X", "-At", "-d",
                     "host=127.0.0.1 port=%d dbname=creneau user=creneau_%s"
                     % (port, schema), "-c", "SHOW search_path"],
                    env=login, capture_output=True, text=True, timeout=60)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(proc.stdout.strip(), "%s, ext" % schema)


if __name__ == "__main__":
    run_tests()
