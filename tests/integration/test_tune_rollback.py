"""Rolling tune (playbooks/tune.yml) with its rollback, on four podman containers (tests/fleet/fleet.py).

The kernel and the files are read inside the containers (podman exec), never from Ansible's output:
- a healthy roll tunes every host, rolls nothing back, and a second run changes nothing;
- a batch made worse on purpose: an accept-queue load (ACCEPT_LOAD_SCRIPT) on two hosts of batch 2 and a
  test-only override that shrinks net.core.somaxconn to 8 there, so ListenOverflows grows after the change. The
  first of them is rolled back: every readable /proc/sys/net value and every file under the sysctl, modules-load,
  modprobe, systemd and state directories is as before the run (its IPVS unit has its old text again, the link the
  run made is gone). On the
  second the drop-in is edited by hand during the health window, so its rollback fails and is reported. The host
  of batch 1 keeps its tuning and the host of batch 3 is not reached;
- check mode changes nothing, says per host what a rollback would put back and waits for no health window (the
  inventory's health window of 30 s, a group variable, is the one the summary states);
- tcp_tune_rollback=false with max_fail_percentage 50: the worse host keeps the change, the roll goes on;
- bad input (a rollback that is no boolean, a zero window, a percentage over 100, a zero window in one host's
  host_vars, health windows that differ between hosts) stops the run before any change;
- the tcp_tune_* values each host runs with: its inventory's (group_vars, host_vars) or the extra vars', else the
  argument spec's default, which is the only place the defaults are written (controller-only plays);
- the summary's own cut of the hosts into batches (which decides the batch that prints it) equals the batches
  Ansible runs, for numbers, percentages and lists as serial (controller-only plays, no containers).
Health windows are 1 to 3 seconds (30 s from the inventory in check mode, which waits for none). On the 2-core
build machine the module took 3 min 4 s at a load average of 0.9 to 2.7: eight batches of about 30 tasks per host
over the containers.
"""
from __future__ import annotations

import json
import os
import re
import sys

import pytest
import yaml

from fleet_fixtures import ROOT, Fleet, fleet_module, fleet_name, json_callback_env, parse_json_stdout, run, tool

pytestmark = pytest.mark.containers

PLAYBOOK = os.path.join(ROOT, "playbooks", "tune.yml")
NAME = "roll"
DROP_IN = "/etc/sysctl.d/90-linuxnet-%s.conf" % NAME
UNIT = "/etc/systemd/system/linuxnet-tcp-ipvs-timeouts.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/linuxnet-tcp-ipvs-timeouts.service"
# The second host is an LVS director (its IPVS unit is written; ip_vs itself is not loaded in the test kernel).
DIRECTOR = {"tcp_tuning_ipvs": True, "tcp_tuning_ipvs_install": False}

# Runs inside a member: every readable value under /proc/sys/net and every file (text, or "-> target" for a link)
# and directory under the places the tuning role and linuxnet.tcp.sysctl_profile write to, as JSON.
SNAPSHOT_SCRIPT = r"""
import json, os
out = {"sysctl": {}, "files": {}}
for top, _dirs, names in os.walk("/proc/sys/net"):
    for name in names:
        path = os.path.join(top, name)
        try:
            with open(path) as handle:
                out["sysctl"][path] = " ".join(handle.read().split())
        except OSError:
            pass  # write-only (route/flush) or not readable here
for base in ("/etc/sysctl.d", "/etc/modules-load.d", "/etc/modprobe.d", "/etc/systemd/system", "/var/lib/linuxnet-tcp"):
    for top, dirs, names in os.walk(base):
        out["files"][top.rstrip("/") + "/"] = "directory"
        for name in names + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            path = os.path.join(top, name)
            if os.path.islink(path):
                out["files"][path] = "-> " + os.readlink(path)
            else:
                with open(path, errors="replace") as handle:
                    out["files"][path] = handle.read()
print(json.dumps(out))
"""

# Runs inside a member: once `path` contains `needle`, put a line without the collection's header on top, as a
# person editing the drop-in by hand during the roll would; stops by itself after `seconds`.
HAND_EDIT_SCRIPT = r"""
import os, sys, time
path, needle, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
if os.fork():
    sys.exit(0)
os.setsid()
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError:
        text = ""
    if needle in text:
        with open(path, "w") as handle:
            handle.write("# edited by hand during the roll\n" + text)
        break
    time.sleep(0.1)
"""


@pytest.fixture(scope="module")
def roll(tmp_path_factory):
    fleet = Fleet(fleet_name("r"), 4)
    try:
        fleet.up()
        yield {"fleet": fleet, "work": tmp_path_factory.mktemp("roll"), "names": [m.name for m in fleet.members]}
    finally:
        fleet.down()


def snapshot(fleet, name):
    return json.loads(fleet.exec(fleet.member(name), fleet_module.PYTHON, "-c", SNAPSHOT_SCRIPT))


def sysctl(fleet, name, key):
    return " ".join(fleet.exec(fleet.member(name), "cat", "/proc/sys/" + key.replace(".", "/")).split())


def tune(roll, host_vars=None, check=False, group_vars=None, **extra_vars):
    """Run tune.yml over the fleet with per-host (and fleet group) inventory variables; return (rc, json report)."""
    fleet = roll["fleet"]
    for member in fleet.members:
        member.extra_vars = dict((host_vars or {}).get(member.name, {}))
    inventory = fleet.write_inventory(str(roll["work"] / "fleet.yml"))
    if group_vars:
        data = fleet.inventory()
        data["all"]["children"]["fleet"]["vars"].update(group_vars)
        with open(inventory, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
    argv = [tool("ansible-playbook"), "-i", inventory, PLAYBOOK, "-e",
            json.dumps(dict({"tcp_tuning_name": NAME}, **extra_vars))] + (["--check"] if check else [])
    done = run(argv, cwd=roll["work"], env=json_callback_env(ANSIBLE_FORKS="10"), timeout=900)
    return done.returncode, parse_json_stdout(done)


def summary(report):
    """The lines of the one "Summary of the roll" that ran (the batch that ends the roll prints it)."""
    shown = [result["msg"] for play in report["plays"] for task in play["tasks"]
             if task["task"]["name"] == "Summary of the roll"
             for result in task["hosts"].values() if not result.get("skipped")]
    assert len(shown) == 1, "the summary must be printed once, by the batch that ends the roll: %s" % shown
    return shown[0]


def line_of(lines, host):
    (line,) = [line for line in lines[1:] if re.search(r": %s( |:|,|$)" % re.escape(host), line)]
    return line


def reached(report):
    return {host for play in report["plays"] for task in play["tasks"]
            if task["task"]["name"] == "Mark the host as reached by the roll" for host in task["hosts"]}


KEYWORDS = ("tcp_tune_hosts", "tcp_tune_serial", "tcp_tune_max_fail_percentage")
SETTLE = "Settle each host's values of the playbook's variables (its inventory or extra value, else the default)"


def test_playbook_spec_defaults_are_the_play_defaults():
    """The argument spec (what AWX's survey is checked against) gives the defaults the playbook really uses, and
    is the only place they are written: no play vars (they would beat the inventory), no default in a template."""
    with open(PLAYBOOK, encoding="utf-8") as handle:
        text = handle.read()
    plays = yaml.safe_load(text)
    spec = plays[0]["tasks"][0]["ansible.builtin.validate_argument_spec"]["argument_spec"]
    (settle,) = [task for task in plays[0]["tasks"] if task["name"] == SETTLE]
    settled = settle["ansible.builtin.set_fact"]
    # The task reads the spec itself (a YAML alias of it), so its defaults are the spec's.
    assert settle["vars"]["__tcp_tune_spec"] == spec
    assert "argument_spec: &tcp_tune_spec" in text and "__tcp_tune_spec: *tcp_tune_spec" in text
    for key, value in settled.items():
        assert value == "{{ %s | default(__tcp_tune_spec.%s.default) }}" % (key, key), (key, value)
    assert not any(key.startswith("tcp_tune_") for play in plays for key in play.get("vars", {})), "play vars beat the inventory"
    for key in KEYWORDS:
        assert "%s | default(%r)" % (key, spec[key]["default"]) in text.replace('"', "'"), key
    assert set(spec) == set(settled) | set(KEYWORDS)
    # Outside the keywords (which cannot see host facts) and the settling task, no tcp_tune_* default anywhere.
    others = re.sub(r"^\s*(hosts|serial|max_fail_percentage): .*$", "", text, flags=re.M).replace(settle["name"], "")
    for value in settled.values():
        others = others.replace(value, "")
    templates = os.path.join(ROOT, "playbooks", "templates")
    for name in sorted(os.listdir(templates)):
        with open(os.path.join(templates, name), encoding="utf-8") as handle:
            others += handle.read()
    assert not re.findall(r"tcp_tune_(?!host\b)\w+ \| default\(", others)


# The first play of tune.yml as it is, then a controller-only stand-in for the roll that renders the summary: the
# values each host runs with, from group_vars, host_vars, extra vars or the spec's defaults.
SETTLED_ROLL = """
- hosts: all
  gather_facts: false
  serial: "{{ tcp_tune_serial | default('25%') }}"
  tasks:
    - ansible.builtin.set_fact:
        tcp_tune_host: {status: healthy, changed: false}
    - ansible.builtin.debug:
        msg: "{{ dict(names | zip(query('ansible.builtin.vars', *names))) }}"
      vars:
        names: NAMES
    - ansible.builtin.set_fact:
        roll: "{{ lookup('ansible.builtin.template', 'SUMMARY') | from_json }}"
      run_once: true
    - ansible.builtin.debug:
        msg: "{{ roll.lines }}"
      run_once: true
      when: roll.ends
"""


def play_one(tmp_path, inventory, *extra):
    with open(PLAYBOOK, encoding="utf-8") as handle:
        plays = yaml.safe_load(handle)
    names = sorted(set(plays[0]["tasks"][0]["ansible.builtin.validate_argument_spec"]["argument_spec"]) - {"tcp_tune_hosts"})
    (tmp_path / "play.yml").write_text(yaml.safe_dump(plays[:1]) + SETTLED_ROLL.replace("NAMES", json.dumps(names)).replace(
        "SUMMARY", os.path.join(ROOT, "playbooks", "templates", "tune_summary.j2")))
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    argv = [tool("ansible-playbook"), "-i", tmp_path / "hosts.yml", tmp_path / "play.yml"]
    for each in extra:
        argv += ["-e", each]
    done = run(argv, cwd=tmp_path, env=json_callback_env())
    return done.returncode, parse_json_stdout(done)


def test_inventory_and_extra_vars_beat_the_defaults(tmp_path):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"vars": {"tcp_tune_health_window": 30, "tcp_tune_counters": ["RetransSegs"]},
                         "hosts": {"h1": local, "h2": dict(local, tcp_tune_rollback=False),
                                   "h3": dict(local, tcp_tune_slack=5, tcp_tune_tolerance=9)}}}
    rc, report = play_one(tmp_path, inventory, "tcp_tune_tolerance=2")
    assert rc == 0, json.dumps(report["stats"])
    settled = {host: result["msg"] for play in report["plays"] for task in play["tasks"]
               for host, result in task["hosts"].items() if isinstance(result.get("msg"), dict)}
    common = {"tcp_tune_serial": "25%", "tcp_tune_max_fail_percentage": 0, "tcp_tune_health_window": 30,
              "tcp_tune_counters": ["RetransSegs"], "tcp_tune_tolerance": "2"}
    assert settled == {"h1": dict(common, tcp_tune_slack=1.0, tcp_tune_rollback=True),
                       "h2": dict(common, tcp_tune_slack=1.0, tcp_tune_rollback=False),
                       "h3": dict(common, tcp_tune_slack=5, tcp_tune_rollback=True)}, settled
    (lines,) = [result["msg"] for play in report["plays"] for task in play["tasks"]
                for result in task["hosts"].values() if isinstance(result.get("msg"), list)]
    assert lines[0] == ("linuxnet.tcp.tune: 3 host(s) in 3 batch(es) (serial 25%, max_fail_percentage 0, health window"
                        " 30 s, rollback on for 2 of 3 hosts): every batch done"), lines[0]

    # A value of one host's inventory is checked too (not only the first host's), before anything runs.
    inventory["all"]["hosts"]["h3"]["tcp_tune_health_window"] = 0
    rc, report = play_one(tmp_path, inventory)
    failed = {host: result["msg"] for play in report["plays"] for task in play["tasks"]
              for host, result in task["hosts"].items() if result.get("failed")}
    assert rc == 2 and list(failed) == ["h3"], failed
    assert "tcp_tune_health_window must be at least 1 second (got 0)" in failed["h3"], failed


# The summary decides which batch ends the roll by cutting the play's hosts into batches as Ansible does: checked
# here against the batches Ansible really runs (a controller-only play: set_fact and assert need no connection).
BATCHES_PLAY = """
# As tune.yml's first play leaves them, before the roll: every host's facts (the summary reads the other hosts' too).
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact:
        tcp_tune_health_window: 1
        tcp_tune_rollback: true
        tcp_tune_max_fail_percentage: 0
- hosts: all
  gather_facts: false
  serial: "{{ tcp_tune_serial }}"
  tasks:
    - ansible.builtin.set_fact:
        tcp_tune_host: {status: healthy, changed: false}
    - ansible.builtin.set_fact:
        roll: "{{ lookup('ansible.builtin.template', '%s') | from_json }}"
      run_once: true
    - ansible.builtin.assert:
        that:
          - roll.batch_hosts == ansible_play_batch
          - roll.ends == (ansible_play_hosts_all[-1] in ansible_play_batch)
          - not roll.stops
        fail_msg: "template: batch {{ roll.batch }} of {{ roll.batches }} {{ roll.batch_hosts }}, Ansible: {{ ansible_play_batch }}"
""" % os.path.join(ROOT, "playbooks", "templates", "tune_summary.j2")


@pytest.mark.parametrize("hosts, serial, batches", [
    (5, 1, 5), (5, 2, 3), (7, "30%", 4), (5, [1, "50%"], 3), (10, [1, 2, 3], 5), (3, 0, 1), (4, "100%", 1), (9, "10%", 9),
])
def test_summary_cuts_batches_as_ansible_does(tmp_path, hosts, serial, batches):
    (tmp_path / "play.yml").write_text(BATCHES_PLAY)
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"h%02d" % i: None for i in range(hosts)}}}))
    done = run([tool("ansible-playbook"), "-i", tmp_path / "hosts.yml", tmp_path / "play.yml",
                "-e", json.dumps({"tcp_tune_serial": serial})], cwd=tmp_path, env=json_callback_env())
    report = parse_json_stdout(done)
    assert done.returncode == 0, json.dumps(report["stats"])
    assert len(report["plays"]) == 1 + batches


def test_bad_input_stops_before_any_change(roll):
    fleet, names = roll["fleet"], roll["names"]
    before = snapshot(fleet, names[0])
    for extra, said in (({"tcp_tune_rollback": "maybe"}, "tcp_tune_rollback"),
                        ({"tcp_tune_health_window": 0}, "tcp_tune_health_window must be at least 1 second (got 0)"),
                        ({"tcp_tune_serial": 1, "tcp_tune_max_fail_percentage": 150}, "between 0 and 100 (got 150)")):
        rc, report = tune(roll, **extra)
        assert rc == 2, json.dumps(report["stats"])
        assert not reached(report), extra
        failed = [result["msg"] for play in report["plays"] for task in play["tasks"]
                  for result in task["hosts"].values() if result.get("failed")]
        assert failed and said in failed[0], (extra, failed)
    # From the inventory: one host's bad value, and health windows that differ (a batch waits once for all).
    for host_vars, said in (({names[2]: {"tcp_tune_health_window": 0}}, "tcp_tune_health_window must be at least 1 second (got 0)"),
                            ({names[1]: {"tcp_tune_health_window": 5}}, "tcp_tune_health_window must be the same for every host")):
        rc, report = tune(roll, host_vars)
        assert rc == 2, json.dumps(report["stats"])
        assert not reached(report), host_vars
        failed = [result["msg"] for play in report["plays"] for task in play["tasks"]
                  for result in task["hosts"].values() if result.get("failed")]
        assert failed and said in failed[0], (host_vars, failed)
    assert snapshot(fleet, names[0]) == before


def test_healthy_roll_then_nothing_to_change(roll):
    fleet, names = roll["fleet"], roll["names"]
    host_vars = {names[1]: dict(DIRECTOR, tcp_tuning_ipvs_timeouts={"tcp": 1800})}
    rc, report = tune(roll, host_vars, tcp_tune_serial="50%", tcp_tune_health_window=1)
    assert rc == 0, json.dumps(report["stats"])
    lines = summary(report)
    assert lines[0].endswith("): every batch done"), lines[0]
    assert "in 2 batch(es) (serial 50%" in lines[0], lines[0]
    for number, host in enumerate(names):
        assert line_of(lines, host) == "tuned and healthy: %s (batch %d)" % (host, number // 2 + 1), lines
        drop_in = fleet.exec(fleet.member(host), "cat", DROP_IN)
        for key, value in re.findall(r"^-?(net\.[\w.]+) = (.+)$", drop_in, re.M):
            assert sysctl(fleet, host, key) == " ".join(value.split()), (host, key)
    assert not any("rolled back" in line for line in lines)

    assert "--set 1800 0 0" in fleet.exec(fleet.member(names[1]), "cat", UNIT)
    rc, report = tune(roll, host_vars, tcp_tune_serial="100%", tcp_tune_health_window=1)
    assert rc == 0, json.dumps(report["stats"])
    for host in names:
        assert report["stats"][host]["changed"] == 0, (host, report["stats"][host])
        assert line_of(summary(report), host).endswith(", nothing to change"), summary(report)


def test_worse_batch_is_rolled_back_and_stops_the_roll(roll):
    fleet, (first, worse, edited, last) = roll["fleet"], roll["names"]
    # The director's unit was disabled by hand (systemctl disable removes the link); the run rewrites the unit with
    # other timeouts and enables it again, so its rollback puts back a file's text and removes a link.
    fleet.exec(fleet.member(worse), "rm", WANTS)
    before = {host: snapshot(fleet, host) for host in roll["names"]}
    for host in (worse, edited):
        fleet.accept_load(fleet.member(host), seconds=150)
    fleet.exec(fleet.member(edited), fleet_module.PYTHON, "-c", HAND_EDIT_SCRIPT, DROP_IN, "net.core.somaxconn = 8", "150")
    shrink = {"tcp_tuning_settings": {"net.core.somaxconn": 8}, "tcp_tuning_allow_unsafe": True}
    host_vars = {host: {"tcp_tuning_profiles": ["web"]} for host in roll["names"]}
    host_vars[worse].update(dict(shrink, tcp_tuning_ipvs_timeouts={"tcp": 3600}, **DIRECTOR))
    host_vars[edited].update(shrink)
    rc, report = tune(roll, host_vars, tcp_tune_serial=[1, 2], tcp_tune_health_window=3)
    stats = report["stats"]
    assert rc == 2, json.dumps(stats)
    assert stats[first]["failures"] == 0 and stats[worse]["failures"] == 1 and stats[edited]["failures"] == 1, stats
    assert reached(report) == {first, worse, edited}

    # The rolled-back host: the kernel and the files are exactly as before the run.
    after = snapshot(fleet, worse)
    differ = {k: (before[worse]["sysctl"].get(k), v) for k, v in after["sysctl"].items() if before[worse]["sysctl"].get(k) != v}
    assert after["sysctl"] == before[worse]["sysctl"], differ
    assert after["files"] == before[worse]["files"], set(after["files"].items()) ^ set(before[worse]["files"].items())
    assert "--set 1800 0 0" in after["files"][UNIT] and WANTS not in after["files"]
    # The host of the earlier, healthy batch keeps its tuning; the host of batch 3 was never touched.
    assert sysctl(fleet, first, "net.core.somaxconn") == "16384"
    assert "net.core.somaxconn = 16384" in fleet.exec(fleet.member(first), "cat", DROP_IN)
    assert snapshot(fleet, last) == before[last]
    # The host whose rollback failed keeps what the run changed, and the hand edit.
    assert sysctl(fleet, edited, "net.core.somaxconn") == "8"
    assert fleet.exec(fleet.member(edited), "head", "-n", "1", DROP_IN).startswith("# edited by hand")

    lines = summary(report)
    assert "the roll stopped after batch 2 of 3: 2 of its 2 host(s) failed" in lines[0], lines[0]
    assert line_of(lines, first) == "tuned and healthy: %s (batch 1)" % first
    line = line_of(lines, worse)
    assert line.startswith("rolled back: %s (batch 2): got worse: ListenOverflows 0.0 -> " % worse), line
    before_rate, tuned, restored = map(float, re.search(r"ListenOverflows ([\d.]+) -> ([\d.]+) -> ([\d.]+)", line).groups())
    assert tuned > 1.0 + 1.5 * before_rate and restored <= 1.0 + 1.5 * before_rate, line
    assert "still worse" not in line
    said = dict(part.split(" ", 1) if not part.startswith("put back ") else ("put back", part[9:]) for part in line.split("; ")[1:])
    assert "net.core.somaxconn 8 -> 4096" in said["restored"].split(", "), line
    assert {DROP_IN, UNIT} <= set(said["put back"].split(", ")), line
    assert said["removed"] == WANTS, line
    line = line_of(lines, edited)
    assert line.startswith("ROLLBACK FAILED: %s (batch 2): got worse: ListenOverflows" % edited), line
    assert "is not managed by linuxnet.tcp" in line and "restore --limit %s" % edited in line, line
    assert line_of(lines, last) == "not reached: %s (batch 3): the roll stopped before its batch" % last


def test_check_mode_says_what_it_would_roll_back_and_changes_nothing(roll):
    fleet, names = roll["fleet"], roll["names"]
    # The previous test left a hand-edited drop-in behind; make it the collection's own again.
    fleet.exec(fleet.member(names[2]), "sed", "-i", "1{/^# edited by hand/d}", DROP_IN)
    before = {host: snapshot(fleet, host) for host in names}
    host_vars = {host: {"tcp_tuning_profiles": ["database"]} for host in names}
    # The health window from the inventory (a group variable): the summary states it, and check mode, which judges
    # nothing, waits for no window at all.
    rc, report = tune(roll, host_vars, check=True, group_vars={"tcp_tune_health_window": 30}, tcp_tune_serial=4)
    assert rc == 0, json.dumps(report["stats"])
    for host in names:
        assert snapshot(fleet, host) == before[host], host
    lines = summary(report)
    assert lines[0].endswith("): check mode, nothing was changed"), lines[0]
    assert ", health window 30 s, rollback on)" in lines[0], lines[0]
    for name in ("Wait for the health window before the change", "Wait for the health window after the change"):
        results = [result for play in report["plays"] for task in play["tasks"] if task["task"]["name"] == name
                   for result in task["hosts"].values()]
        assert results and all(result.get("skipped") for result in results), (name, results)
    for host in names:
        line = line_of(lines, host)
        assert line.startswith("check mode: %s (batch 1): if it got worse, the rollback would put back " % host), line
        # database sets keepalive 300: the rollback would put back what the host has now.
        now = sysctl(fleet, host, "net.ipv4.tcp_keepalive_time")
        assert "net.ipv4.tcp_keepalive_time 300 -> %s" % now in line and "put back %s" % DROP_IN in line, line


def test_rollback_off_keeps_the_worse_host_tuned_and_the_roll_goes_on(roll):
    """Also a host whose task fails (a mistyped profile, before any change): it fails at the end of its batch."""
    fleet, names = roll["fleet"], roll["names"]
    worse, typo = names[1], names[3]
    fleet.accept_load(fleet.member(worse), seconds=60, port=20081)
    host_vars = {worse: {"tcp_tuning_profiles": ["web"], "tcp_tuning_settings": {"net.core.somaxconn": 8},
                         "tcp_tuning_allow_unsafe": True},
                 typo: {"tcp_tuning_profiles": ["wbe"]}}
    before = snapshot(fleet, typo)
    # The rollback choice as AWX's survey sends it: the string "false".
    rc, report = tune(roll, host_vars, tcp_tune_serial=2, tcp_tune_max_fail_percentage=50, tcp_tune_health_window=2,
                      tcp_tune_rollback="false")
    stats = report["stats"]
    assert rc == 2, json.dumps(stats)
    assert reached(report) == set(names), "one failed host of two is not more than 50 %: the roll goes on"
    assert [host for host in names if stats[host]["failures"]] == [worse, typo], stats
    assert sysctl(fleet, worse, "net.core.somaxconn") == "8"
    assert "net.core.somaxconn = 8" in fleet.exec(fleet.member(worse), "cat", DROP_IN)
    assert snapshot(fleet, typo) == before
    lines = summary(report)
    assert lines[0].endswith("rollback off): every batch done, 2 host(s) failed within max_fail_percentage"), lines[0]
    line = line_of(lines, worse)
    assert line.startswith("worse, left tuned: %s (batch 1): got worse: ListenOverflows" % worse), line
    assert line.endswith("left tuned (tcp_tune_rollback: false): undo with ansible-playbook linuxnet.tcp.restore --limit %s" % worse)
    line = line_of(lines, typo)
    assert line.startswith("failed: %s (batch 2): failed at " % typo) and "unknown tuning profile(s) wbe" in line, line
    assert line.endswith("; nothing to roll back: this run changed nothing on it"), line
