"""Shared helpers and fixtures of the fleet tests (test_fleet_inventory, test_awx, test_fleet_failures).

A test module imports what it uses (``from fleet_fixtures import ...``); fixtures are module-scoped, so each test
module gets its own small fleet (3-4 containers from the local test images) that is removed by the fixture's
finalizer whatever happens. Names are ``lntcp-fleet-<random>`` so that parallel runs never collide.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from ansible_collections.linuxnet.tcp.tests.fleet import fleet as fleet_module

# The real path: the VM tests import this file through the collection link (.build/collections/.../tcp), and the
# paths built from it must name the checkout, not the link.
HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.dirname(sys.executable)
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
FLEET_PY = os.path.join(ROOT, "tests", "fleet", "fleet.py")  # the command line of the fleet, run by test_fleet_inventory
Fleet = fleet_module.Fleet
FleetError = fleet_module.FleetError


def fleet_name(kind: str) -> str:
    return "lntcp-fleet-%s-%s" % (kind, uuid.uuid4().hex[:6])


def tool_env(**extra) -> dict:
    """Environment for ansible-* tools: this venv first, the collection through its symlink, no colour."""
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
               ANSIBLE_NOCOLOR="1", NO_COLOR="1", LC_ALL="C.UTF-8", ANSIBLE_HOST_KEY_CHECKING="0",
               ANSIBLE_RETRY_FILES_ENABLED="0")
    # An ansible.cfg in the caller's directory or environment must not leak into the tests.
    env.pop("ANSIBLE_CONFIG", None)
    env.update({key: str(value) for key, value in extra.items()})
    return env


def run(argv, cwd=ROOT, env=None, timeout=600) -> subprocess.CompletedProcess:
    """Run a tool with an argument list; stdout and stderr are kept apart (JSON on stdout)."""
    return subprocess.run([str(a) for a in argv], cwd=str(cwd), env=env or tool_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, check=False)


def tool(name: str) -> str:
    return os.path.join(BIN, name)


def json_callback_env(**extra) -> dict:
    """ansible-playbook with the json stdout callback: the whole run as one JSON document on stdout."""
    return tool_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1", **extra)


def host_results(report: dict, task_name: str) -> dict:
    """{host: result} of the task with this name (in a role: "role : name") in a json callback report, merged over
    every play that ran it (a serial play appears once per batch)."""
    merged: dict = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == task_name or task["task"]["name"].endswith(" : " + task_name):
                for host, result in task["hosts"].items():
                    merged.setdefault(host, result)
    if merged:
        return merged
    raise AssertionError("no task %r in the run; tasks: %s" % (
        task_name, [t["task"]["name"] for p in report["plays"] for t in p["tasks"]]))


def parse_json_stdout(done: subprocess.CompletedProcess) -> dict:
    """The json callback's document. ansible.builtin.pause writes "Pausing for N seconds" to stdout ahead of it,
    so decoding starts at the first line that opens a JSON object."""
    start = 0 if done.stdout.startswith("{") else done.stdout.find("\n{") + 1
    try:
        return json.loads(done.stdout[start:])
    except ValueError as exc:
        raise AssertionError("not JSON (rc=%d):\n%s\n--- stderr ---\n%s" % (done.returncode, done.stdout[-6000:],
                                                                            done.stderr[-6000:])) from exc


@pytest.fixture(scope="module")
def fleet():
    """Three running members, one per Debian release (11, 12, 13), removed afterwards."""
    members = Fleet(fleet_name("t"), 3)
    try:
        members.up()
        yield members
    finally:
        members.down()


@pytest.fixture(scope="module")
def fleet_inventory(fleet, tmp_path_factory):
    return fleet.write_inventory(str(tmp_path_factory.mktemp("fleet") / "fleet.yml"))
