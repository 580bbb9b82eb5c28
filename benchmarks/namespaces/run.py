# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cost of tcp_facts namespaces=all: the scan of N network namespaces, against one namespace and a shell loop.

Creates N namespaces (`ip netns add lntcp-bench-ns-...`), each with a process holding a small socket table on its
own loopback (a client-side TIME_WAIT storm in one in five, a few ESTABLISHED pairs in the others), runs, in turn:

- the module as Ansible runs it (`python -m ...tcp_facts ARGS`), namespaces=current;
- the same with namespaces=all;
- the loop a user would write instead: `ip netns exec NS ss -tan` for each namespace;

and prints medians over the rounds, the cost per namespace ((all - current) / N) and the machine load. The
storms talk to loopback only, are bounded, and stop by themselves; every namespace is deleted at the end.

    .venv/bin/python benchmarks/namespaces/run.py --namespaces 50 --rounds 5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
STORM = os.path.join(ROOT, "tests", "integration", "_storm.py")


def timed(argv, env=None):
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode:
        raise SystemExit("%s failed: %s" % (" ".join(argv[:4]), (proc.stderr or proc.stdout)[-2000:]))
    return elapsed, proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("benchmarks/namespaces: needs root (ip netns); skipped")
        return
    if not 1 <= args.namespaces <= 200:
        raise SystemExit("--namespaces is bounded to 1..200")
    tag = uuid.uuid4().hex[:6]
    names = ["lntcp-bench-ns-%s-%02d" % (tag, i) for i in range(args.namespaces)]
    holders = []
    args_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    args_file.close()
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, LC_ALL="C")
    try:
        for index, name in enumerate(names):
            subprocess.run(["ip", "netns", "add", name], check=True)
            subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
            storm = ["--time-wait", "2000"] if index % 5 == 0 else ["--established", "20"]
            holder = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, STORM, "--hold", "900"] + storm,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            holders.append(holder)
            json.loads(holder.stdout.readline())
        load_before = os.getloadavg()
        results = {"current": [], "all": [], "ss loop": []}
        found = None
        for _round in range(args.rounds):
            for kind in ("current", "all"):
                with open(args_file.name, "w") as handle:
                    json.dump({"ANSIBLE_MODULE_ARGS": {"namespaces": kind}}, handle)
                elapsed, out = timed([sys.executable, "-m", "ansible_collections.linuxnet.tcp.plugins.modules.tcp_facts",
                                      args_file.name], env)
                results[kind].append(elapsed)
                if kind == "all":
                    found = json.loads(out)["ansible_facts"]["tcp"]["namespaces_scan"]
            started = time.monotonic()
            for name in names:
                timed(["ip", "netns", "exec", name, "ss", "-tan"])
            results["ss loop"].append(time.monotonic() - started)
        load_after = os.getloadavg()
        med = dict((k, statistics.median(v)) for k, v in results.items())
        print("tcp_facts namespaces=all, %d namespaces of this benchmark (%d found on the host, %d reported), %d rounds"
              % (args.namespaces, found["found"], found["reported"], args.rounds))
        print("| run | median wall (s) | min (s) |")
        print("|---|--:|--:|")
        for kind in ("current", "all", "ss loop"):
            label = {"current": "tcp_facts, namespaces=current", "all": "tcp_facts, namespaces=all",
                     "ss loop": "ip netns exec NS ss -tan, every namespace"}[kind]
            print("| %s | %.3f | %.3f |" % (label, med[kind], min(results[kind])))
        per = (med["all"] - med["current"]) / max(found["reported"], 1)
        print("cost per namespace: %.1f ms ((all - current) / %d namespaces read); scan duration in the module %.0f ms"
              % (per * 1000, found["reported"], found["duration_ms"]))
        print("load average before %.2f %.2f %.2f, after %.2f %.2f %.2f (2 cores)" % (load_before + load_after))
    finally:
        for holder in holders:
            holder.stdin.close()
        for holder in holders:
            try:
                holder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                holder.kill()
        for name in names:
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
        os.unlink(args_file.name)


if __name__ == "__main__":
    main()
