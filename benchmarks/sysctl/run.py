"""Benchmark: one sysctl_profile run against a loop of ansible.posix.sysctl over the same 16 keys (run as root).

    make bench            # or: .venv/bin/python benchmarks/sysctl/run.py [--runs 5]

Each trial gets fresh network namespaces (lntcp-bench-*, kernel defaults) and runs ansible-playbook
with the local connection inside ``ip netns exec NS unshare -m``, with scratch directories
bind-mounted over /etc/sysctl.d, /usr/lib/sysctl.d and /var/lib, so only namespaced net.* keys of
the throwaway namespace and scratch files are written. Per method, one playbook runs the task twice:
the first run (16 changes) and the idempotent re-run. Task durations come from the
ansible.posix.json callback; the playbook's own wall time is measured too. Medians over --runs.
The posix loop uses the options of the common role pattern (dev-sec os_hardening): a drop-in file,
``sysctl_set: true`` and ``reload: true``. Results: a Markdown table on stdout and
benchmarks/results/sysctl.json.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
BIN = os.path.dirname(sys.executable)
TARGET_PYTHON = "/usr/bin/python3"
MOUNT_SCRIPT = ('mount --bind "$1" /etc/sysctl.d && mount --bind "$2" /usr/lib/sysctl.d && mount --bind "$3" /var/lib && '
                'shift 3 && exec "$@"')

# 16 per-netns keys, every value different from a fresh namespace's default on 6.18.
PROFILE = {
    "net.ipv4.tcp_keepalive_time": 600,
    "net.ipv4.tcp_keepalive_intvl": 30,
    "net.ipv4.tcp_keepalive_probes": 5,
    "net.ipv4.tcp_fin_timeout": 30,
    "net.ipv4.tcp_tw_reuse": 1,
    "net.ipv4.ip_local_port_range": "10240 65535",
    "net.ipv4.tcp_max_syn_backlog": 8192,
    "net.ipv4.tcp_max_tw_buckets": 262144,
    "net.ipv4.tcp_slow_start_after_idle": 0,
    "net.ipv4.tcp_notsent_lowat": 16384,
    "net.ipv4.tcp_mtu_probing": 1,
    "net.ipv4.tcp_rmem": "4096 131072 16777216",
    "net.ipv4.tcp_wmem": "4096 16384 16777216",
    "net.ipv4.tcp_synack_retries": 3,
    "net.ipv4.tcp_retries2": 8,
    "net.core.somaxconn": 16384,
}


def profile_task(label):
    return {"name": label, "linuxnet.tcp.sysctl_profile": {"name": "bench", "settings": PROFILE}}


def posix_task(label):
    args = {"name": "{{ item.key }}", "value": "{{ item.value }}", "sysctl_file": "/etc/sysctl.d/90-bench.conf",
            "sysctl_set": True, "reload": True}
    return {"name": label, "ansible.posix.sysctl": args, "loop": "{{ bench_profile | dict2items }}"}


METHODS = [
    ("linuxnet.tcp.sysctl_profile (one task, 16 keys)", profile_task),
    ("ansible.posix.sysctl loop (16 iterations, sysctl_set + reload)", posix_task),
]


def seconds(stamp):
    return datetime.datetime.strptime(stamp.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def trial(make_task, workdir):
    """Fresh netns + scratch dirs; run the task twice in one playbook. Returns (first, rerun, playbook) seconds."""
    name = "lntcp-bench-%s" % uuid.uuid4().hex[:8]
    dirs = [os.path.join(workdir, name, d) for d in ("etc", "usrlib", "varlib")]
    for path in dirs:
        os.makedirs(path)
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "vars": {"bench_profile": PROFILE},
             "tasks": [make_task("first run"), make_task("re-run")]}]
    book = os.path.join(workdir, name, "play.yml")
    with open(book, "w") as handle:
        json.dump(play, handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1")
    argv = ["ip", "netns", "exec", name, "unshare", "-m", "--propagation", "private", "sh", "-c", MOUNT_SCRIPT, "sh"] + dirs + [
        os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-e", "ansible_python_interpreter=" + TARGET_PYTHON, book]
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        start = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=600)
        wall = time.monotonic() - start
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
    doc = json.loads(proc.stdout[proc.stdout.find("{"):])
    tasks = doc["plays"][0]["tasks"]
    out = []
    for task in tasks:
        result = task["hosts"]["localhost"]
        if result.get("failed"):
            raise SystemExit("task failed: %s" % json.dumps(result)[:2000])
        dur = task["task"]["duration"]
        out.append((seconds(dur["end"]) - seconds(dur["start"]), bool(result.get("changed"))))
    assert out[0][1] is True and out[1][1] is False, out
    return out[0][0], out[1][0], wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark creates network namespaces")
    rows = []
    with tempfile.TemporaryDirectory(prefix="lntcp-bench-sysctl-") as workdir:
        samples = dict((method[0], []) for method in METHODS)
        for _run in range(args.runs):
            for label, make_task in METHODS:  # interleaved, so drift in machine load hits both alike
                samples[label].append(trial(make_task, workdir))
    for label in (method[0] for method in METHODS):
        first, rerun, wall = zip(*samples[label])
        rows.append({"method": label, "first_run_s": statistics.median(first), "rerun_s": statistics.median(rerun),
                     "playbook_wall_s": statistics.median(wall), "first_min_s": min(first), "rerun_min_s": min(rerun)})
    base = rows[1]
    print("16 keys, %d runs per method, medians (min); kernel %s, %d CPUs, local connection, target %s\n"
          % (args.runs, platform.release(), os.cpu_count(), TARGET_PYTHON))
    print("| method | first run (s) | idempotent re-run (s) | playbook wall, both runs (s) | first-run ratio | re-run ratio |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        row["first_ratio"] = row["first_run_s"] / base["first_run_s"]
        row["rerun_ratio"] = row["rerun_s"] / base["rerun_s"]
        print("| %s | %.2f (%.2f) | %.2f (%.2f) | %.2f | %.2fx | %.2fx |" % (
            row["method"], row["first_run_s"], row["first_min_s"], row["rerun_s"], row["rerun_min_s"], row["playbook_wall_s"],
            row["first_ratio"], row["rerun_ratio"]))
    results = os.path.join(ROOT, "benchmarks", "results")
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "sysctl.json"), "w") as handle:
        json.dump({"runs": args.runs, "kernel": platform.release(), "keys": PROFILE, "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
