"""The compatibility matrix, run: for each ansible-core minor of tests/matrix/matrix.py, in its own venv, that
version's ``ansible-test sanity`` on the collection, the unit tests, and a live smoke run (the audit playbook, then
tests/matrix/smoke.yml: facts, and a sysctl_profile check/apply/apply/check/absent) with one host per target Python,
each in a network namespace of its own; plus the target-side unit tests on the oldest target Python.

The jobs run two at a time from the first test of this file on (the build machines have 2 cores); each test
waits for its job and judges what it left: the smoke results against the kernel (/proc/sys in the namespace,
read by this file, not by the code under test) and against ``ss``. tests/matrix/conftest.py prints the table.
"""
import collections
import concurrent.futures
import glob
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

import matrix
from ansible_collections.linuxnet.tcp.tests.sanity.ansible_test_env import copy_collection, seed_pip_bootstrap

HERE = os.path.dirname(os.path.abspath(__file__))

ROOT = matrix.ROOT
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
WORK = os.path.join(matrix.VENVS, "work")
KEYS = ("net.ipv4.tcp_keepalive_time", "net.core.somaxconn", "net.ipv4.ip_local_port_range")
PROFILE = {"net.ipv4.tcp_keepalive_time": "600", "net.core.somaxconn": "8192", "net.ipv4.ip_local_port_range": "10240 65535"}
REFUSAL = re.compile(r"linuxnet\.tcp modules need Python 3\.6 or later on the target \(tested: 3\.6 to 3\.13\); "
                     r"\S+ is Python 2\.7\.\d+\.")
# Holds one listener and two established connections on loopback in a namespace, so the facts have something
# known to report; prints the listening port, exits when its stdin closes. The port is below the profile's
# ephemeral range, which sysctl_profile would otherwise refuse (it covers a listener: a restart could fail).
HOLDER = """
import socket, sys
server = socket.socket()
server.bind(("127.0.0.1", 8080))
server.listen(8)
clients = [socket.create_connection(server.getsockname()) for _ in range(2)]
accepted = [server.accept()[0] for _ in clients]
print(server.getsockname()[1], flush=True)
sys.stdin.read()
"""
MOUNT_SCRIPT = ('mount --bind "$1" /etc/sysctl.d && mount --bind "$2" /usr/lib/sysctl.d && mount --bind "$3" /var/lib '
                '&& shift 3 && exec "$@"')


def run(argv, cwd=ROOT, env=None, timeout=1800):
    full = dict(os.environ, LC_ALL="C.UTF-8", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PY_COLORS="0")
    full.update(env or {})
    started = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout, check=False)
    done.seconds = time.monotonic() - started
    return done


def site_packages(venv):
    (path,) = glob.glob(os.path.join(venv, "lib", "python3.*", "site-packages"))
    return path


class Venvs(object):
    """Each venv of the matrix made or refreshed once per session (pylock.py keeps it when its lock is unchanged)."""

    def __init__(self):
        self.locks = {name: threading.Lock() for name, _version in matrix.environments()}
        self.done = {}

    def get(self, name, version):
        with self.locks[name]:
            if name not in self.done:
                _name, problem = matrix.install(name, version)
                self.done[name] = problem
        assert self.done[name] is None, "%s: %s" % (name, self.done[name])
        return matrix.venv_dir(name)


VENVS = Venvs()


def cell_venv(cell):
    return VENVS.get("ansible-core-" + cell.core, cell.controller)


# ansible-test keeps its linters' venvs in ~/.ansible/test/venv/<test>/<python>/<hash of the requirements>: two
# versions pinning the same linter on the same Python share one, so two runs on one Python never go at once.
SANITY_PER_PYTHON = {cell.controller: threading.Lock() for cell in matrix.CELLS}


def job_sanity(cell):
    venv = cell_venv(cell)
    seed_pip_bootstrap(site_packages(venv))
    copy = copy_collection(os.path.join(WORK, "sanity-" + cell.core))
    known = matrix.KNOWN_SANITY_FINDINGS.get(cell.core)
    if known:
        with open(os.path.join(copy, "tests", "sanity", "ignore-%s.txt" % cell.core), "w", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in known))
    with SANITY_PER_PYTHON[cell.controller]:
        done = run([os.path.join(venv, "bin", "ansible-test"), "sanity", "--python", cell.controller, "--venv", "--color", "no"]
                   + list(matrix.SANITY_TARGETS), cwd=copy, timeout=2400,
                   env={"PATH": os.path.join(venv, "bin") + os.pathsep + os.environ["PATH"]})
    return {"rc": done.returncode, "output": done.stdout, "seconds": done.seconds, "known": list(known or ())}


def job_units(cell):
    venv = cell_venv(cell)
    done = run([os.path.join(venv, "bin", "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit"],
               env={"ANSIBLE_COLLECTIONS_PATH": COLLECTIONS})
    return {"rc": done.returncode, "output": done.stdout, "seconds": done.seconds}


def job_target_units(version, core):
    """module_utils and module tests on a target Python: pytest from the target's own venv, ansible-core's
    module_utils from the cell's venv (only ``ansible`` itself is put on the path: the rest of that venv is for
    the controller's Python), as ansible-test's units command does for target-only tests."""
    venv = VENVS.get("target-python-" + version, version)
    lib = os.path.join(venv, "ansible-core-" + core)
    if not os.path.islink(os.path.join(lib, "ansible")):
        os.makedirs(lib, exist_ok=True)
        os.symlink(os.path.join(site_packages(cell_venv(matrix.cell(core))), "ansible"), os.path.join(lib, "ansible"))
    done = run([os.path.join(venv, "bin", "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "tests/unit/plugins/module_utils", "tests/unit/plugins/modules"], env={"PYTHONPATH": lib})
    return {"rc": done.returncode, "output": done.stdout, "seconds": done.seconds}


class Target(object):
    """One target Python: a network namespace with loopback up and a socket holder in it, scratch directories
    bind-mounted over /etc/sysctl.d, /usr/lib/sysctl.d and /var/lib for every module run, and the interpreter
    Ansible is given, a wrapper that enters all that and execs the real Python."""

    def __init__(self, base, version):
        self.version = version
        self.host = "py" + version
        self.python = matrix.find_python(version)
        self.netns = "lntcp26-" + uuid.uuid4().hex[:8]
        self.base = os.path.join(base, self.host)
        self.etc, self.usrlib, self.varlib = (os.path.join(self.base, d) for d in ("etc", "usrlib", "varlib"))
        for path in (self.etc, self.usrlib, self.varlib):
            os.makedirs(path)
        self.interpreter = os.path.join(self.base, "python")
        with open(self.interpreter, "w", encoding="utf-8") as handle:
            handle.write("#!/bin/sh\nexec ip netns exec %s unshare -m --propagation private sh -c '%s' sh %s %s %s %s \"$@\"\n"
                         % (self.netns, MOUNT_SCRIPT, self.etc, self.usrlib, self.varlib, self.python))
        os.chmod(self.interpreter, 0o755)
        self.holder = None
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
        self.holder = subprocess.Popen(["ip", "netns", "exec", self.netns, sys.executable, "-c", HOLDER],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)
        self.port = int(self.holder.stdout.readline())

    def close(self):
        if self.holder:
            self.holder.stdin.close()
            try:
                self.holder.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.holder.send_signal(signal.SIGKILL)
                self.holder.wait()
        subprocess.run(["ip", "netns", "delete", self.netns], check=False)

    def sysctl(self, key):
        out = subprocess.run(["ip", "netns", "exec", self.netns, "cat", "/proc/sys/" + key.replace(".", "/")],
                             check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
        return " ".join(out.split())

    def ss_states(self):
        """TCP sockets per state, from ss in the namespace."""
        out = subprocess.run(["ip", "netns", "exec", self.netns, "ss", "-Htan"], check=True, stdout=subprocess.PIPE,
                             universal_newlines=True, env=dict(os.environ, LC_ALL="C")).stdout
        return dict(collections.Counter(line.split()[0] for line in out.splitlines() if line.strip()))

    def files(self):
        found = []
        for top in (self.etc, self.varlib):
            for folder, _dirs, names in os.walk(top):
                found += [os.path.relpath(os.path.join(folder, name), self.base) for name in names]
        return sorted(found)

    def observe(self):
        return {"sysctl": {key: self.sysctl(key) for key in KEYS}, "files": self.files()}


def playbook(cell, argv, inventory):
    venv = cell_venv(cell)
    return run([os.path.join(venv, "bin", "ansible-playbook"), "-i", inventory] + argv, timeout=900,
               env={"ANSIBLE_COLLECTIONS_PATH": COLLECTIONS, "PATH": os.path.join(venv, "bin") + os.pathsep + os.environ["PATH"]})


def job_smoke(cell):
    if os.geteuid() != 0:
        raise AssertionError("the matrix's smoke run needs root: it creates network namespaces (run `make test` as root)")
    base = os.path.join(WORK, "smoke-" + cell.core)
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    started = time.monotonic()
    targets = []
    try:
        for version in cell.targets:
            targets.append(Target(base, version))
        inventory = os.path.join(base, "inventory.ini")
        with open(inventory, "w", encoding="utf-8") as handle:
            handle.write("[targets]\n" + "".join("%s ansible_connection=local ansible_python_interpreter=%s\n"
                                                 % (t.host, t.interpreter) for t in targets))
        result = {"targets": {}, "results": os.path.join(base, "results")}
        os.makedirs(result["results"])
        for target in targets:
            result["targets"][target.host] = {"version": target.version, "python": target.python, "port": target.port,
                                              "holder_pid": target.holder.pid, "ss": target.ss_states(),
                                              "before": target.observe()}
        playbooks = sorted(glob.glob(os.path.join(ROOT, "playbooks", "*.yml")))
        syntax = playbook(cell, ["--syntax-check"] + playbooks, inventory)
        result["syntax"] = {"rc": syntax.returncode, "output": syntax.stdout, "playbooks": playbooks}
        audit = playbook(cell, ["linuxnet.tcp.audit", "-e", "tcp_audit_report_dir=" + os.path.join(base, "report")], inventory)
        result["audit"] = {"rc": audit.returncode, "output": audit.stdout}
        apply = playbook(cell, [os.path.join(HERE, "smoke.yml"), "--tags", "apply", "--diff", "-e",
                                "smoke_results=" + result["results"]], inventory)
        result["apply"] = {"rc": apply.returncode, "output": apply.stdout}
        for target in targets:
            result["targets"][target.host]["after_apply"] = target.observe()
        absent = playbook(cell, [os.path.join(HERE, "smoke.yml"), "--tags", "absent", "-e",
                                 "smoke_results=" + result["results"]], inventory)
        result["absent"] = {"rc": absent.returncode, "output": absent.stdout}
        for target in targets:
            result["targets"][target.host]["after_absent"] = target.observe()
    finally:
        for target in targets:
            target.close()
    result["seconds"] = time.monotonic() - started
    return result


class Jobs(object):
    """Every job of the matrix, submitted at once, longest first, to a pool as wide as the machine."""

    def __init__(self):
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        self.futures = collections.OrderedDict()
        for cell in matrix.CELLS:
            self.futures[("sanity", cell.core)] = self.pool.submit(job_sanity, cell)
        for cell in matrix.CELLS:
            self.futures[("smoke", cell.core)] = self.pool.submit(job_smoke, cell)
        for cell in matrix.CELLS:
            self.futures[("units", cell.core)] = self.pool.submit(job_units, cell)
        for version, core in matrix.TARGET_UNITS:
            self.futures[("target-units", version)] = self.pool.submit(job_target_units, version, core)

    def result(self, kind, key):
        return self.futures[(kind, key)].result()


@pytest.fixture(scope="module")
def jobs():
    for _name, version in matrix.environments():
        matrix.find_python(version)  # a missing interpreter fails every test here, by name, before any work
    for cell in matrix.CELLS:
        for version in cell.targets:
            matrix.find_python(version)
    started, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    instance = Jobs()
    yield instance
    instance.pool.shutdown(wait=True)
    summary = os.path.join(matrix.VENVS, "results.json")
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    record = {"wall_seconds": time.monotonic() - started, "load": os.getloadavg(), "jobs": {},
              "cpu_seconds": used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime}
    for (kind, key), future in instance.futures.items():
        if future.done() and not future.exception():
            value = future.result()
            record["jobs"]["%s %s" % (kind, key)] = {"seconds": value["seconds"], "ok": ok(kind, value),
                                                     "known": value.get("known", [])}
    with open(summary, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)


def ok(kind, value):
    if kind == "smoke":
        return value["apply"]["rc"] == 0 and value["absent"]["rc"] == 0
    return value["rc"] == 0


CORES = [cell.core for cell in matrix.CELLS]


def test_matrix_cells_are_supported_combinations():
    """Each controller Python and target Python is one that ansible-core minor supports (ansible-test's own list),
    and the target Pythons the issue names are all exercised: 3.6 through 2.16, 3.9 and later through 2.21."""
    for cell in matrix.CELLS:
        venv = cell_venv(cell)
        (constants,) = glob.glob(os.path.join(site_packages(venv), "ansible_test", "_util", "target", "common", "constants.py"))
        scope = {}
        with open(constants, encoding="utf-8") as handle:
            exec(compile(handle.read(), constants, "exec"), scope)  # pylint: disable=exec-used
        assert cell.controller in scope["CONTROLLER_PYTHON_VERSIONS"], cell
        for version in cell.targets:
            assert version in scope["REMOTE_ONLY_PYTHON_VERSIONS"] + scope["CONTROLLER_PYTHON_VERSIONS"], (cell, version)
    assert "3.6" in matrix.cell("2.16").targets and "3.8" in matrix.cell("2.16").targets
    assert set(("3.9", "3.11", "3.12", "3.13")) <= set(matrix.cell("2.21").targets)


@pytest.mark.parametrize("core", CORES)
def test_ansible_test_sanity(jobs, core):
    value = jobs.result("sanity", core)
    findings = [line for line in value["output"].splitlines() if line.startswith(("ERROR", "FATAL"))]
    assert value["rc"] == 0, "\n".join(findings) + "\n\n--- full output (tail) ---\n" + value["output"][-6000:]


@pytest.mark.parametrize("core", CORES)
def test_unit_tests(jobs, core):
    value = jobs.result("units", core)
    assert value["rc"] == 0 and re.search(r"^\d+ passed", value["output"].splitlines()[-1]), value["output"][-6000:]


@pytest.mark.parametrize("version", [version for version, _core in matrix.TARGET_UNITS])
def test_target_side_unit_tests_on_the_oldest_target_python(jobs, version):
    value = jobs.result("target-units", version)
    assert value["rc"] == 0 and re.search(r"^\d+ passed", value["output"].splitlines()[-1]), value["output"][-6000:]


def supported(smoke):
    """The smoke hosts of supported target Pythons; at least one, or the tests looping over them would judge nothing."""
    hosts = {host: info for host, info in smoke["targets"].items() if info["version"] not in matrix.UNSUPPORTED_TARGETS}
    assert hosts, "the smoke run had no host of a supported target Python: %s" % sorted(smoke["targets"])
    return hosts


def recap(output):
    """{host: {ok: n, changed: n, failed: n, ...}} from the PLAY RECAP of a playbook run."""
    found = {}
    for line in output.split("PLAY RECAP")[-1].splitlines():
        match = re.match(r"^(\S+)\s+:\s+(.*)$", line)
        if match:
            found[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return found


def saved(smoke, host, play):
    with open(os.path.join(smoke["results"], "%s-%s.json" % (host, play)), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.mark.live
@pytest.mark.parametrize("core", CORES)
def test_every_playbook_parses(jobs, core):
    """tune.yml, restore.yml and merge_reports.yml are not run here; at least that version of Ansible loads them."""
    syntax = jobs.result("smoke", core)["syntax"]
    assert syntax["rc"] == 0 and len(syntax["playbooks"]) >= 4, syntax["output"][-4000:]
    assert "[WARNING]" not in syntax["output"] and "DEPRECATION" not in syntax["output"], syntax["output"][-4000:]


@pytest.mark.live
@pytest.mark.parametrize("core", CORES)
def test_smoke_audit_reports_what_ss_sees(jobs, core):
    smoke = jobs.result("smoke", core)
    audit = smoke["audit"]
    hosts = recap(audit["output"])
    assert set(hosts) == set(smoke["targets"]), audit["output"][-4000:]
    for host, info in smoke["targets"].items():
        assert hosts[host]["failed"] == (1 if info["version"] in matrix.UNSUPPORTED_TARGETS else 0), audit["output"][-4000:]
    with open(os.path.join(os.path.dirname(smoke["results"]), "report", "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    by_host = {entry["host"]: entry for entry in report["hosts"]}
    for host, info in supported(smoke).items():
        entry = by_host[host]
        assert entry["backend"] == "netlink", entry
        assert entry["states"]["LISTEN"] == info["ss"].get("LISTEN", 0) == 1, (entry["states"], info["ss"])
        assert entry["states"]["ESTABLISHED"] == info["ss"].get("ESTAB", 0) == 4, (entry["states"], info["ss"])
        assert entry["total"] == sum(info["ss"].values()), (entry, info["ss"])


@pytest.mark.live
@pytest.mark.parametrize("core", CORES)
def test_smoke_facts_match_the_kernel(jobs, core):
    smoke = jobs.result("smoke", core)
    for host, info in supported(smoke).items():
        results = saved(smoke, host, "apply")
        facts = results["sysctl_facts"]
        assert not facts.get("failed") and facts["changed"] is False, (host, facts)
        sysctl = facts["ansible_facts"]["sysctl"]
        assert sysctl["runtime"] == info["before"]["sysctl"], (host, sysctl["runtime"])
        assert sysctl["kernel"]["initial_netns"] is False, (host, sysctl["kernel"])
        tcp = results["tcp_facts"]
        assert not tcp.get("failed") and tcp["changed"] is False, (host, tcp)
        tcp = tcp["ansible_facts"]["tcp"]
        assert tcp["states"]["LISTEN"] == 1 and tcp["states"]["ESTABLISHED"] == 4, (host, tcp["states"], info["ss"])
        assert tcp["collection"]["initial_netns"] is False and tcp["collection"]["backend"] == "netlink", (host, tcp["collection"])
        (listener,) = tcp["listeners"]
        assert (listener["address"], listener["port"], listener["pid"]) == ("127.0.0.1", info["port"], info["holder_pid"]), (host, listener)


@pytest.mark.live
@pytest.mark.parametrize("core", CORES)
def test_smoke_profile_check_apply_idempotent_absent(jobs, core):
    smoke = jobs.result("smoke", core)
    assert smoke["apply"]["rc"] in (0, 2), smoke["apply"]["output"][-4000:]
    for host, info in supported(smoke).items():
        results = saved(smoke, host, "apply")
        check, apply, again, check_again = (results[k] for k in ("check", "apply", "again", "check_again"))
        for name, value in (("check", check), ("apply", apply), ("again", again), ("check_again", check_again)):
            assert not value.get("failed"), (host, name, value)
        assert [check["changed"], apply["changed"], again["changed"], check_again["changed"]] == [True, True, False, False], host
        for key in ("applied", "skipped_keys", "refused", "persisted_file", "diff"):
            assert check[key] == apply[key], (host, key, check[key], apply[key])  # check mode predicts the real run
        assert sorted(apply["applied"]) == sorted(PROFILE) and apply["refused"] == apply["skipped_keys"] == [], (host, apply)
        assert info["after_apply"]["sysctl"] == PROFILE, (host, info["after_apply"])
        assert info["after_apply"]["files"] == ["etc/90-linuxnet-smoke.conf", "varlib/linuxnet-tcp/sysctl-smoke.json"], (host, info["after_apply"])
        absent = saved(smoke, host, "absent")["absent"]
        assert not absent.get("failed") and absent["changed"] is True, (host, absent)
        assert info["after_absent"] == info["before"], (host, info["before"], info["after_absent"])


@pytest.mark.live
def test_smoke_python27_target_is_refused_with_a_clear_message(jobs):
    """ansible-core 2.16 still runs modules with Python 2.7: every module fails with the collection's message
    (no traceback, nothing changed), and the audit names it too."""
    smoke = jobs.result("smoke", "2.16")
    (host,) = [h for h, info in smoke["targets"].items() if info["version"] == "2.7"]
    results = saved(smoke, host, "apply")
    for name, value in sorted(results.items()):
        assert value.get("failed") is True and REFUSAL.search(value["msg"]), (name, value)
        assert not value.get("module_stderr") and "Traceback" not in json.dumps(value), (name, value)
    assert smoke["targets"][host]["after_apply"] == smoke["targets"][host]["before"]
    assert REFUSAL.search(smoke["audit"]["output"]), smoke["audit"]["output"][-4000:]
