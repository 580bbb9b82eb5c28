"""Failure behaviour across a fleet: one member stopped (unreachable) and one with a read-only /proc/sys (an
unprivileged container) must not stop the others, and the audit's fleet report lists both.

The fleet: two healthy members, one stopped after start (it stays in the inventory), one unprivileged.
"""
from __future__ import annotations

import json
import os

import pytest

from fleet_fixtures import (ROOT, Fleet, fleet_module, fleet_name, host_results, json_callback_env, parse_json_stdout, run, tool)

pytestmark = pytest.mark.containers
podman = fleet_module.podman


@pytest.fixture(scope="module")
def broken_fleet(tmp_path_factory):
    fleet = Fleet(fleet_name("f"), 2, releases=("debian12", "debian13"))
    down = fleet.add("down", "debian12")
    readonly = fleet.add("ro", "debian11", privileged=False)
    try:
        fleet.up()
        fleet.stop(down)
        work = tmp_path_factory.mktemp("failures")
        inventory = fleet.write_inventory(str(work / "fleet.yml"))
        yield {"fleet": fleet, "work": work, "inventory": inventory, "down": down.name, "ro": readonly.name,
               "healthy": [m.name for m in fleet.members[:2]]}
    finally:
        fleet.down()


def playbook(broken, name, **extra_vars):
    done = run([tool("ansible-playbook"), "-i", broken["inventory"], os.path.join(ROOT, "playbooks", name),
                "-e", json.dumps(extra_vars)], cwd=broken["work"], env=json_callback_env(ANSIBLE_FORKS="10"), timeout=900)
    return done, parse_json_stdout(done)


def test_tune_goes_on_without_the_broken_members(broken_fleet):
    fleet = broken_fleet["fleet"]
    assert fleet.exec(fleet.member(broken_fleet["ro"]), "grep", "-w", "/proc/sys", "/proc/mounts").split()[3].startswith("ro")
    done, report = playbook(broken_fleet, "tune.yml", tcp_tuning_profiles=["web"], tcp_tuning_name="fleet")
    stats = report["stats"]
    assert done.returncode == 4, "rc 4 means unreachable hosts only, got %d: %s" % (done.returncode, json.dumps(stats))
    assert stats[broken_fleet["down"]]["unreachable"] == 1 and stats[broken_fleet["down"]]["changed"] == 0, stats
    for host in broken_fleet["healthy"] + [broken_fleet["ro"]]:
        assert stats[host]["failures"] == 0 and stats[host]["unreachable"] == 0 and stats[host]["ok"] > 0, (host, stats)
    for host in broken_fleet["healthy"]:
        assert stats[host]["changed"] > 0, (host, stats)
        member = fleet.member(host)
        assert fleet.exec(member, "cat", "/proc/sys/net/core/somaxconn").strip() == "16384"
        assert "net.core.somaxconn = 16384" in fleet.exec(member, "cat", "/etc/sysctl.d/90-linuxnet-fleet.conf")
    said = host_results(report, "Show the summary")
    for host in broken_fleet["healthy"]:
        assert "mounted read-only" not in json.dumps(said[host]["tcp_tuning_summary"]), said[host]
    assert "mounted read-only" in json.dumps(said[broken_fleet["ro"]]["tcp_tuning_summary"]), said[broken_fleet["ro"]]
    assert stats[broken_fleet["ro"]]["changed"] == 0, stats
    ro = fleet.member(broken_fleet["ro"])
    assert fleet.exec(ro, "cat", "/proc/sys/net/core/somaxconn").strip() != "16384"
    assert podman("exec", ro.name, "test", "-e", "/etc/sysctl.d/90-linuxnet-fleet.conf", check=False).returncode == 1


def test_audit_report_lists_the_broken_members(broken_fleet):
    report_dir = broken_fleet["work"] / "report"
    done, report = playbook(broken_fleet, "audit.yml", tcp_audit_report_dir=str(report_dir), tcp_audit_report_formats=["json", "md"])
    stats = report["stats"]
    assert done.returncode == 4, "rc 4 means unreachable hosts only, got %d: %s" % (done.returncode, json.dumps(stats))
    assert stats[broken_fleet["down"]]["unreachable"] == 1
    for host in broken_fleet["healthy"] + [broken_fleet["ro"]]:
        assert stats[host]["failures"] == 0 and stats[host]["unreachable"] == 0, (host, stats)
    with open(report_dir / "report.json", encoding="utf-8") as handle:
        doc = json.load(handle)
    fleet = doc["fleet"]
    assert fleet["hosts_without_facts"] == [broken_fleet["down"]], fleet["hosts_without_facts"]
    audited = sorted(summary["host"] for summary in doc["hosts"])
    assert audited == sorted(broken_fleet["healthy"] + [broken_fleet["ro"]])
    markdown = (report_dir / "report.md").read_text()
    assert broken_fleet["down"] in markdown and broken_fleet["ro"] in markdown
    shown = host_results(report, "Show the fleet summary and where the report is")
    (summary,) = [res["msg"] for res in shown.values() if not res.get("skipped")]
    assert "No facts from: %s" % broken_fleet["down"] in summary, summary
