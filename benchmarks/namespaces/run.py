# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cost of tcp_facts namespaces=all over N network namespaces, against the host alone and a loop of `ss`.

For each size (default 50 and 250) it makes that many namespaces (lab.py: each with one process holding a few
dozen sockets, one in five a TIME_WAIT storm of --storm sockets renewed before every round, one in five a
CLOSE_WAIT leak and a queued listener whose owners must be found) and runs, each round, in an order that turns from round to round:

- the module as Ansible runs it (`python -m ...tcp_facts ARGS`), namespaces=current;
- the same with namespaces=all (namespaces_limit above the count, so every namespace is read), netlink backend;
- the same with backend=proc (the fallback: /proc/net/tcp{,6} of each namespace);
- the loop a user would write instead: `ip netns exec NS ss -tan` for each namespace of the lab, right after
  namespaces=all: the per-state counts of each namespace must be equal, TIME_WAIT and FIN_WAIT2 in ss at most the
  module's (they expire in between; the verdict says in how many namespaces they were not);
- the kernel floor: one bare sock_diag walk per namespace, two at a time, nothing parsed;
- with --baseline REF, namespaces=all of the collection as it was at git commit REF (before/after).

Each size runs twice by default (--hash): with the namespaces sharing the kernel's established hash table, as on a
Kubernetes node, where each walk visits the sockets of every namespace, and with a table of their own.

It prints a table per size: the medians over the rounds, the cost per namespace ((all - current) / namespaces read),
the loop's time over the module's, the module's peak RSS (wait4), the sockets it counted and the machine load.
The storms talk to loopback only, are bounded, and stop by themselves; every namespace is deleted at the end.

    PYTHONPATH=.build/collections .venv/bin/python benchmarks/namespaces/run.py --namespaces 50 250 --rounds 5 [--hash shared own] [--baseline 55148dd]

(PYTHONPATH makes this checkout importable as ansible_collections.linuxnet.tcp, as `make bench` does, for the
in-process kernel floor.)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import resource
import tempfile
import threading
import time

from lab import Lab

try:
    from ansible_collections.linuxnet.tcp.plugins.module_utils._host.netns import entered
    from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import sockets
except ImportError as exc:  # run by hand without the collection on PYTHONPATH: say how, not a traceback
    raise SystemExit("benchmarks/namespaces/run.py: %s; run it with PYTHONPATH=.build/collections after `make link`, "
                     "as `make bench` does" % exc) from exc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
MODULE = "ansible_collections.linuxnet.tcp.plugins.modules.tcp_facts"
TARGET_PER_NAMESPACE_MS = 3.0
TARGET_LOOP_RATIO = 5.0
TARGET_RSS_MB = 80.0
OWN_HASH = 4096  # established hash entries of each namespace with --hash own: ample for the 2,000-socket storms


# `ss -tan` state names -> tcp_facts state names
SS_STATES = {"ESTAB": "ESTABLISHED", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV", "FIN-WAIT-1": "FIN_WAIT1",
             "FIN-WAIT-2": "FIN_WAIT2", "TIME-WAIT": "TIME_WAIT", "UNCONN": "CLOSE", "CLOSE-WAIT": "CLOSE_WAIT",
             "LAST-ACK": "LAST_ACK", "LISTEN": "LISTEN", "CLOSING": "CLOSING"}


def run(argv, env=None):
    """Run one command, which must succeed (its CPU time counts in RUSAGE_CHILDREN); returns its stdout."""
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        raise SystemExit("%s failed: %s" % (" ".join(argv[:4]), (proc.stderr or proc.stdout)[-2000:]))
    return proc.stdout


def ss_states(text):
    """Per-state counts of `ss -tan` output (header skipped)."""
    counts = {}
    for line in text.splitlines()[1:]:
        state = SS_STATES.get(line.split()[0]) if line.strip() else None
        if state:
            counts[state] = counts.get(state, 0) + 1
    return counts


# States whose sockets leave by themselves between namespaces=all and the ss loop that follows it (seconds apart):
# TIME_WAIT after 60 s, the CLOSE_WAIT leaks' orphaned FIN_WAIT2 peers after tcp_fin_timeout. Nothing in the lab
# makes new ones between the two, so ss may count fewer, never more.
EXPIRING = ("TIME_WAIT", "FIN_WAIT2")


def differences(docs, loop):
    """The namespaces whose per-state counts in the module's documents (``docs``: name -> states) differ from those
    of `ss` run inside them right after (``loop``: name -> counts), as {name: {state: (module, ss)}}: any
    difference, except fewer sockets in ss for the EXPIRING states."""
    out = {}
    for name, counts in loop.items():
        states = docs[name]
        differ = {}
        for state in SS_STATES.values():
            ours, theirs = states.get(state) or 0, counts.get(state, 0)
            if ours != theirs and not (state in EXPIRING and theirs < ours):
                differ[state] = (ours, theirs)
        if differ:
            out[name] = differ
    return out


def module(args, env, args_path):
    """One module run as Ansible runs it: (seconds, tcp facts, peak RSS in bytes, CPU seconds of the process)."""
    with open(args_path, "w", encoding="utf-8") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    started = time.monotonic()
    with subprocess.Popen([sys.executable, "-m", MODULE, args_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env) as proc:
        out, err = proc.stdout.read(), proc.stderr.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    if proc.returncode:
        raise SystemExit("tcp_facts %s failed: %s" % (args, (err or out)[-2000:]))
    return elapsed, json.loads(out)["ansible_facts"]["tcp"], usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def kernel_floor(names, threads=2):
    """(seconds, CPU seconds) to walk the socket table once per namespace: one sock_diag dump of every state but
    LISTEN (both families) per namespace, two namespaces at a time, what it returns received and dropped. The
    established hash is shared by every namespace, so each walk visits the sockets of all of them: the part of a
    scan that no code in user space can make smaller."""
    pending = list(names)
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                if not pending:
                    return
                name = pending.pop()
            with entered("/run/netns/" + name):
                sockets.NetlinkBackend(parts=1).dump([(sockets.ALL_STATES & ~sockets.LISTEN_BIT, 1)],
                                                     lambda _data, _size, _stride: None)
    started, cpu = time.monotonic(), cpu_self()
    helpers = [threading.Thread(target=work) for _index in range(threads - 1)]
    for helper in helpers:
        helper.start()
    work()
    for helper in helpers:
        helper.join()
    return time.monotonic() - started, cpu_self() - cpu


def cpu_self():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def baseline_collections(ref, work):
    """The collection as it was at git commit ``ref``, under work/ansible_collections/linuxnet/tcp."""
    target = os.path.join(work, "ansible_collections", "linuxnet", "tcp")
    os.makedirs(target)
    archive = subprocess.run(["git", "-C", ROOT, "archive", ref], stdout=subprocess.PIPE, check=True).stdout
    subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
    return work


def measure(count, rounds, prefix, storm, own_hash=0, baseline=None):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, LC_ALL="C")
    kinds = ("current", "all", "all, proc", "ss loop", "floor") + (("before",) if baseline else ())
    results = dict((kind, []) for kind in kinds)
    cpu = dict((kind, []) for kind in kinds)
    rss = dict((kind, 0) for kind in kinds)
    with tempfile.TemporaryDirectory(prefix="lntcp-bench-ns-") as work, Lab(count, prefix, storm, own_hash=own_hash) as lab:
        args_path = os.path.join(work, "args.json")
        limit = 5000  # every namespace of the lab, and whatever else the host has
        load_before = os.getloadavg()
        scan = counted = states = None
        unequal = []  # per round: namespaces whose counts differ from ss run inside them
        modes = {"current": {}, "all": {"namespaces": "all", "namespaces_limit": limit},
                 "all, proc": {"namespaces": "all", "namespaces_limit": limit, "backend": "proc"},
                 "before": {"namespaces": "all", "namespaces_limit": limit}}
        envs = {"before": dict(env, PYTHONPATH=baseline[1]) if baseline else None}
        # The ss loop runs right after namespaces=all (its counts are compared with the module's); the other runs
        # take turns at coming first after the storms are renewed, so that none is always the one that meets the
        # kernel still busy with them.
        units = [("all", "ss loop"), ("floor",), ("before",), ("current",), ("all, proc",)]
        for number in range(rounds):
            lab.refresh()  # TIME_WAIT lasts 60 s: a round takes about 20 s at 250 namespaces
            turn = units[number % len(units):] + units[:number % len(units)]
            for kind in [kind for unit in turn for kind in unit]:
                if kind not in kinds:
                    continue
                if kind == "ss loop":
                    started, before = time.monotonic(), cpu_children()
                    outputs = [run(["ip", "netns", "exec", name, "ss", "-tan"], env) for name in lab.names]
                    results[kind].append(time.monotonic() - started)
                    cpu[kind].append(cpu_children() - before)
                    # Right after namespaces=all (the storms were renewed before both, and TIME_WAIT lasts 60 s).
                    differ = differences(states, dict((name, ss_states(text)) for name, text in zip(lab.names, outputs)))
                    unequal.append(len(differ))
                    if differ:
                        print("namespaces=all and ss differ in %d namespaces, e.g. %s" % (
                            len(differ), sorted(differ.items())[:3]), flush=True)
                    continue
                if kind == "floor":
                    elapsed, used = kernel_floor(lab.names)
                    results[kind].append(elapsed)
                    cpu[kind].append(used)
                    continue
                elapsed, tcp, peak, used = module(modes[kind], envs.get(kind) or env, args_path)
                results[kind].append(elapsed)
                cpu[kind].append(used)
                rss[kind] = max(rss[kind], peak)
                if kind == "all":
                    scan = tcp["namespaces_scan"]
                    ours = [doc for doc in tcp["namespaces"] if doc["netns_name"] in lab.names]
                    if len(ours) != count:
                        raise SystemExit("namespaces=all reported %d of the %d namespaces made" % (len(ours), count))
                    counted = sum(doc["states"]["total"] for doc in ours)
                    states = dict((doc["netns_name"], doc["states"]) for doc in ours)
        load_after = os.getloadavg()
    med = dict((kind, statistics.median(values)) for kind, values in results.items())
    med_cpu = dict((kind, statistics.median(values)) for kind, values in cpu.items())
    read = scan["reported"]
    modules = [kind for kind in ("all", "all, proc", "before") if kind in kinds]
    per = dict((kind, (med[kind] - med["current"]) / read) for kind in modules)
    per["ss loop"], per["floor"] = med["ss loop"] / count, med["floor"] / count
    per_cpu = dict((kind, (med_cpu[kind] - med_cpu["current"]) / read) for kind in modules)
    per_cpu["ss loop"], per_cpu["floor"] = med_cpu["ss loop"] / count, med_cpu["floor"] / count
    print("\n%d namespaces made, %s (%d read by namespaces=all, %d sockets in ours), %d rounds, load %.2f %.2f %.2f "
          "before, %.2f %.2f %.2f after (2 CPUs, shared machine)" % (
              (count, "each with a hash table of its own" if own_hash else "sharing the kernel's hash table", read,
               counted, rounds) + load_before + load_after))
    print("| run | median (s) | min (s) | per namespace (ms) | ss loop / run | CPU (s) | CPU per namespace (ms) "
          "| ss loop CPU / run | peak RSS (MB) |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    labels = {"current": "tcp_facts, namespaces=current", "all": "tcp_facts, namespaces=all",
              "all, proc": "tcp_facts, namespaces=all, backend=proc",
              "ss loop": "`ip netns exec NS ss -tan`, every namespace",
              "floor": "kernel floor: one sock_diag walk per namespace, 2 threads",
              "before": "before: tcp_facts, namespaces=all at %s" % (baseline[0] if baseline else "")}
    for kind in kinds:
        print("| %s | %.3f | %.3f | %s | %s | %.3f | %s | %s | %s |" % (
            labels[kind], med[kind], min(results[kind]), "%.2f" % (per[kind] * 1000) if kind in per else "",
            "%.1fx" % (med["ss loop"] / med[kind]) if kind not in ("ss loop", "floor") else "", med_cpu[kind],
            "%.2f" % (per_cpu[kind] * 1000) if kind in per_cpu else "",
            "%.1fx" % (med_cpu["ss loop"] / med_cpu[kind]) if kind not in ("ss loop", "floor") else "",
            "%.0f" % (rss[kind] / 2**20) if rss[kind] else ""))
    per_ms, loop_ratio, rss_mb = per["all"] * 1000, med["ss loop"] / med["all"], rss["all"] / 2**20
    same = ("in all %d namespaces, every round" % count if not any(unequal)
            else "NOT in %s of %d namespaces (per round)" % (unequal, count))
    verdicts = [
        "cost per namespace %.2f ms (target at most %.0f ms): %s; the kernel's walk alone %.2f ms"
        % (per_ms, TARGET_PER_NAMESPACE_MS, "met" if per_ms <= TARGET_PER_NAMESPACE_MS else "NOT met", per["floor"] * 1000),
        "ss loop / namespaces=all %.1fx (target at least %.0fx at 250): %s; no scan run as a module can pass %.1fx "
        "here: the loop over the module's start alone (namespaces=current, %.3f s) plus the kernel's walks (%.3f s)"
        % (loop_ratio, TARGET_LOOP_RATIO, "met" if loop_ratio >= TARGET_LOOP_RATIO else "NOT met",
           med["ss loop"] / (med["current"] + med["floor"]), med["current"], med["floor"]),
        "peak RSS %.0f MB (target under %.0f MB): %s" % (rss_mb, TARGET_RSS_MB, "met" if rss_mb < TARGET_RSS_MB else "NOT met"),
        "per-state counts equal to `ss -tan` inside each namespace, run right after (TIME_WAIT and FIN_WAIT2 "
        "at most the module's: they expire between the two): %s" % same,
    ]
    print("\n".join(verdicts))
    return {"namespaces": count, "own_hash": own_hash, "read": read, "sockets": counted, "rounds": rounds, "median": med,
            "median_cpu": med_cpu,
            "min": dict((kind, min(values)) for kind, values in results.items()), "per_namespace_ms":
            dict((kind, value * 1000) for kind, value in per.items()), "peak_rss": rss,
            "load_before": load_before, "load_after": load_after, "unequal_to_ss": unequal}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--namespaces", type=int, nargs="+", default=[50, 250])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--storm", type=int, default=2000, help="TIME_WAIT sockets in one namespace of five")
    parser.add_argument("--prefix", default="lntcp-bench-ns-", help="name prefix of the namespaces made")
    parser.add_argument("--baseline", help="also run namespaces=all with the collection at this git commit (before/after)")
    parser.add_argument("--hash", nargs="+", choices=["shared", "own"], default=["shared", "own"],
                        help="shared: the namespaces share the kernel's established hash, as on a Kubernetes node; own: "
                             "each has one of its own (net.ipv4.tcp_child_ehash_entries=%d of a parent namespace)" % OWN_HASH)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("benchmarks/namespaces: needs root (ip netns); skipped")
        return
    print("tcp_facts namespaces=all against a loop of `ss`; machine: %d CPUs, load %.2f %.2f %.2f"
          % ((os.cpu_count(),) + os.getloadavg()), flush=True)
    with tempfile.TemporaryDirectory(prefix="lntcp-bench-ns-base-") as base:
        baseline = (args.baseline, baseline_collections(args.baseline, base)) if args.baseline else None
        runs = [measure(count, args.rounds, args.prefix, args.storm, OWN_HASH if kind == "own" else 0, baseline)
                for kind in args.hash for count in args.namespaces]
    results = os.path.join(ROOT, "benchmarks", "results")
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "namespaces.json"), "w", encoding="utf-8") as handle:
        json.dump(runs, handle, indent=1)


if __name__ == "__main__":
    main()
