"""Benchmark: tcp_facts against ss, netstat and psutil on ~120k and ~230k-socket tables (run as root).

    make bench            # or: .venv/bin/python benchmarks/tcp_facts/run.py [--sizes 60000 115000] [--runs 5]

For each size, a fresh network namespace (lntcp-bench-*) gets a socket table built by build_table.py
(held open by its processes), then every method runs --runs times inside the namespace, as its own process:
wall time (median, min) and the peak RSS of that process (wait4 ru_maxrss). Ratios are against the
`ss -tan | awk` pipeline. The namespace and all holders are removed at the end, whatever happens.
Methods run round-robin (one of each per round). Results are printed as a Markdown table, with the load
average before and after, and written to benchmarks/results/tcp_facts.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
PY = sys.executable

GATHER = ("import json, sys, time; sys.path.insert(0, %r); "
          "from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp_report import gather; "
          "f = gather(%%s); print(json.dumps({'states': f['states'], 'ms': f['collection']['duration_ms'], "
          "'owners': f['collection']['owners']}))" % COLLECTIONS)
# Kernel-filter question: detail for TIME_WAIT only. The module splits the state mask (a counting dump for
# the other states + a detail dump of TIME_WAIT); the alternative parses one all-states dump in detail
# and keeps only TIME_WAIT.
ONE_DUMP = ("import sys; sys.path.insert(0, %r)\n"
            "from ansible_collections.linuxnet.tcp.plugins.module_utils import _sockets as S, _tcp_report as R\n"
            "t = R.Tally((1024, 65535)); b = S.NetlinkBackend()\n"
            "for fam in (S.AF_INET, S.AF_INET6): t.add_listeners(fam, b.listeners(fam, t.counts))\n"
            "for fam in (S.AF_INET, S.AF_INET6):\n"
            "    for batch in b.scan(fam, S.ALL_STATES & ~S.LISTEN_BIT, S.ALL_STATES, t.counts):\n"
            "        t.add(fam, [r for r in batch if r[0] == S.TIME_WAIT])\n"
            "r = t.report(); print(r['states']['total'], r['time_wait']['by_remote'][:1])\n" % COLLECTIONS)

# The floor for any exact per-state count: the same two sock_diag dumps (all states but LISTEN), received
# into one buffer and thrown away unparsed. What the kernel and the syscalls cost, nothing of this module.
RAW_DUMP = ("import socket, struct\n"
            "req = struct.Struct('=IHHIIBBBxI48x')\n"
            "buf = bytearray(65536)\n"
            "for fam in (socket.AF_INET, socket.AF_INET6):\n"
            "    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4); s.bind((0, 0))\n"
            "    s.send(req.pack(72, 20, 0x301, 1, 0, fam, 6, 0, 0xFFE & ~(1 << 10)))\n"
            "    while True:\n"
            "        n = s.recv_into(buf)\n"
            "        if struct.unpack_from('=IH', buf, n - 20)[1] == 3: break\n"
            "    s.close()\n")

SIZES = ("import json, sys; sys.path.insert(0, %r); "
         "from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp_report import gather; "
         "print(json.dumps([len(json.dumps(gather(summary=s), separators=(',', ':'))) for s in (False, True)]))"
         % COLLECTIONS)

METHODS = [
    ("module: counts only (states: [], processes: false)", [PY, "-c", GATHER % "states=[], processes=False"]),
    ("module: full facts with owners (defaults)", [PY, "-c", GATHER % ""]),
    ("module: full facts, backend proc", [PY, "-c", GATHER % "backend='proc'"]),
    ("module: TIME_WAIT detail, split mask (what the module does)", [PY, "-c", GATHER % "states=['TIME_WAIT'], processes=False"]),
    ("alternative: TIME_WAIT detail from one all-states dump", [PY, "-c", ONE_DUMP]),
    ("floor: the same sock_diag dumps received and discarded, no parsing", [PY, "-c", RAW_DUMP]),
    ("ss -tan | awk (count per state)", ["sh", "-c", "ss -tan | awk 'NR>1 {++S[$1]} END {for (s in S) print s, S[s]}'"]),
    ("netstat -an | awk (seeds' pipeline)", ["sh", "-c", "netstat -an | awk '/^tcp/ {++S[$NF]} END {for (s in S) print s, S[s]}'"]),
    ("psutil.net_connections('tcp') + count",
     [PY, "-c", "import psutil, collections; print(collections.Counter(c.status for c in psutil.net_connections('tcp')))"]),
    ("ss -s", ["ss", "-s"]),
]
BASELINE = "ss -tan | awk (count per state)"


def sh(*argv):
    return subprocess.run(list(argv), check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def timed(netns, argv):
    """Run argv inside the namespace; (seconds, peak RSS in MB of the process tree, stdout)."""
    started = time.perf_counter()
    proc = subprocess.Popen(["ip", "netns", "exec", netns] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, LC_ALL="C"))
    out = proc.stdout.read()
    proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError("%s failed with %d" % (argv, proc.returncode))
    return elapsed, usage.ru_maxrss / 1024.0, out.decode()


def bench_size(pairs, runs, time_wait, close_wait):
    load_before = "%.1f %.1f %.1f" % os.getloadavg()
    netns = "lntcp-bench-%s" % uuid.uuid4().hex[:8]
    sh("ip", "netns", "add", netns)
    holder = None
    try:
        ns = ["ip", "netns", "exec", netns]
        sh(*ns, "ip", "link", "set", "lo", "up")
        # Namespaced keys, inside this namespace only.
        sh(*ns, "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535")
        sh(*ns, "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=0")
        holder = subprocess.Popen(ns + [PY, os.path.join(HERE, "build_table.py"), "--pairs", str(pairs),
                                        "--time-wait", str(time_wait), "--close-wait", str(close_wait), "--hold", "900"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        built = json.loads(holder.stdout.readline())
        facts = json.loads(timed(netns, [PY, "-c", GATHER % ""])[2])
        doc_bytes = json.loads(timed(netns, [PY, "-c", SIZES])[2])
        # Round-robin: every round runs each method once, so load changes on a shared machine hit all
        # methods alike instead of whichever method happened to be running.
        samples = {name: [] for name, _argv in METHODS}
        for _round in range(runs):
            for name, argv in METHODS:
                samples[name].append(timed(netns, argv))
        rows = []
        for name, _argv in METHODS:
            times = [s[0] for s in samples[name]]
            rows.append({"method": name, "median_s": statistics.median(times), "min_s": min(times),
                         "peak_rss_mb": max(s[1] for s in samples[name])})
        module_ms = [json.loads(timed(netns, [PY, "-c", GATHER % ""])[2])["ms"] for _n in range(runs)]
        counts_ms = [json.loads(timed(netns, [PY, "-c", GATHER % "states=[], processes=False"])[2])["ms"]
                     for _n in range(runs)]
        base = next(r["median_s"] for r in rows if r["method"] == BASELINE)
        for row in rows:
            row["ratio"] = row["median_s"] / base
        return {"netns_sockets": facts["states"]["total"], "states": facts["states"], "build_seconds": built["build_seconds"],
                "owners": facts["owners"], "rows": rows, "in_process_ms_full": statistics.median(module_ms),
                "in_process_ms_counts": statistics.median(counts_ms), "load_before": load_before,
                "document_bytes": {"full": doc_bytes[0], "summary": doc_bytes[1]},
                "load_after": "%.1f %.1f %.1f" % os.getloadavg()}
    finally:
        if holder is not None:
            holder.stdin.close()
            try:
                holder.wait(timeout=60)
            except subprocess.TimeoutExpired:
                holder.kill()
                holder.wait()
        subprocess.run(["ip", "netns", "del", netns], check=False)


def print_table(result):
    states = result["states"]
    print("\nload average before/after: %s / %s" % (result["load_before"], result["load_after"]))
    print("\n### %d sockets (ESTABLISHED %d, TIME_WAIT %d, CLOSE_WAIT %d, FIN_WAIT2 %d, LISTEN %d; IPv6 family %d)\n"
          % (result["netns_sockets"], states["ESTABLISHED"], states["TIME_WAIT"], states["CLOSE_WAIT"],
             states["FIN_WAIT2"], states["LISTEN"], states["by_family"]["ipv6"]))
    print("| Method | median s | min s | x `ss -tan \\| awk` | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    for row in result["rows"]:
        cells = (row["method"].replace("|", "\\|"), row["median_s"], row["min_s"], row["ratio"], row["peak_rss_mb"])
        print("| %s | %.3f | %.3f | %.2f | %.1f |" % cells)
    print("\nIn-process collection time (collection.duration_ms, median): full facts %.0f ms, counts only %.0f ms. "
          "Owner scan: %s. Fact document (compact JSON): full %d bytes, summary %d bytes."
          % (result["in_process_ms_full"], result["in_process_ms_counts"], result["owners"],
             result["document_bytes"]["full"], result["document_bytes"]["summary"]))


def main():
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark builds network namespaces")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[55000, 107000], help="connected pairs per table")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--time-wait", type=int, default=15000)
    parser.add_argument("--close-wait", type=int, default=1000)
    args = parser.parse_args()
    results = []
    for pairs in args.sizes:
        result = bench_size(pairs, args.runs, args.time_wait, args.close_wait)
        print_table(result)
        results.append(result)
    out_dir = os.path.join(ROOT, "benchmarks", "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tcp_facts.json"), "w", encoding="utf-8") as handle:
        json.dump({"kernel": os.uname().release, "python": sys.version.split()[0], "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
