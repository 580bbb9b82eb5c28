"""Fleet benchmark: the tuning role versus a loop of ansible.posix.sysctl, and an audit run, on one podman fleet.

    source tests/podman/env.sh && .venv/bin/python benchmarks/fleet/run.py [--count 10] [--repeat 3]

Per repetition, on a fleet started fresh (every member's network namespace at kernel defaults):
1. loop, first run: one ansible.posix.sysctl task looping over the keys (sysctl_set, the module's own reload);
2. loop, re-run (idempotent: nothing changes);
   the fleet is then started again from the images, so that the role also starts from kernel defaults;
3. role, first run: linuxnet.tcp.tuning with tcp_tuning_profiles [web] and the role's defaults;
4. role, re-run;
5. audit: linuxnet.tcp.audit (facts, rules, fleet report) on the tuned fleet;
6. on a fleet started again, the role with tcp_tuning_verify: true (first run and re-run), to show what the
   independent re-read costs.
The loop sets exactly the keys and values the role wrote in its drop-in on a reference member (namespaced keys
only: a container cannot take the global ones, and the role skips them), so both sides do the same work.
Wall time of each ansible-playbook run, forks = fleet size. Prints medians, ratios (role / loop) and per-host cost
as a Markdown table, with the load average before and after; --json writes the raw numbers. The target is a
ratio of at most 0.2 on both runs, for the role with its defaults.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
TARGET = 0.2

ROLE_PLAY = """\
- name: Tuning role, web profile
  hosts: fleet
  gather_facts: false
  roles:
    - role: linuxnet.tcp.tuning
      vars:
        tcp_tuning_profiles: [web]
        tcp_tuning_name: bench
        tcp_tuning_verify: "{{ bench_verify | default(false) }}"
"""

LOOP_PLAY = """\
- name: The common pattern, a loop of ansible.posix.sysctl over the same keys
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Set each key at runtime and in a sysctl file
      ansible.posix.sysctl:
        name: "{{ item.key }}"
        value: "{{ item.value }}"
        sysctl_file: /etc/sysctl.d/90-bench-loop.conf
        sysctl_set: true
        state: present
      loop: "{{ bench_keys | dict2items }}"
"""

AUDIT_PLAY = """\
- name: Audit
  ansible.builtin.import_playbook: linuxnet.tcp.audit
"""


def load_fleet():
    spec = importlib.util.spec_from_file_location("linuxnet_tcp_fleet", os.path.join(ROOT, "tests", "fleet", "fleet.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def ansible_env(forks):
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORKS=str(forks), ANSIBLE_HOST_KEY_CHECKING="0", LC_ALL="C.UTF-8")
    env.pop("ANSIBLE_CONFIG", None)
    return env


def playbook(work, inventory, play, forks, extra=None):
    """Run one playbook; return (seconds, recap line counts). Fails loudly when a host fails."""
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, play]
    if extra:
        argv += ["-e", json.dumps(extra)]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=work, env=ansible_env(forks), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=3600, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError("%s failed (rc=%d):\n%s" % (os.path.basename(play), done.returncode, done.stdout[-5000:]))
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", done.stdout))
    return seconds, changed


def reference_keys(fleet_module, work):
    """Keys and values the role writes for the web profile in a container, read from its drop-in."""
    ref = fleet_module.Fleet("lntcp-fleet-benchref", 1, releases=("debian12",))
    with ref:
        inventory = ref.write_inventory(os.path.join(work, "ref.yml"))
        playbook(work, inventory, os.path.join(work, "role.yml"), 1)
        drop_in = ref.exec(ref.members[0], "cat", "/etc/sysctl.d/90-linuxnet-bench.conf")
    keys = dict(re.findall(r"^-?(net\.[\w.]+) = (.+)$", drop_in, re.M))
    if not keys:
        raise RuntimeError("the role wrote no key in its drop-in:\n" + drop_in)
    return keys


def measure(fleet_module, count, repeat, work):
    keys = reference_keys(fleet_module, work)
    runs = {name: [] for name in ("loop_first", "loop_rerun", "role_first", "role_rerun", "audit", "verify_first",
                                  "verify_rerun")}
    changed = {}
    fleet = fleet_module.Fleet("lntcp-fleet-bench", count)
    inventory = os.path.join(work, "fleet.yml")
    try:
        for i in range(repeat):
            fleet.up()
            fleet.write_inventory(inventory)
            for name in ("loop_first", "loop_rerun"):
                seconds, changed[name] = playbook(work, inventory, os.path.join(work, "loop.yml"), count, {"bench_keys": keys})
                runs[name].append(seconds)
            fleet.up()  # fresh containers: kernel defaults again for the role's first run
            for name in ("role_first", "role_rerun"):
                seconds, changed[name] = playbook(work, inventory, os.path.join(work, "role.yml"), count)
                runs[name].append(seconds)
            seconds, changed["audit"] = playbook(work, inventory, os.path.join(work, "audit.yml"), count,
                                                 {"tcp_audit_report_dir": os.path.join(work, "report")})
            runs["audit"].append(seconds)
            fleet.up()
            for name in ("verify_first", "verify_rerun"):
                seconds, changed[name] = playbook(work, inventory, os.path.join(work, "role.yml"), count, {"bench_verify": True})
                runs[name].append(seconds)
            print("repetition %d/%d: %s" % (i + 1, repeat, ", ".join("%s %.1fs" % (k, v[-1]) for k, v in runs.items())),
                  flush=True)
    finally:
        fleet.down()
    if changed["loop_rerun"] or changed["role_rerun"] or changed["verify_rerun"]:
        raise RuntimeError("a re-run changed something: %s" % changed)
    return keys, runs


def table(count, keys, runs):
    med = {name: statistics.median(values) for name, values in runs.items()}
    lines = ["Fleet of %d containers (Debian 11/12/13), %d keys of the web profile, forks %d, median of %d run(s)"
             % (count, len(keys), count, len(runs["audit"])), "",
             "| run | tuning role | ansible.posix.sysctl loop | ratio role/loop | role per host | loop per host |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, role, loop in (("first run", "role_first", "loop_first"), ("re-run (idempotent)", "role_rerun", "loop_rerun"),
                              ("first run, tcp_tuning_verify: true", "verify_first", "loop_first"),
                              ("re-run, tcp_tuning_verify: true", "verify_rerun", "loop_rerun")):
        lines.append("| %s | %.1f s | %.1f s | %.2fx | %.2f s | %.2f s |" % (
            label, med[role], med[loop], med[role] / med[loop], med[role] / count, med[loop] / count))
    lines.append("| audit (facts, rules, report) | %.1f s | | | %.2f s | |" % (med["audit"], med["audit"] / count))
    ratios = (med["role_first"] / med["loop_first"], med["role_rerun"] / med["loop_rerun"])
    verdict = "met" if max(ratios) <= TARGET else "NOT met"
    lines += ["", "Target: tuning role (defaults) at most %.1fx the loop on both runs: %s (%.2fx, %.2fx)."
              % (TARGET, verdict, *ratios)]
    return "\n".join(lines), med


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", "-n", type=int, default=10, help="fleet size, 1..30 (default 10)")
    parser.add_argument("--repeat", "-r", type=int, default=3, help="repetitions; medians are reported (default 3)")
    parser.add_argument("--json", help="write the raw timings to this file")
    args = parser.parse_args(argv)
    fleet_module = load_fleet()
    load_before = " ".join("%.2f" % v for v in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="lntcp-bench-fleet-") as work:
        for name, text in (("role.yml", ROLE_PLAY), ("loop.yml", LOOP_PLAY), ("audit.yml", AUDIT_PLAY)):
            with open(os.path.join(work, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        try:
            keys, runs = measure(fleet_module, args.count, args.repeat, work)
        except (RuntimeError, fleet_module.FleetError) as exc:
            print("benchmarks/fleet: %s" % exc, file=sys.stderr)
            return 1
    text, med = table(args.count, keys, runs)
    print(text)
    print("Load average before / after: %s / %s" % (load_before, " ".join("%.2f" % v for v in os.getloadavg())))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"count": args.count, "keys": keys, "runs": runs, "medians": med}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
