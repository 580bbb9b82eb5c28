"""Benchmark: tcp_facts against ss, netstat and psutil on ESTABLISHED-heavy tables and a TIME_WAIT storm (root).

    make bench            # or: .venv/bin/python benchmarks/tcp_facts/run.py [--sizes 55000 107000] [--storm 150000]
                          #     [--runs 11] [--only established|storm]

Tables, each in a fresh network namespace (lntcp-bench-*), built by build_table.py and held by its processes:

- ESTABLISHED-heavy: --sizes connected pairs (one table per size), 15000 client-side TIME_WAIT, 1000 CLOSE_WAIT
  with their orphaned FIN_WAIT2 peers;
- TIME_WAIT storm: --storm client-side short connections (2 processes at once, towards 2 listeners) and a few
  dozen CLOSE_WAIT (--storm-close-wait). A TIME_WAIT socket lives 60 s, so rounds run only within 55 s of
  the start of the build; when --runs rounds do not fit, the namespace is deleted and the table built again.

Every method runs as its own process inside the namespace, one of each per round (round-robin), so a load
change on a shared machine hits all methods alike. The module runs as Ansible runs it on a host:
``python -m ansible_collections.linuxnet.tcp.plugins.modules.tcp_facts ARGS.json``. Its own cost is its wall
time minus that of a bare interpreter importing ansible.module_utils.basic (what every module pays); a floor's
own cost is its wall time minus a bare interpreter's. Wall times are medians; peak RSS is the process's
(wait4). Ratios are against the `ss -tan | awk` pipeline of the same run. Each module run's state counts are
compared with that round's `ss -tan | awk` counts, for every state whose ss count did not change between
that round and the next (settled). The load average is printed with each table. Results: Markdown on
stdout and benchmarks/results/tcp_facts.json. Namespaces and holders are removed at the end, whatever happens.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
PY = sys.executable
MODULE = "ansible_collections.linuxnet.tcp.plugins.modules.tcp_facts"
TIME_WAIT_LIFE = 60.0  # TCP_TIMEWAIT_LEN
SS_NAMES = {"ESTAB": "ESTABLISHED", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV", "FIN-WAIT-1": "FIN_WAIT1",
            "FIN-WAIT-2": "FIN_WAIT2", "TIME-WAIT": "TIME_WAIT", "UNCONN": "CLOSE", "CLOSE-WAIT": "CLOSE_WAIT",
            "LAST-ACK": "LAST_ACK", "LISTEN": "LISTEN", "CLOSING": "CLOSING"}

# The floor of any exact count on one thread: one legacy dump of every state but LISTEN (one walk of the
# hash for both families), received into one buffer and thrown away. What the kernel and the syscalls cost.
FLOOR_ONE = r"""
import socket, struct
buf = bytearray(65536)
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)
sock.bind((0, 0))
sock.send(struct.pack("=IHHIIBBBB48xII", 76, 18, 0x301, 1, 0, 0, 0, 0, 0, 0xFFE & ~(1 << 10), 0))
while True:
    size = sock.recv_into(buf)
    if struct.unpack_from("=IH", buf, size - 20)[1] == 3:
        break
"""

SS_AWK = "ss -tan | awk 'NR>1 {++S[$1]} END {for (s in S) print s, S[s]}'"
BASELINE = "ss -tan | awk (count per state)"
BARE_ANSIBLE = "bare interpreter importing ansible.module_utils.basic"
BARE = "bare interpreter (python -c pass)"
FULL = "module: full facts with owners (defaults)"
COUNTS = "module: counts only (states: [], processes: false)"
FLOOR_NAME = "floor: one dump of the whole table (one walk, both families), unparsed"


def _args_file(directory, args):
    """The module's arguments as Ansible hands them over (the file AnsiballZ would pass)."""
    path = os.path.join(directory, "%s.json" % ("-".join(sorted(args)) or "defaults"))
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    return path


def methods(args_dir, table):
    """(name, argv, kind): kind is "module", "floor" or None (own cost is reported for the first two)."""
    def module(args):
        return [PY, "-m", MODULE, _args_file(args_dir, args)]
    rows = [
        (BASELINE, ["sh", "-c", SS_AWK], None),
        ("netstat -an | awk (seeds' pipeline)", ["sh", "-c", "netstat -an | awk '/^tcp/ {++S[$NF]} END {for (s in S) print s, S[s]}'"], None),
        (FULL, module({}), "module"),
        (COUNTS, module({"states": [], "processes": False}), "module"),
        (FLOOR_NAME, [PY, "-c", FLOOR_ONE], "floor"),
        (BARE_ANSIBLE, [PY, "-c", "import ansible.module_utils.basic"], None),
        (BARE, [PY, "-c", "pass"], None),
    ]
    if table == "established":
        rows[4:4] = [("module: full facts, backend proc", module({"backend": "proc"}), "module")]
        rows += [("psutil.net_connections('tcp') + count",
                  [PY, "-c", "import psutil, collections; print(collections.Counter(c.status for c in psutil.net_connections('tcp')))"],
                  None),
                 ("ss -s", ["ss", "-s"], None)]
    return rows


def sh(*argv):
    return subprocess.run(list(argv), check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


def timed(netns, argv):
    """Run argv inside the namespace ``netns`` (a path); (seconds, peak RSS in MB, stdout)."""
    env = dict(os.environ, LC_ALL="C", PYTHONPATH=COLLECTIONS)
    started = time.perf_counter()
    proc = subprocess.Popen(["nsenter", "--net=" + netns] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError("%s failed with %d: %s" % (argv, code, (err or out)[-400:]))
    return elapsed, usage.ru_maxrss / 1024.0, out.decode()


def ss_counts(text):
    counts = {}
    for line in text.splitlines():
        name, num = line.split()
        counts[SS_NAMES[name]] = int(num)
    return counts


class Table:
    """A namespace holding a socket table built by build_table.py; removed by close() whatever happened."""

    def __init__(self, build_args, storm):
        self.name = "lntcp-bench-%s" % uuid.uuid4().hex[:8]
        self.holder = None
        sh("ip", "netns", "add", self.name)
        try:
            ns = ["ip", "netns", "exec", self.name]
            sh(*ns, "ip", "link", "set", "lo", "up")
            # Namespaced keys, inside this namespace only: a wide port range, no TIME_WAIT reuse, and room
            # for the storm (a new namespace allows 131072 TIME_WAIT sockets on this kernel).
            sh(*ns, "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535")
            sh(*ns, "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=0")
            if storm:
                sh(*ns, "sysctl", "-q", "-w", "net.ipv4.tcp_max_tw_buckets=262144")
            self.started = time.monotonic()
            self.holder = subprocess.Popen(ns + [PY, os.path.join(HERE, "build_table.py")] + build_args + ["--hold", "900"],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            line = self.holder.stdout.readline()
            if not line:
                raise RuntimeError("build_table.py failed (see its traceback above)")
            self.built = json.loads(line)
            # Entered through a holder's namespace link, which lasts as long as the table, even if
            # /run/netns/NAME is unmounted meanwhile.
            self.path = "/proc/%d/ns/net" % self.holder.pid
            # No TIME_WAIT socket of the build expires before this (with 5 s to spare).
            self.deadline = self.started + TIME_WAIT_LIFE - 5.0
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.holder is not None:
            self.holder.stdin.close()
            try:
                self.holder.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.holder.kill()
                self.holder.wait()
            self.holder = None
        subprocess.run(["ip", "netns", "del", self.name], check=False, stderr=subprocess.DEVNULL)


def run_rounds(table, rows, runs, samples, closing, deadline=None):
    """Up to ``runs`` rounds (fewer if the next would pass ``deadline``); returns the rounds run."""
    done = 0
    longest = 0.0
    while done < runs:
        if deadline is not None and time.monotonic() + 1.5 * longest > deadline:
            break
        started = time.monotonic()
        for name, argv, _kind in rows:
            samples[name].append(timed(table.path, argv))
        longest = max(longest, time.monotonic() - started)
        done += 1
    if done:
        # One more ss count closes the last round: a state is settled in a round when ss saw it the same at
        # the round's start and after it.
        closing.append(timed(table.path, [r for r in rows if r[0] == BASELINE][0][1]))
    return done


def compare_with_ss(samples, first, last, closing):
    """Module state counts against the same round's ss counts, on states settled across the round."""
    ss = [ss_counts(s[2]) for s in samples[BASELINE][first:last]] + [ss_counts(closing[2])]
    checked = 0
    mismatches = []
    for name in (FULL, COUNTS) + tuple(n for n in samples if n.endswith("backend proc")):
        for index, sample in enumerate(samples[name][first:last]):
            states = json.loads(sample[2])["ansible_facts"]["tcp"]["states"]
            nxt = ss[index + 1]
            for state, num in ss[index].items():
                if nxt.get(state) == num:
                    checked += 1
                    if states[state] != num:
                        mismatches.append((name, index + first, state, states[state], num))
            if sum(states[s] for s in SS_NAMES.values()) != states["total"]:
                mismatches.append((name, index + first, "total", states["total"], None))
    return checked, mismatches


def measure(kind, build_args, runs, storm):
    result = {"table": kind, "load_before": load(), "uptime_before": sh("uptime").stdout.strip()}
    args_dir = tempfile.mkdtemp(prefix="lntcp-bench-args-")
    rows = None
    samples = None
    tables = 0
    checked, mismatches = 0, []
    closing = []
    try:
        while samples is None or len(samples[BASELINE]) < runs:
            table = Table(build_args, storm)
            tables += 1
            try:
                if rows is None:
                    rows = methods(args_dir, kind)
                    samples = {name: [] for name, _argv, _kind in rows}
                    result["build_seconds"] = table.built["build_seconds"]
                first = len(samples[BASELINE])
                done = run_rounds(table, rows, runs - first, samples, closing, table.deadline if storm else None)
                if not done:
                    raise RuntimeError("no round fits in the TIME_WAIT window: the build took %.1f s"
                                       % table.built["build_seconds"])
                one = compare_with_ss(samples, first, first + done, closing[-1])
                checked += one[0]
                mismatches += one[1]
                if first == 0:
                    facts = json.loads(samples[FULL][0][2])["ansible_facts"]["tcp"]
                    result["states"] = facts["states"]
                    result["owners"] = facts["collection"]["owners"]
                    small = timed(table.path, [PY, "-m", MODULE, _args_file(args_dir, {"summary": True})])[2]
                    result["document_bytes"] = {"full": len(json.dumps(facts, separators=(",", ":"))),
                                                "summary": len(json.dumps(json.loads(small)["ansible_facts"]["tcp"],
                                                                          separators=(",", ":")))}
            finally:
                table.close()
    finally:
        shutil.rmtree(args_dir, ignore_errors=True)
    medians = {name: statistics.median(s[0] for s in samples[name]) for name in samples}
    base = medians[BASELINE]
    out = []
    for name, _argv, kind in rows:
        times = [s[0] for s in samples[name]]
        row = {"method": name, "median_s": medians[name], "min_s": min(times), "ratio": medians[name] / base,
               "peak_rss_mb": max(s[1] for s in samples[name])}
        if kind:
            row["own_s"] = medians[name] - medians[BARE_ANSIBLE if kind == "module" else BARE]
            row["own_ratio"] = row["own_s"] / base
        out.append(row)
    result.update(rows=out, runs=len(samples[BASELINE]), tables_built=tables, ss_checked=checked,
                  ss_mismatches=mismatches, load_after=load(), uptime_after=sh("uptime").stdout.strip(),
                  in_process_ms={name: statistics.median(json.loads(s[2])["ansible_facts"]["tcp"]["collection"]["duration_ms"]
                                                         for s in samples[name]) for name in (FULL, COUNTS)})
    return result


def print_table(result):
    states = result["states"]
    title = "TIME_WAIT storm" if result["table"] == "storm" else "ESTABLISHED-heavy"
    print("\n### %s: %d sockets (ESTABLISHED %d, TIME_WAIT %d, CLOSE_WAIT %d, FIN_WAIT2 %d, LISTEN %d; IPv6 family %d)\n"
          % (title, states["total"], states["ESTABLISHED"], states["TIME_WAIT"], states["CLOSE_WAIT"], states["FIN_WAIT2"],
             states["LISTEN"], states["by_family"]["ipv6"]))
    print("%d rounds (%d table build%s); load average before %s, after %s.\n"
          % (result["runs"], result["tables_built"], "s" if result["tables_built"] > 1 else "", result["load_before"],
             result["load_after"]))
    print("| Method | median s | min s | x `ss -tan \\| awk` | own cost s | own cost x `ss -tan \\| awk` | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in result["rows"]:
        own = ("%.3f" % row["own_s"], "**%.2f**" % row["own_ratio"]) if "own_s" in row else ("", "")
        print("| %s | %.3f | %.3f | %.2f | %s | %s | %.1f |" % ((row["method"].replace("|", "\\|"), row["median_s"], row["min_s"],
                                                                 row["ratio"]) + own + (row["peak_rss_mb"],)))
    verdict = ("equal in all %d comparisons" % result["ss_checked"] if not result["ss_mismatches"]
               else "DIFFERENT: %s" % result["ss_mismatches"][:5])
    print("\nState counts against the same round's `ss -tan | awk`, settled states: %s. In-process collection time "
          "(collection.duration_ms, median): full facts %.0f ms, counts only %.0f ms. Owner scan: %s. Fact document "
          "(compact JSON): full %d bytes, summary %d bytes."
          % (verdict, result["in_process_ms"][FULL], result["in_process_ms"][COUNTS], result["owners"],
             result["document_bytes"]["full"], result["document_bytes"]["summary"]))
    rows = {row["method"]: row for row in result["rows"]}
    print("\nTargets: full facts own cost %.2fx (at most 0.6x), counts only %.2fx (at most 0.35x), peak RSS %.1f MB "
          "(under 60 MB)." % (rows[FULL]["own_ratio"], rows[COUNTS]["own_ratio"],
                              max(rows[FULL]["peak_rss_mb"], rows[COUNTS]["peak_rss_mb"])))


def main():
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark builds network namespaces")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[55000, 107000], help="connected pairs per ESTABLISHED table")
    parser.add_argument("--storm", type=int, default=150000, help="TIME_WAIT sockets of the storm table (0: none)")
    parser.add_argument("--storm-close-wait", type=int, default=40)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", choices=["established", "storm"])
    args = parser.parse_args()
    results = []
    jobs = []
    if args.only != "storm":
        jobs += [("established", ["--pairs", str(pairs), "--time-wait", "15000", "--close-wait", "1000"], False)
                 for pairs in args.sizes]
    if args.only != "established" and args.storm:
        jobs.append(("storm", ["--pairs", "0", "--time-wait", "0", "--close-wait", str(args.storm_close_wait),
                               "--storm", str(args.storm)], True))
    for kind, build_args, storm in jobs:
        result = measure(kind, build_args, args.runs, storm)
        print_table(result)
        results.append(result)
    out_dir = os.path.join(ROOT, "benchmarks", "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tcp_facts.json"), "w", encoding="utf-8") as handle:
        json.dump({"kernel": os.uname().release, "python": sys.version.split()[0], "cpus": os.cpu_count(),
                   "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
