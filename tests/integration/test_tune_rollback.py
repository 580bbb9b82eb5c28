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
- a re-run that changes nothing reads no counter and waits for no health window, and says so in one line;
- check mode is the first play alone: it changes nothing, says per host what a rollback would put back and waits
  for no health window (the inventory's health window of 30 s, a group variable, is the one the summary states);
- tcp_tune_rollback=false with max_fail_percentage 50: the worse host keeps the change, the roll goes on;
- bad input stops the run before any change, named by variable: a rollback that is no boolean, a zero window, a
  percentage over 100, an unknown tcp_tune_* name, a zero window in one host's host_vars, health windows that differ
  between hosts, and the tuning role's own variables of one host (a misspelt profile in its host_vars, a reserved
  port that is none, a misspelt sysctl key, found on the host's kernel with the closest real one);
- the tcp_tune_* values each host runs with: its inventory's (group_vars, host_vars) or the extra vars', converted
  to the spec's types, else the argument spec's default, which is the only place the defaults are written
  (controller-only plays);
- the summary's own cut of the hosts into batches (which decides the batch that prints it) equals the batches
  Ansible runs, for numbers, percentages and lists as serial (controller-only plays, no containers).
Health windows are 1 to 3 seconds (30 s from the inventory in check mode, which waits for none). On the 2-core
build machine the module took 3 min 4 s at a load average of 0.9 to 2.7 before the first play checked every host;
with that check and the bad-input cases of the tuning variables, 8 to 11 min at a load average of 10 to 17 (other
helpers' suites on the same 2 cores).
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
CHECK = "Check and convert the playbook's variables (each host's inventory or extra value, else the default)"


def test_playbook_spec_defaults_are_the_play_defaults():
    """The argument spec (what AWX's survey is checked against) gives the defaults the playbook really uses, and
    is the only place they are written: tcp_check_vars fills them in, no play vars of tcp_tune_* (they would beat the
    inventory), no default in a template or a task file."""
    with open(PLAYBOOK, encoding="utf-8") as handle:
        text = handle.read()
    plays = yaml.safe_load(text)
    spec = plays[0]["vars"]["__tcp_tune_spec"]
    (check,) = [task for task in plays[0]["tasks"] if task["name"] == CHECK]
    assert "linuxnet.tcp.tcp_check_vars(__tcp_tune_spec)" in check["ansible.builtin.set_fact"]["__tcp_tune"]
    assert not any(key.startswith("tcp_tune_") for play in plays for key in play.get("vars", {})), "play vars beat the inventory"
    for key in KEYWORDS:
        assert "%s | default(%r)" % (key, spec[key]["default"]) in text.replace('"', "'"), key
    # Outside the keywords (which cannot see host facts), no tcp_tune_* default anywhere.
    others = re.sub(r"^\s*(hosts|serial|max_fail_percentage): .*$", "", text, flags=re.M)
    roll = ""
    for directory in ("templates", "tasks"):
        base = os.path.join(ROOT, "playbooks", directory)
        for name in sorted(os.listdir(base)):
            with open(os.path.join(base, name), encoding="utf-8") as handle:
                roll += handle.read()
    outputs = r"(?!host\b|start\b|rates\b|roll\b)"
    assert not re.findall(r"tcp_tune_%s\w+ \| default\(" % outputs, others + roll)
    # The templates and task files of the roll read the converted values (__tcp_tune.vars.NAME), never the variables
    # as given (a string from -e where a list is wanted); "NAME: value" in a message is text.
    code = re.sub(r"\{#.*?#\}|^\s*#.*$", "", roll, flags=re.S | re.M)
    assert not re.findall(r"(?<![.\w])tcp_tune_%s\w+\b(?! *:)" % outputs, code)


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
        msg: "{{ __tcp_tune.vars }}"
    - ansible.builtin.set_fact:
        roll: "{{ lookup('ansible.builtin.template', 'SUMMARY') | from_json }}"
      run_once: true
    - ansible.builtin.debug:
        msg: "{{ roll.lines }}"
      run_once: true
      when: roll.ends
"""


def play_one(tmp_path, inventory, *extra):
    """tune.yml's first play up to its input check (the tuning role's check would read this host), then the stand-in."""
    with open(PLAYBOOK, encoding="utf-8") as handle:
        plays = yaml.safe_load(handle)
    first = dict(plays[0], tasks=plays[0]["tasks"][:2])
    assert [task["name"] for task in first["tasks"]] == [CHECK, "Stop on bad input, before any change"]
    (tmp_path / "play.yml").write_text(yaml.safe_dump([first]) + SETTLED_ROLL.replace(
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
    # Converted to the spec's types: the extra var "2" is the number 2.0, the counter a list.
    common = {"tcp_tune_hosts": "all", "tcp_tune_serial": "25%", "tcp_tune_max_fail_percentage": 0.0,
              "tcp_tune_health_window": 30, "tcp_tune_counters": ["RetransSegs"], "tcp_tune_tolerance": 2.0}
    assert settled == {"h1": dict(common, tcp_tune_slack=1.0, tcp_tune_rollback=True),
                       "h2": dict(common, tcp_tune_slack=1.0, tcp_tune_rollback=False),
                       "h3": dict(common, tcp_tune_slack=5.0, tcp_tune_rollback=True)}, settled
    (lines,) = [result["msg"] for play in report["plays"] for task in play["tasks"]
                for result in task["hosts"].values() if isinstance(result.get("msg"), list)]
    assert lines[0] == ("linuxnet.tcp.tune: 3 host(s) in 3 batch(es) (serial 25%, max_fail_percentage 0, health window"
                        " 30 s, rollback on for 2 of 3 hosts): every batch done, nothing changed on any host (no health "
                        "window needed)"), lines[0]

    # A value of one host's inventory is checked too (not only the first host's), before anything runs.
    inventory["all"]["hosts"]["h3"]["tcp_tune_health_window"] = 0
    rc, report = play_one(tmp_path, inventory)
    failed = {host: result["msg"] for play in report["plays"] for task in play["tasks"]
              for host, result in task["hosts"].items() if result.get("failed")}
    assert rc == 2 and "tcp_tune_health_window must be at least 1 second (got 0)" in failed["h3"], failed
    # A string where a list is wanted is a list of one; a misspelt name is reported with the closest one.
    inventory["all"]["hosts"]["h3"]["tcp_tune_health_window"] = 30
    rc, report = play_one(tmp_path, inventory, "tcp_tune_counters=ListenDrops", "tcp_tune_slak=2")
    failed = {host: result["msg"] for play in report["plays"] for task in play["tasks"]
              for host, result in task["hosts"].items() if result.get("failed")}
    assert rc == 2 and failed["h1"] == ("linuxnet.tcp.tune: tcp_tune_slak is not a known variable (did you mean "
                                        "tcp_tune_slack?); known: tcp_tune_counters, tcp_tune_health_window, tcp_tune_hosts, "
                                        "tcp_tune_max_fail_percentage, tcp_tune_rollback, tcp_tune_serial, tcp_tune_slack, "
                                        "tcp_tune_tolerance; nothing was changed"), failed
    rc, report = play_one(tmp_path, inventory, "tcp_tune_counters=ListenDrops")
    settled = {host: result["msg"] for play in report["plays"] for task in play["tasks"]
               for host, result in task["hosts"].items() if isinstance(result.get("msg"), dict)}
    assert rc == 0 and [values["tcp_tune_counters"] for values in settled.values()] == [["ListenDrops"]] * 3, settled


# The summary decides which batch ends the roll by cutting the play's hosts into batches as Ansible does: checked
# here against the batches Ansible really runs (a controller-only play: set_fact and assert need no connection).
BATCHES_PLAY = """
# As tune.yml's first play leaves them, before the roll: every host's facts (the summary reads the other hosts' too).
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact:
        __tcp_tune:
          vars: {tcp_tune_health_window: 1, tcp_tune_rollback: true, tcp_tune_max_fail_percentage: 0.0,
                 tcp_tune_serial: "{{ tcp_tune_serial }}"}
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
    # From the inventory: one host's bad value, and health windows that differ (a batch waits once for all); the
    # tuning role's variables of one host of the last batch, checked on every host before the roll (the misspelt key
    # with the host's own kernel, which the container shares).
    kernel = os.uname().release
    for host_vars, said in (({names[2]: {"tcp_tune_health_window": 0}}, "tcp_tune_health_window must be at least 1 second (got 0)"),
                            ({names[1]: {"tcp_tune_health_window": 5}}, "tcp_tune_health_window must be the same for every host"),
                            ({names[3]: {"tcp_tuning_profiles": ["wbe"]}},
                             "linuxnet.tcp.tuning: tcp_tuning_profiles: unknown tuning profile(s) wbe (did you mean web?)"),
                            ({names[3]: {"tcp_tuning_reserved_ports": [8080, "80-abc"]}},
                             'tcp_tuning_reserved_ports[1] must be a port from 1 to 65535 or a range "low-high" of them, '
                             'got "80-abc" (a string); nothing was changed'),
                            ({names[3]: {"tcp_tuning_settings": {"net.ipv4.tcp_fin_timout": 30}}},
                             "tcp_tuning_settings: net.ipv4.tcp_fin_timout is not a sysctl of this host's kernel (%s) nor "
                             "one the collection knows (did you mean net.ipv4.tcp_fin_timeout?)" % kernel)):
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
    # The re-run: every host predicted and found unchanged, so no counter is read and no window waited for.
    rc, report = tune(roll, host_vars, tcp_tune_serial="50%", tcp_tune_health_window=2)
    assert rc == 0, json.dumps(report["stats"])
    for host in names:
        assert report["stats"][host]["changed"] == 0, (host, report["stats"][host])
    lines = summary(report)
    assert lines[0].endswith("every batch done, nothing changed on any host (no health window needed)"), lines[0]
    assert lines[1:] == ["nothing to change (4 host(s)): %s" % ", ".join(names)], lines
    # The director counts as changing (its IPVS timeouts are not predicted), so its batch is measured before the role;
    # since nothing changed, no batch waits after it, and the other batch reads no counter at all.
    ran = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            ran.setdefault(task["task"]["name"], set()).update(h for h, r in task["hosts"].items() if not r.get("skipped"))
    assert ran.get("Read the counters at the start of the window before the change") == {names[0], names[1]}, ran
    assert not ran.get("Wait for the health window after the change"), ran
    assert not ran.get("Read the counters at the start of the window after the change"), ran
    plan = next(result["msg"] for play in report["plays"] for task in play["tasks"]
                if task["task"]["name"].startswith("Plan of the roll") for result in task["hosts"].values())
    assert plan[:3] == ["linuxnet.tcp.tune: 4 host(s) checked: 0 would change, 1 may change, 3 have nothing to change",
                        "may change (LVS directors: their IPVS timeouts and unit are not predicted): %s" % names[1],
                        "nothing to change: %s" % ", ".join(names[:1] + names[2:])], plan


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
    # Check mode is the first play alone: the roll's play matches no host.
    assert not reached(report)
    assert not [task["task"]["name"] for play in report["plays"] for task in play["tasks"]
                if task["task"]["name"].startswith(("Wait for the health window", "Read the counters"))]
    for host in names:
        line = line_of(lines, host)
        assert line.startswith("check mode: %s (batch 1): if it got worse, the rollback would put back " % host), line
        # database sets keepalive 300: the rollback would put back what the host has now.
        now = sysctl(fleet, host, "net.ipv4.tcp_keepalive_time")
        assert "net.ipv4.tcp_keepalive_time 300 -> %s" % now in line and "put back %s" % DROP_IN in line, line


def test_rollback_off_keeps_the_worse_host_tuned_and_the_roll_goes_on(roll):
    """The rollback choice as AWX's survey sends it (the string "false"), and a health rule from -e as text."""
    fleet, names = roll["fleet"], roll["names"]
    worse = names[1]
    fleet.accept_load(fleet.member(worse), seconds=60, port=20081)
    host_vars = {worse: {"tcp_tuning_profiles": ["web"], "tcp_tuning_settings": {"net.core.somaxconn": 8},
                         "tcp_tuning_allow_unsafe": True}}
    rc, report = tune(roll, host_vars, tcp_tune_serial=2, tcp_tune_max_fail_percentage=50, tcp_tune_health_window=2,
                      tcp_tune_rollback="false", tcp_tune_counters="ListenOverflows,ListenDrops")
    stats = report["stats"]
    assert rc == 2, json.dumps(stats)
    assert reached(report) == set(names), "one failed host of two is not more than 50 %: the roll goes on"
    assert [host for host in names if stats[host]["failures"]] == [worse], stats
    assert sysctl(fleet, worse, "net.core.somaxconn") == "8"
    assert "net.core.somaxconn = 8" in fleet.exec(fleet.member(worse), "cat", DROP_IN)
    lines = summary(report)
    assert lines[0].endswith("rollback off): every batch done, 1 host(s) failed within max_fail_percentage"), lines[0]
    line = line_of(lines, worse)
    assert line.startswith("worse, left tuned: %s (batch 1): got worse: ListenOverflows" % worse), line
    assert "RetransSegs" not in line, "only the counters given as text are watched: %s" % line
    assert line.endswith("left tuned (tcp_tune_rollback: false): undo with ansible-playbook linuxnet.tcp.restore --limit %s" % worse)
