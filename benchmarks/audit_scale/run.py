"""Benchmark: the audit role over 100, 1,000 and 5,000 simulated hosts, included each way users include it (run as root).

    make bench     # or: flock /tmp/lntcp-bench.lock .venv/bin/python benchmarks/audit_scale/run.py
                   #     [--hosts 100 1000 5000] [--way-hosts 1000 5000] [--ways playbook roles ...] [--forks 20]
                   #     [--baseline 16f1158] [--baseline-ways playbook roles] [--screenshot docs/fleet-report.png]

First the benchmark records its own facts: in two throwaway network namespaces (tests/unit/fixtures/audit/
record_fixtures.py does the recording), a "storm" host (a real client-side TIME_WAIT storm of 9,000 sockets through
a narrowed port range, a CLOSE_WAIT leak, an overflowing accept queue, a boot file that drifts from the runtime) and
a "quiet" host (25 established connections to a local service). Then, per fleet size, it writes an inventory of
local-connection hosts in groups web/db/cache/lb (every tenth host a storm host, the others quiet) and a jsonfile
fact cache holding those facts (tests/fleet/simulated.py), and runs the audit with ``tcp_audit_gather: false`` and
the given forks, as a controller with a warm fact cache (AWX use_fact_cache) does, once per way of including the
role (WAYS below, docs/audit.md "Ways to include the role"):

- ``playbook``: ``ansible-playbook linuxnet.tcp.audit`` (import_role with rolespec_validate: false, the role's own
  check once for the play), at each of --hosts;
- ``roles``, ``import_role``, ``include_role``: a user's play that includes the role that way, with Ansible's own
  argument check (one task per host), at each of --way-hosts;
- ``floor``, ``floor, include_role``: the same play with a role that has the audit role's argument spec and no
  tasks, what Ansible's per-host check costs by itself (the floor of the ways above), at each of --way-hosts.

One more run (--gather-hosts, default 100) gathers for real: each host runs the two fact modules on this machine.

Measured per run: wall time, peak RSS of the ansible-playbook process (wait4) and of its whole process tree (sampled
every 0.2 s with psutil), CPU time of the process tree (user + system, less sensitive to other load than wall time),
per-host cost, the size of report.json/md/html, the tasks that ran per host (from profile_tasks) and the slowest
tasks, and the load average before and after. With --baseline REF the same fleet is also audited by the collection
as it was at git commit REF (for the "before" figures), the ways of --baseline-ways. Targets: 1,000 hosts in at most
20 s with forks 20 every way, or, where Ansible's per-host check alone makes that impossible, at most 1.5 times its
floor; 5,000 hosts in at most 5.5 times the 1,000-host time every way; report.html at 1,000 hosts under 400 KB.
Results: Markdown tables on stdout and benchmarks/results/audit_scale.json.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.dirname(sys.executable)
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
RESULTS = os.path.join(ROOT, "benchmarks", "results")
TARGET_1000 = 20.0
TARGET_FLOOR_RATIO = 1.5
TARGET_RATIO = 5.5
TARGET_HTML = 400 * 1024
KINDS = [("storm", 10), ("quiet", 1)]
FLOOR_ROLE = "lntcp_audit_argument_check"  # the floor: the audit role's argument spec, no tasks
PLAY = """\
- name: Audit, the role included with {how}
  hosts: all
  gather_facts: false
{body}
"""
# way -> (what it is, the play's body; None: the collection's playbook)
WAYS = {
    "playbook": ("the collection's playbook (import_role, rolespec_validate: false)", None),
    "roles": ("roles: [linuxnet.tcp.audit]", "  roles:\n    - linuxnet.tcp.audit"),
    "import_role": ("import_role", "  tasks:\n    - ansible.builtin.import_role:\n        name: linuxnet.tcp.audit"),
    "include_role": ("include_role", "  tasks:\n    - ansible.builtin.include_role:\n        name: linuxnet.tcp.audit"),
    "floor": ("floor: roles: [a role with the same argument spec and no tasks]",
              "  roles:\n    - %s" % FLOOR_ROLE),
    "floor, include_role": ("floor: include_role of that role",
                            "  tasks:\n    - ansible.builtin.include_role:\n        name: %s" % FLOOR_ROLE),
}
FLOORS = {"roles": "floor", "import_role": "floor", "include_role": "floor, include_role"}


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


simulated = load("linuxnet_tcp_simulated", os.path.join(ROOT, "tests", "fleet", "simulated.py"))
recorder = load("linuxnet_tcp_record_fixtures", os.path.join(ROOT, "tests", "unit", "fixtures", "audit", "record_fixtures.py"))
chromium = load("linuxnet_tcp_chromium", os.path.join(ROOT, "tests", "integration", "_chromium.py"))


def record_documents(prefix):
    """{storm, quiet} facts recorded in real namespaces made for the purpose (``prefix``..., removed afterwards)."""
    quiet = {"sysctl": {}, "boot": "",
             "storms": [["established", "--port", "8443", "--name", "app-server", "--count", "25", "--duration", "60"]]}
    return {"storm": recorder.record("bench-storm", recorder.CASES["storm"], prefix),
            "quiet": recorder.record("bench-quiet", quiet, prefix)}


def load_text():
    return " ".join("%.2f" % value for value in os.getloadavg())


def busiest_others(limit=3):
    """The processes (not ours) using the most CPU right now, to say what else ran."""
    mine = {os.getpid()} | {p.pid for p in psutil.Process().children(recursive=True)}
    procs = []
    for proc in psutil.process_iter(["pid", "name"]):
        try:
            if proc.pid not in mine:
                proc.cpu_percent(None)
                procs.append(proc)
        except psutil.Error:
            pass
    time.sleep(1.0)
    usage = []
    for proc in procs:
        try:
            usage.append((proc.cpu_percent(None), proc.info["name"]))
        except psutil.Error:
            pass
    return ["%s %.0f%%" % (name, cpu) for cpu, name in sorted(usage, reverse=True)[:limit] if cpu >= 5]


class TreeRss(threading.Thread):
    """Peak of the summed RSS of a process and its descendants, sampled."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self):
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self.done.wait(0.2):
            total = 0
            try:
                for proc in [root] + root.children(recursive=True):
                    total += proc.memory_info().rss
            except psutil.Error:
                continue
            self.peak = max(self.peak, total)


def playbook(work, way, collections):
    """The playbook that includes the role the ``way`` way (and the floor role it needs), written under ``work``."""
    _what, body = WAYS[way]
    if body is None:
        return "linuxnet.tcp.audit"
    if FLOOR_ROLE in body:
        meta = os.path.join(work, "roles", FLOOR_ROLE, "meta")
        os.makedirs(meta, exist_ok=True)
        shutil.copy(os.path.join(collections, "ansible_collections", "linuxnet", "tcp", "roles", "audit", "meta",
                                 "argument_specs.yml"), meta)
    path = os.path.join(work, "play-%s.yml" % way.replace(", ", "-"))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(PLAY.format(how=way, body=body))
    return path


def audit(work, collections, forks, extra, way="playbook"):
    """One ansible-playbook run; returns (seconds, main process peak RSS in bytes, tree peak RSS, stdout, CPU seconds
    of the process tree)."""
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_COLLECTIONS_PATH=collections,
               ANSIBLE_CONFIG=os.path.join(work, "ansible.cfg"), ANSIBLE_FORKS=str(forks), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.profile_tasks", ANSIBLE_ROLES_PATH=os.path.join(work, "roles"),
               LC_ALL="C.UTF-8")
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", os.path.join(work, "inventory.ini"),
            playbook(work, way, collections), "-e", json.dumps(extra)]
    out = open(os.path.join(work, "run.log"), "w+", encoding="utf-8")  # pylint: disable=consider-using-with
    started = time.monotonic()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(argv, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)  # pylint: disable=consider-using-with
    sampler = TreeRss(proc.pid)
    sampler.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.done.set()
    sampler.join()
    out.seek(0)
    text = out.read()
    out.close()
    if proc.returncode != 0:
        raise RuntimeError("ansible-playbook failed (rc=%d):\n%s" % (proc.returncode, text[-5000:]))
    return seconds, usage.ru_maxrss * 1024, sampler.peak, text, cpu


def task_profile(text, hosts):
    """(tasks that ran per host, [(task, seconds)] slowest first) from profile_tasks and the recap."""
    recap = re.findall(r"^(.+?) -{2,} ([\d.]+)s$", text, re.M)
    last = re.escape(hosts[-1])
    per_host = len(re.findall(r"^(?:ok|changed|skipping|included): \[%s\]" % last, text, re.M))
    per_host += len(re.findall(r"^included: \S+ for (?:.*, )?%s(?:,|$)" % last, text, re.M))  # include_role, include_tasks
    return per_host, [(name.strip(), float(sec)) for name, sec in recap]


def baseline_collections(ref, work):
    """The collection as it was at git commit ``ref``, installed under work/collections."""
    target = os.path.join(work, "collections", "ansible_collections", "linuxnet", "tcp")
    os.makedirs(target)
    archive = subprocess.run(["git", "-C", ROOT, "archive", ref], stdout=subprocess.PIPE, check=True).stdout
    subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
    return os.path.join(work, "collections")


def measure(size, documents, forks, collections, work, extra=None, way="playbook"):
    hosts = simulated.plan(size, KINDS)
    if not os.path.exists(os.path.join(work, "inventory.ini")):
        simulated.write(work, hosts, documents)
    report_dir = os.path.join(work, "report")
    shutil.rmtree(report_dir, ignore_errors=True)
    before = load_text()
    seconds, rss_main, rss_tree, text, cpu = audit(work, collections, forks,
                                                   dict({"tcp_audit_report_dir": report_dir}, **(extra or {})), way)
    per_host, slowest = task_profile(text, [h for h, _g, _k in hosts])
    sizes = {name: os.path.getsize(os.path.join(report_dir, "report." + name))
             for name in ("json", "md", "html") if os.path.exists(os.path.join(report_dir, "report." + name))}
    return {"hosts": size, "way": way, "seconds": seconds, "cpu": cpu, "rss_main": rss_main, "rss_tree": rss_tree,
            "sizes": sizes, "tasks_per_host": per_host, "slowest": slowest[:6], "load_before": before,
            "load_after": load_text(), "report_dir": report_dir}


def kib(value):
    return "%.0f KB" % (value / 1024) if value else "-"


def table(runs, label):
    lines = ["| %s | hosts | wall | CPU | per host | peak RSS (main / tree) | report.json | report.md | report.html | "
             "tasks per host | load before / after |" % label, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for run in runs:
        lines.append("| %s | %d | %.1f s | %.1f s | %.1f ms | %.0f / %.0f MB | %s | %s | %s | %d | %s / %s |" % (
            run["label"], run["hosts"], run["seconds"], run["cpu"], 1000 * run["seconds"] / run["hosts"],
            run["rss_main"] / 2**20, run["rss_tree"] / 2**20, kib(run["sizes"].get("json")), kib(run["sizes"].get("md")),
            kib(run["sizes"].get("html")), run["tasks_per_host"], run["load_before"], run["load_after"]))
    return lines


def verdicts(runs):
    """Targets per way: 1,000 hosts in TARGET_1000 seconds, or within TARGET_FLOOR_RATIO of its floor when the floor
    alone exceeds TARGET_1000 / TARGET_FLOOR_RATIO; 5,000 hosts within TARGET_RATIO times 1,000; report.html size."""
    done = dict(((run["way"], run["hosts"]), run) for run in runs if run["label"] == run["way"])
    lines = ["| way | hosts | wall | its floor | wall / floor | CPU / floor CPU | 5,000 / 1,000 hosts |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    out = []
    for way in WAYS:
        for size in sorted(size for name, size in done if name == way):
            run, floor = done[(way, size)], done.get((FLOORS.get(way), size))
            ratio = done[(way, 5000)]["seconds"] / done[(way, 1000)]["seconds"] if size == 5000 and (way, 1000) in done else None
            lines.append("| %s | %d | %.1f s | %s | %s | %s | %s |" % (
                way, size, run["seconds"], "%.1f s" % floor["seconds"] if floor else "-",
                "%.2fx" % (run["seconds"] / floor["seconds"]) if floor else "-",
                "%.2fx" % (run["cpu"] / floor["cpu"]) if floor else "-", "%.2fx" % ratio if ratio else "-"))
            if size == 1000:
                if run["seconds"] <= TARGET_1000 or floor is None:
                    out.append("%s: 1,000 hosts in %.1f s (target at most %.0f s): %s" % (
                        way, run["seconds"], TARGET_1000, "met" if run["seconds"] <= TARGET_1000 else "NOT met"))
                else:
                    out.append("%s: 1,000 hosts in %.1f s, over %.0f s; Ansible's per-host check alone (%s) takes %.1f s, "
                               "%.2fx of it (target at most %.1fx): %s" % (
                                   way, run["seconds"], TARGET_1000, FLOORS[way], floor["seconds"],
                                   run["seconds"] / floor["seconds"], TARGET_FLOOR_RATIO,
                                   "met" if run["seconds"] <= TARGET_FLOOR_RATIO * floor["seconds"] else "NOT met"))
                if way == "playbook":
                    out.append("report.html at 1,000 hosts %s (target under %s): %s" % (
                        kib(run["sizes"].get("html")), kib(TARGET_HTML),
                        "met" if run["sizes"].get("html", 0) < TARGET_HTML else "NOT met"))
            if ratio:
                out.append("%s: 5,000 hosts take %.2fx the 1,000-host time (target at most %.1fx): %s" % (
                    way, ratio, TARGET_RATIO, "met" if ratio <= TARGET_RATIO else "NOT met"))
    return lines, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[100, 1000, 5000], help="fleet sizes of the playbook")
    parser.add_argument("--ways", nargs="*", default=[way for way in WAYS if way != "playbook"], choices=list(WAYS),
                        help="other ways of including the role, and floors, measured at each of --way-hosts")
    parser.add_argument("--way-hosts", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--forks", type=int, default=20)
    parser.add_argument("--baseline", help="also audit with the collection at this git commit (before/after)")
    parser.add_argument("--baseline-hosts", type=int, default=1000)
    parser.add_argument("--baseline-ways", nargs="+", default=["playbook"], choices=list(WAYS))
    parser.add_argument("--screenshot", help="write a 1280x2000 screenshot of the 1,000-host report.html here")
    parser.add_argument("--gather-hosts", type=int, default=100,
                        help="also audit this many hosts with tcp_audit_gather: true (each runs the two fact modules on "
                             "this machine over the local connection: the per-host task a gathering run costs); 0: no")
    parser.add_argument("--prefix", default="lntcp-audit-rec-", help="name prefix of the two namespaces it records in")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("run as root: the facts are recorded in network namespaces")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    others = busiest_others()
    print("machine: %s, %d CPUs, load %s; busiest other processes: %s" % (
        platform.node(), os.cpu_count(), load_text(), ", ".join(others) or "none"), flush=True)
    documents = record_documents(args.prefix)
    print("recorded: storm %d sockets (TIME_WAIT %d), quiet %d sockets" % (
        documents["storm"]["tcp"]["states"]["total"], documents["storm"]["tcp"]["states"]["TIME_WAIT"],
        documents["quiet"]["tcp"]["states"]["total"]), flush=True)
    runs, baseline = [], []
    with tempfile.TemporaryDirectory(prefix="lntcp-bench-audit-") as work:
        plan = [("playbook", size) for size in args.hosts] + [(way, size) for size in args.way_hosts for way in args.ways]
        for way, size in plan:
            # One fleet (inventory and fact cache) per size, shared by the ways.
            run = measure(size, documents, args.forks, COLLECTIONS, os.path.join(work, "fleet-%d" % size), way=way)
            run["label"] = way
            runs.append(run)
            print("%s, %d hosts: %.1f s (CPU %.1f s), load %s" % (way, size, run["seconds"], run["cpu"], run["load_after"]),
                  flush=True)
            if way == "playbook" and size == 1000 and args.screenshot:
                chromium.screenshot(os.path.join(run["report_dir"], "report.html"), args.screenshot)
                print("screenshot: %s" % args.screenshot, flush=True)
        if args.gather_hosts:
            run = measure(args.gather_hosts, documents, args.forks, COLLECTIONS, os.path.join(work, "gather"),
                          {"tcp_audit_gather": True, "ansible_python_interpreter": sys.executable})
            run["label"] = "playbook, gathering"
            runs.append(run)
            print("%d hosts gathering: %.1f s" % (args.gather_hosts, run["seconds"]), flush=True)
        if args.baseline:
            old = baseline_collections(args.baseline, os.path.join(work, "baseline"))
            for way in args.baseline_ways:
                run = measure(args.baseline_hosts, documents, args.forks, old,
                              os.path.join(work, "base-%d" % args.baseline_hosts), {"tcp_audit_report_facts": False}, way)
                run["label"] = "%s at %s" % (way, args.baseline)
                baseline.append(run)
                print("baseline %s, %s, %d hosts: %.1f s" % (args.baseline, way, args.baseline_hosts, run["seconds"]),
                      flush=True)
    lines = table(runs + baseline, "way")
    floor_lines, verdict_lines = verdicts(runs)
    print("\n".join([""] + lines + [""] + floor_lines + [""] + verdict_lines))
    for run in runs + baseline:
        print("\n%s, %d hosts, slowest tasks: %s" % (run["label"], run["hosts"], "; ".join(
            "%s %.1f s" % (name.replace("linuxnet.tcp.audit : ", ""), sec) for name, sec in run["slowest"])))
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "audit_scale.json"), "w", encoding="utf-8") as handle:
        json.dump({"started": started, "forks": args.forks, "cpus": os.cpu_count(), "busiest_others": others,
                   "runs": [{k: v for k, v in run.items() if k != "report_dir"} for run in runs + baseline]},
                  handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
