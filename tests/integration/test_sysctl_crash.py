# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""sysctl_profile killed, starved of disk and run twice at once: the real module, in private namespaces.

Every module run is the module file run the way Ansible runs it on a target (``python -m`` on the module with an
arguments file), inside a fresh network namespace and a private mount namespace made for one case: an overlay over
/etc (so whatever the module creates there stays in the namespace), empty tmpfs over /etc/sysctl.d,
/etc/modules-load.d, /usr/lib/sysctl.d and /var/lib. Only per-namespace net.ipv4 keys of that network namespace are
written; the host's files and kernel settings are never touched, and everything goes with the namespace's holder
process.

- Kills: strace stops the run with SIGKILL on entering its N-th mutating system call, before the call is made
  (``-e inject=CALL:signal=KILL:when=K`` for the K-th call of that name, which is the N-th of the set), for every N of
  an apply, an update that changes, drops and adds keys, and an absent. After each kill:
  every file whole, every key at its value before the run or its target, the original of every changed key on disk;
  the next run converges to exactly what an uninterrupted run leaves, as check mode predicted, with ``changed`` true
  exactly when it changed something and ``recovered`` set exactly when the kill left a journal or a temporary file;
  a second run changes nothing; ``absent`` restores every original and leaves no file.
- Faults: a full and a read-only /var/lib (the state directory) on apply, update and absent, and a full and a
  read-only /etc/sysctl.d: a failed result naming the path and the errno, no traceback, the runtime and the files as
  before; the next run, once the fault is gone, converges.
- Two runs at once: both first runs succeed (no crash making the state directory), the second plans only once the
  first is done; a held lock fails a run after lock_timeout, naming the lock and the holder's pid.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.live

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, ".build", "collections")
MODULE = "ansible_collections.linuxnet.tcp.plugins.modules.sysctl_profile"
# Mutating system calls: the kill points. openat is left out: what it creates (an empty temporary or lock file) is
# on disk the same as at the kill on the next call of the set, and it would add every read of the run.
MUTATING = ("write,pwrite64,writev,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,rmdir,fsync,fdatasync,"
            "fchmod,fchmodat,chmod,ftruncate,truncate")
WORKERS = 2
STATE_DIR = "/var/lib/linuxnet-tcp"
OWNED_DIRS = ("/etc/sysctl.d", "/etc/modules-load.d", "/etc/modprobe.d", "/var/lib")
TEMP_RE = re.compile(r"\..+\.[a-z0-9_]{8}\.lntcp-tmp$")

KEYS = ("net.ipv4.tcp_keepalive_time", "net.ipv4.icmp_ratelimit", "net.ipv4.tcp_syn_retries", "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes")
FIRST = {"name": "kt", "modules": ["nf_conntrack"], "module_options": {"nf_conntrack": {"hashsize": 65536}},
         "settings": {"net.ipv4.tcp_keepalive_time": 600, "net.ipv4.icmp_ratelimit": 900, "net.ipv4.tcp_syn_retries": 5,
                      "net.ipv4.tcp_fin_timeout": 30}}
# Changes keepalive_time, keeps icmp_ratelimit, drops syn_retries and fin_timeout (their originals come back) and the
# module files, adds keepalive_intvl and keepalive_probes.
SECOND = {"name": "kt", "settings": {"net.ipv4.tcp_keepalive_time": 900, "net.ipv4.icmp_ratelimit": 900,
                                     "net.ipv4.tcp_keepalive_intvl": 30, "net.ipv4.tcp_keepalive_probes": 5}}
ABSENT = {"name": "kt", "state": "absent"}
SCENARIOS = {"apply": ((), FIRST), "update": ((FIRST,), SECOND), "absent": ((SECOND,), ABSENT)}

SETUP = r"""
set -e
scratch=$1
mount -t tmpfs -o size=4m tmpfs "$scratch"
mkdir "$scratch/upper" "$scratch/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$scratch/upper,workdir=$scratch/work" /etc
for d in /etc/sysctl.d /etc/modules-load.d /usr/lib/sysctl.d /var/lib; do
  mkdir -p "$d"
  mount -t tmpfs -o size=1m,mode=0755 tmpfs "$d"
done
echo ready
exec sleep 900
"""

# Runs inside the namespaces: the keys' runtime values and every file under the owned directories, as JSON.
SNAPSHOT = r"""
import json, os, sys
out = {"runtime": {}, "files": {}}
for key in sys.argv[2:]:
    with open("/proc/sys/" + key.replace(".", "/")) as handle:
        out["runtime"][key] = " ".join(handle.read().split())
for base in sys.argv[1].split(","):
    for top, dirs, names in os.walk(base):
        for name in names:
            path = os.path.join(top, name)
            with open(path, "rb") as handle:
                out["files"][path] = handle.read().decode("utf-8", "replace")
print(json.dumps(out))
"""


# Waits (up to 10 s) until the lock file "$1" exists and is locked by someone.
LOCKED = 'i=0; until [ -e "$1" ] && ! flock -n "$1" true; do [ $i -lt 200 ] || exit 1; sleep 0.05; i=$((i+1)); done'


def _usable():
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in ("unshare", "nsenter", "strace", "mount"))


skip_unless_usable = pytest.mark.skipif(not _usable(), reason="needs root, util-linux (unshare, nsenter) and strace")


class Namespace(object):
    """A network namespace and a private mount namespace for one case, held by a sleeping process."""

    def __init__(self, base):
        self.scratch = os.path.join(base, "ns")
        os.makedirs(self.scratch)
        self.holder = subprocess.Popen(["unshare", "--mount", "--net", "--propagation", "private", "--",
                                        "sh", "-c", SETUP, "sh", self.scratch],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        line = self.holder.stdout.readline()
        assert line.strip() == "ready", line + self.holder.stderr.read()
        self.base = base
        self.runs = 0

    def close(self):
        self.holder.kill()
        self.holder.wait()

    def enter(self, argv):
        return ["nsenter", "-t", str(self.holder.pid), "-m", "-n", "--"] + list(argv)

    def sh(self, script, *args):
        return subprocess.run(self.enter(["sh", "-c", script, "sh"] + list(args)), check=True, timeout=60,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True).stdout

    def snapshot(self):
        out = subprocess.run(self.enter(["/usr/bin/python3", "-S", "-c", SNAPSHOT, ",".join(OWNED_DIRS)] + list(KEYS)),
                             check=True, timeout=60, stdout=subprocess.PIPE, universal_newlines=True).stdout
        return json.loads(out)

    def module(self, args, check=False, kill_at=None, trace=None, wrap=()):
        """Run the module; its result, or None when it was killed.

        ``kill_at`` ``(call, k)``: SIGKILL on entering the k-th system call of that name (strace counts each call
        name apart). ``trace`` writes the mutating calls to that file. (strace 6.1 does not inject with
        --seccomp-bpf, so every call of the run stops in strace.)
        """
        self.runs += 1
        path = os.path.join(self.base, "args-%d.json" % self.runs)
        module_args = dict(args, _ansible_check_mode=check)
        with open(path, "w") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": module_args}, handle)
        argv = ["env", "PYTHONPATH=" + COLLECTIONS, "PYTHONDONTWRITEBYTECODE=1", sys.executable, "-m", MODULE, path]
        if kill_at is not None or trace is not None:
            strace = ["strace", "-f", "-qq", "-e", "trace=" + MUTATING, "-o", trace or "/dev/null"]
            if kill_at is not None:
                strace += ["-e", "inject=%s:signal=KILL:when=%d" % kill_at]
            argv = strace + argv
        proc = subprocess.run(self.enter(list(wrap) + argv), timeout=120, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, check=False)
        if kill_at is not None and proc.returncode in (-9, 128 + 9):
            return None  # killed (strace exits as its tracee did), after whatever output it had written
        assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        return json.loads(proc.stdout)


def _managed(snapshot):
    """What a run manages, to judge 'changed': the runtime and the files, but not the lock file, which exists only
    while a run holds it (or after a killed one: the next run takes it over and removes it)."""
    return {"runtime": snapshot["runtime"],
            "files": dict((p, t) for p, t in snapshot["files"].items() if p != STATE_DIR + "/sysctl.lock")}


def _leftovers(snapshot):
    """On disk evidence of an interrupted run: a journal in the state file, or a temporary file."""
    state = snapshot["files"].get(STATE_DIR + "/sysctl-kt.json")
    temps = [p for p in snapshot["files"] if TEMP_RE.search(os.path.basename(p))]
    return bool(temps) or (state is not None and "transaction" in json.loads(state))


def _count_kill_points(base, scenario):
    """The mutating system calls of one uninterrupted run, and what it leaves: ``(calls, before, after)``."""
    setup, run = SCENARIOS[scenario]
    ns = Namespace(base)
    try:
        for args in setup:
            assert not ns.module(args).get("failed")
        before = ns.snapshot()
        trace = os.path.join(base, "trace.txt")
        result = ns.module(run, trace=trace)
        assert not result.get("failed"), result
        after = ns.snapshot()
    finally:
        ns.close()
    with open(trace) as handle:
        calls = [m.group(1) for m in (re.match(r"\d+\s+(\w+)\(", line) for line in handle) if m]
    return calls, before, after


def _kill_case(base, scenario, calls, point, pristine, before, after):
    """Kill point ``point`` (1-based, in ``calls``): kill, check what is left, converge, run again, remove the profile."""
    setup, run = SCENARIOS[scenario]
    os.makedirs(base)
    ns = Namespace(base)
    try:
        for args in setup:
            assert not ns.module(args).get("failed")
        assert ns.snapshot() == before, "the case does not start where the counted run started"
        call = calls[point - 1]
        assert ns.module(run, kill_at=(call, calls[:point].count(call))) is None, "not killed at mutating call %d" % point
        left = ns.snapshot()
        state_text = left["files"].get(STATE_DIR + "/sysctl-kt.json")
        saved = json.loads(state_text)["originals"] if state_text else {}
        for key in KEYS:
            assert left["runtime"][key] in (before["runtime"][key], after["runtime"][key]), (point, key)
            if left["runtime"][key] != pristine["runtime"][key]:
                assert saved.get(key) == pristine["runtime"][key], (point, key, "original not on disk")
        for path, text in left["files"].items():
            if TEMP_RE.search(os.path.basename(path)) or path == STATE_DIR + "/sysctl.lock":
                continue  # a killed run's temporary file (hidden, never read) or its lock file
            if path.endswith(".json"):
                json.loads(text)  # the state file: the old text, the journal or the new text, never torn
            else:
                assert text in (before["files"].get(path), after["files"].get(path)), (point, path)

        leftovers = _leftovers(left)
        check = ns.module(run, check=True)
        assert _managed(ns.snapshot()) == _managed(left), (point, "check mode wrote")
        again = ns.module(run)
        settled = ns.snapshot()
        assert not again.get("failed"), (point, again)
        for field in ("changed", "recovered", "applied", "restored", "diff"):
            assert again.get(field) == check.get(field), (point, field)
        assert again["changed"] is (_managed(settled) != _managed(left)), (point, "changed is not exact")
        assert (again["recovered"] is not None) is leftovers, (point, again["recovered"])
        assert _managed(settled) == _managed(after), (point, "did not converge to what an uninterrupted run leaves")

        second = ns.module(run)
        assert second["changed"] is False and second["recovered"] is None, (point, second)
        assert _managed(ns.snapshot()) == _managed(settled), point
        gone = ns.module(ABSENT)
        assert not gone.get("failed"), (point, gone)
        final = ns.snapshot()
        assert final["runtime"] == pristine["runtime"], (point, "absent did not restore every original")
        assert final["files"] == {}, (point, final["files"])
        return again["recovered"] is not None
    finally:
        ns.close()


@skip_unless_usable
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_killed_at_every_mutating_call(tmp_path, scenario):
    ns = Namespace(str(tmp_path / "pristine"))
    try:
        pristine = ns.snapshot()
    finally:
        ns.close()
    calls, before, after = _count_kill_points(str(tmp_path / "count"), scenario)
    # The write-ahead order, as the kernel saw it: the journal's rename comes before the first /proc/sys write.
    assert calls and len(calls) >= 15, calls
    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        recovered = list(pool.map(lambda n: _kill_case(str(tmp_path / ("kill-%02d" % n)), scenario, calls, n, pristine, before,
                                                       after), range(1, len(calls) + 1)))
    print("%s: %d kill points (%s), %d left a journal or temporary file; %.1f s"
          % (scenario, len(calls), ",".join(calls), sum(recovered), time.monotonic() - started))
    assert any(recovered) and not all(recovered)


FAULTS = {
    "state-full": ("/var/lib", "head -c 2000000 /dev/zero > /var/lib/filler || true", "rm /var/lib/filler"),
    "state-read-only": ("/var/lib", "mount -o remount,ro /var/lib", "mount -o remount,rw /var/lib"),
    "dropin-full": ("/etc/sysctl.d", "head -c 2000000 /dev/zero > /etc/sysctl.d/filler || true", "rm /etc/sysctl.d/filler"),
    "dropin-read-only": ("/etc/sysctl.d", "mount -o remount,ro /etc/sysctl.d", "mount -o remount,rw /etc/sysctl.d"),
}
FAULT_CASES = [(f, s) for f in ("state-full", "state-read-only") for s in ("apply", "update", "absent")] + \
              [(f, s) for f in ("dropin-full", "dropin-read-only") for s in ("apply", "update")]


@skip_unless_usable
@pytest.mark.parametrize("fault, scenario", FAULT_CASES)
def test_full_or_read_only_file_system_fails_cleanly(tmp_path, fault, scenario):
    where, make, undo = FAULTS[fault]
    setup, run = SCENARIOS[scenario]
    ns = Namespace(str(tmp_path))
    try:
        for args in setup:
            assert not ns.module(args).get("failed")
        before = _managed(ns.snapshot())
        ns.sh(make)
        out = ns.module(run)
        assert out.get("failed") is True, out
        errno_name = "ENOSPC" if fault.endswith("full") else "EROFS"
        assert out["errno"] == errno_name and out["error_path"].startswith(where), out
        assert "%s: %s (" % (out["error_path"], errno_name) in out["msg"], out["msg"]
        if where == "/var/lib":
            assert out["msg"].endswith("nothing was changed"), out["msg"]
        else:
            assert "rolled back" in out["msg"] and "the state file is as before" in out["msg"], out["msg"]
        ns.sh(undo)
        assert _managed(ns.snapshot()) == before, "a failed run left something changed"
        # Once the disk is back, the next run converges as if the failed one had never been.
        again = ns.module(run)
        assert again["changed"] is True and again["recovered"] is None, again
        assert ns.module(run)["changed"] is False
    finally:
        ns.close()


@skip_unless_usable
def test_two_runs_at_once_take_turns(tmp_path):
    ns = Namespace(str(tmp_path))
    try:
        pristine = ns.snapshot()
        first = dict(name="a", settings={"net.ipv4.tcp_keepalive_time": 400, "net.ipv4.icmp_ratelimit": 700})
        second = dict(name="b", settings={"net.ipv4.tcp_keepalive_time": 500})
        # The first run is slowed down in its writes (strace delays each fsync), the second starts while it holds the
        # lock. Both are first runs: neither may crash making the state directory.
        with ThreadPoolExecutor(2) as pool:
            slow = pool.submit(ns.module, first, wrap=["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync",
                                                       "-e", "inject=fsync:delay_enter=150000"])
            ns.sh(LOCKED, STATE_DIR + "/sysctl.lock")
            fast = pool.submit(ns.module, second)
            a, b = slow.result(), fast.result()
        assert not a.get("failed") and not b.get("failed"), (a, b)
        # b planned after a's last write: it found a's value, not the original, and ran last.
        original = pristine["runtime"]["net.ipv4.tcp_keepalive_time"]
        assert a["applied"]["net.ipv4.tcp_keepalive_time"] == {"before": original, "after": "400"}
        assert b["applied"]["net.ipv4.tcp_keepalive_time"] == {"before": "400", "after": "500"}
        assert a["recovered"] is None and b["recovered"] is None
        assert ns.snapshot()["runtime"]["net.ipv4.tcp_keepalive_time"] == "500"

        # Many first runs at once (the state directory made by whichever comes first): all succeed.
        for name in ("b", "a"):  # the later profile first: each gives back what it found
            assert not ns.module(dict(name=name, state="absent")).get("failed")
        assert ns.snapshot()["runtime"] == pristine["runtime"]
        ns.sh("test ! -e %s" % STATE_DIR)  # the last absent left no trace, not even the state directory
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(ns.module, [dict(name="p%d" % i, settings={"net.ipv4.tcp_fin_timeout": 40 + i})
                                                for i in range(4)]))
        assert all(not r.get("failed") for r in results), results
        # One after the other: each planned from what the one before it left, so the values found before are the
        # original and the values of all runs but the last.
        befores = sorted(r["applied"]["net.ipv4.tcp_fin_timeout"]["before"] for r in results)
        last = ns.snapshot()["runtime"]["net.ipv4.tcp_fin_timeout"]
        assert befores == sorted([pristine["runtime"]["net.ipv4.tcp_fin_timeout"]] + [str(40 + i) for i in range(4) if str(40 + i) != last])
    finally:
        ns.close()


@skip_unless_usable
def test_a_held_lock_fails_the_run_with_the_holders_pid(tmp_path):
    ns = Namespace(str(tmp_path))
    try:
        before = _managed(ns.snapshot())
        ns.sh("mkdir -p %s" % STATE_DIR)
        # flock(1) holds the lock the way another run would (flock(2) on the same file), in a session of its own.
        holder = subprocess.Popen(ns.enter(["flock", STATE_DIR + "/sysctl.lock", "sleep", "60"]), start_new_session=True)
        try:
            ns.sh(LOCKED, STATE_DIR + "/sysctl.lock")
            started = time.monotonic()
            out = ns.module(dict(FIRST, lock_timeout=1))
            waited = time.monotonic() - started
        finally:
            os.killpg(holder.pid, 9)
            holder.wait()
        assert out["failed"] is True and out["lock"] == STATE_DIR + "/sysctl.lock" and out["lock_holder_pid"] == holder.pid, out
        assert out["msg"] == ("nothing changed: another run of linuxnet.tcp.sysctl_profile holds the lock %s/sysctl.lock (pid %d) "
                              "for more than lock_timeout=1 s" % (STATE_DIR, holder.pid))
        assert waited >= 1
        assert _managed(ns.snapshot())["runtime"] == before["runtime"]
        # The lock file the holder left is taken over by the next run, which removes it at the end.
        result = ns.module(FIRST)
        assert result["changed"] is True and STATE_DIR + "/sysctl.lock" not in ns.snapshot()["files"]
    finally:
        ns.close()
