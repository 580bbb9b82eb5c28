"""TCP facts in inventory across a fleet of real containers.

- The fleet harness (tests/fleet/fleet.py) from the command line: up, inventory, storm, down.
- ``facts_modules = ansible.builtin.setup, linuxnet.tcp.tcp_facts`` from inventory/ansible.cfg.example (the file
  itself, only the cache directory is redirected): a plain ``gather_facts`` play fills the jsonfile cache with both
  modules' facts, the TCP part in its summary form.
- inventory/constructed.yml against that cache: ``ansible-inventory --graph`` and ``--list`` put the host with a
  TIME_WAIT storm in ``tcp_time_wait_storm``, the host leaking CLOSE_WAIT sockets in ``tcp_close_wait_leak``, and
  the clean host in neither, without connecting to any host.
"""
from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from fleet_fixtures import (FLEET_PY, ROOT, Fleet, FleetError, fleet, fleet_inventory, fleet_name,  # noqa: F401 pylint: disable=unused-import
                            host_results, json_callback_env, parse_json_stdout, run, tool, tool_env)

pytestmark = pytest.mark.containers

STORM = 12000  # TIME_WAIT sockets; inventory/constructed.yml's default threshold is 10000
LEAK = 25  # CLOSE_WAIT sockets; threshold 10

GATHER_PLAY = """\
- name: Gather facts the way every play does
  hosts: fleet
  module_defaults:
    linuxnet.tcp.tcp_facts:
      summary: true
  tasks:
    - name: TCP facts are there without a tcp_facts task
      ansible.builtin.debug:
        msg: "{{ ansible_facts.tcp.states.TIME_WAIT }}"
"""


def test_harness_command_line(tmp_path):
    name = fleet_name("cli")
    inventory = tmp_path / "cli.yml"
    try:
        done = run([tool("python"), FLEET_PY, "up", "--name", name, "--count", "2", "--inventory", inventory])
        assert done.returncode == 0, done.stderr
        assert "started 2 containers" in done.stdout
        listed = run(["podman", "ps", "--filter", "label=linuxnet.tcp.fleet=" + name, "--format", "{{.Names}} {{.Image}}"])
        assert sorted(listed.stdout.split("\n")[:-1]) == [name + "-01 localhost/linuxnet-tcp-test:debian11",
                                                          name + "-02 localhost/linuxnet-tcp-test:debian12"]
        hosts = json.loads(run([tool("ansible-inventory"), "-i", inventory, "--list"]).stdout)
        assert sorted(hosts["fleet"]["hosts"]) == [name + "-01", name + "-02"]
        assert hosts["debian12"]["hosts"] == [name + "-02"]
        assert hosts["_meta"]["hostvars"][name + "-01"]["ansible_connection"] == "containers.podman.podman"
        ping = run([tool("ansible"), "-i", inventory, "fleet", "-m", "ansible.builtin.ping"])
        assert ping.returncode == 0 and ping.stdout.count("SUCCESS") == 2, ping.stdout + ping.stderr
        storm = run([tool("python"), FLEET_PY, "storm", "--name", name, "--close-wait", "3", "--hold", "60", name + "-02"])
        assert storm.returncode == 0, storm.stderr
        pid = json.loads(storm.stdout.split(" ", 1)[1])["pid"]
        state = run(["podman", "exec", name + "-02", "cat", "/proc/%d/net/tcp" % pid]).stdout
        assert len(re.findall(r"^\s*\d+: \S+ \S+ 08 ", state, re.M)) == 3  # 08: CLOSE_WAIT
        bad = run([tool("python"), FLEET_PY, "storm", "--name", name, "lntcp-not-a-member"])
        assert bad.returncode == 1 and "not a running member" in bad.stderr
    finally:
        down = run([tool("python"), FLEET_PY, "down", "--name", name])
    assert down.returncode == 0 and "removed 2 containers" in down.stdout, down.stdout + down.stderr
    assert run(["podman", "ps", "-a", "-q", "--filter", "label=linuxnet.tcp.fleet=" + name]).stdout == ""


def test_harness_bounds():
    with pytest.raises(FleetError, match="between 1 and 30"):
        Fleet("lntcp-fleet-x", 31)
    with pytest.raises(FleetError, match="must start with 'lntcp-'"):
        Fleet("web", 2)
    members = Fleet("lntcp-fleet-x", 30).members
    assert [m.release for m in members[:4]] == ["debian11", "debian12", "debian13", "debian11"]
    assert members[-1].name == "lntcp-fleet-x-30"


@pytest.fixture(scope="module")
def cached(fleet, fleet_inventory, tmp_path_factory):
    """Storm on member 1, leak on member 2, member 3 clean; one gather_facts play with the example ansible.cfg."""
    work = tmp_path_factory.mktemp("facts-cache")
    shutil.copy(os.path.join(ROOT, "inventory", "ansible.cfg.example"), work / "ansible.cfg")
    (work / "gather.yml").write_text(GATHER_PLAY)
    cache = work / "cache"
    storm, leak, clean = fleet.members
    fleet.storm(storm, time_wait=STORM)
    holder = fleet.storm(leak, close_wait=LEAK, hold=300)
    # Run from `work`, so that Ansible reads work/ansible.cfg: the example file, unchanged.
    env = json_callback_env(ANSIBLE_CACHE_PLUGIN_CONNECTION=cache)
    done = run([tool("ansible-playbook"), "-i", fleet_inventory, "gather.yml"], cwd=work, env=env)
    report = parse_json_stdout(done)
    assert done.returncode == 0, json.dumps(report["stats"]) + done.stderr[-3000:]
    return {"work": work, "cache": cache, "report": report, "storm": storm.name, "leak": leak.name, "clean": clean.name,
            "holder": holder, "env": tool_env(ANSIBLE_CACHE_PLUGIN_CONNECTION=cache)}


def read_cache(cached, host):
    """The jsonfile cache entry of a host (ansible-core 2.19 wraps it as {"__payload__": "<json>"})."""
    paths = [p for p in os.listdir(cached["cache"]) if p == host or p.endswith("_" + host)]
    assert len(paths) == 1, os.listdir(cached["cache"])
    with open(os.path.join(cached["cache"], paths[0]), encoding="utf-8") as handle:
        data = json.load(handle)
    return json.loads(data["__payload__"]) if "__payload__" in data else data


def test_facts_modules_fill_the_cache(fleet, cached):
    seen = host_results(cached["report"], "TCP facts are there without a tcp_facts task")
    assert int(seen[cached["storm"]]["msg"]) >= STORM, seen
    for member in fleet.members:
        facts = read_cache(cached, member.name)
        # ansible.builtin.setup ran: the release of each member's image.
        assert facts["ansible_distribution_major_version"] == member.release[len("debian"):]
        # linuxnet.tcp.tcp_facts ran, in its compact form (module_defaults summary: true).
        tcp = facts["tcp"]
        assert tcp["collection"]["summary"] is True and tcp["collection"]["backend"] == "netlink"
        assert len(tcp["time_wait"]["by_remote"]) <= 5 and len(json.dumps(tcp)) < 6000
    leak = read_cache(cached, cached["leak"])["tcp"]["close_wait"]
    assert leak["total"] == LEAK
    assert [(p["pid"], p["count"]) for p in leak["by_process"]] == [(cached["holder"]["pid"], LEAK)]
    assert read_cache(cached, cached["storm"])["tcp"]["states"]["TIME_WAIT"] >= STORM
    assert read_cache(cached, cached["clean"])["tcp"]["states"]["total"] == 0


LOCAL_PLAY = """\
- name: Plain fact gathering, no linuxnet.tcp module named anywhere
  hosts: fleet
  tasks:
    - name: Local facts from the audit role's tcp.fact
      ansible.builtin.debug:
        msg: "{{ ansible_local.tcp.states.CLOSE_WAIT }}"
"""


def test_audit_local_facts_in_plain_gather_facts(fleet, fleet_inventory, cached):
    """The second way: the audit role installs tcp.fact, then any play's gather_facts has ansible_local.tcp."""
    leak = cached["leak"]
    work = cached["work"] / "local"  # no ansible.cfg here: default fact gathering (setup only), no cache
    work.mkdir()
    (work / "local.yml").write_text(LOCAL_PLAY)
    done = run([tool("ansible-playbook"), "-i", fleet_inventory, os.path.join(ROOT, "playbooks", "audit.yml"), "-e",
                json.dumps({"tcp_audit_hosts": leak, "tcp_audit_local_facts": True, "tcp_audit_report": False,
                            "tcp_audit_show_summary": False})], cwd=work)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    done = run([tool("ansible-playbook"), "-i", fleet_inventory, "local.yml", "-l", leak], cwd=work, env=json_callback_env())
    report = parse_json_stdout(done)
    assert done.returncode == 0, json.dumps(report)[-5000:]
    assert host_results(report, "Local facts from the audit role's tcp.fact")[leak]["msg"] in (LEAK, str(LEAK))
    fact = json.loads(fleet.exec(fleet.member(leak), "/etc/ansible/facts.d/tcp.fact"))
    assert fact["states"]["CLOSE_WAIT"] == LEAK and not fact["errors"]


def plain(value):
    """ansible-inventory --list (2.19) writes strings built by templates as {"__ansible_unsafe": "..."}."""
    return value["__ansible_unsafe"] if isinstance(value, dict) and set(value) == {"__ansible_unsafe"} else value


def test_constructed_groups_from_cached_facts(fleet, fleet_inventory, cached):
    constructed = os.path.join(ROOT, "inventory", "constructed.yml")
    # No container is needed any more: stop them all, so that nothing below can come from a live host.
    for member in fleet.members:
        fleet.stop(member)
    argv = [tool("ansible-inventory"), "-i", fleet_inventory, "-i", constructed]
    graph = run(argv + ["--graph"], cwd=cached["work"], env=cached["env"])
    assert graph.returncode == 0, graph.stderr
    assert re.search(r"@tcp_time_wait_storm:\n[ |]*--%s\n" % re.escape(cached["storm"]), graph.stdout), graph.stdout
    assert re.search(r"@tcp_close_wait_leak:\n[ |]*--%s\n" % re.escape(cached["leak"]), graph.stdout), graph.stdout
    listing = json.loads(run(argv + ["--list"], cwd=cached["work"], env=cached["env"]).stdout)
    assert listing["tcp_time_wait_storm"]["hosts"] == [cached["storm"]]
    assert listing["tcp_close_wait_leak"]["hosts"] == [cached["leak"]]
    assert sorted(listing["tcp_backend_netlink"]["hosts"]) == sorted(m.name for m in fleet.members)
    assert "tcp_ephemeral_port_pressure" not in listing and "tcp_listen_overflow" not in listing
    hostvars = {host: {k: plain(v) for k, v in hvars.items()} for host, hvars in listing["_meta"]["hostvars"].items()}
    assert hostvars[cached["leak"]]["tcp_close_wait_count"] == LEAK
    assert hostvars[cached["leak"]]["tcp_close_wait_top_process"] == "python3"
    assert hostvars[cached["clean"]]["tcp_time_wait_count"] == 0
    # Thresholds are variables of the first inventory: raised for the fleet group, the leak no longer counts.
    raised = cached["work"] / "raised.yml"
    hosts = fleet.inventory()
    hosts["all"]["children"]["fleet"]["vars"]["tcp_close_wait_leak_min"] = LEAK + 1
    raised.write_text(json.dumps(hosts))
    listing = json.loads(run([tool("ansible-inventory"), "-i", raised, "-i", constructed, "--list"], cwd=cached["work"],
                             env=cached["env"]).stdout)
    assert "tcp_close_wait_leak" not in listing and listing["tcp_time_wait_storm"]["hosts"] == [cached["storm"]]
    # Without the cache, the same inventory builds no TCP group at all.
    empty = run(argv + ["--graph"], cwd=cached["work"], env=tool_env(ANSIBLE_CACHE_PLUGIN_CONNECTION=cached["work"] / "none"))
    assert empty.returncode == 0 and "@tcp_" not in empty.stdout, empty.stdout
