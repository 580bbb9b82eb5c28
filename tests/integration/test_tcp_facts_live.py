"""Live tests of tcp_facts in a network namespace built by the test: a real TIME_WAIT storm, a CLOSE_WAIT leak
held by a known process, a listener with a full accept queue; counts compared with ``ss`` on the same namespace,
for both backends, through Ansible for real (ad-hoc ``ansible -m linuxnet.tcp.tcp_facts``).

Needs root (ip netns, setns). Everything talks to loopback inside the namespace, is bounded, and the
namespace is deleted by the fixture's finalizer.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import uuid

import pytest

from _procs import netns as netns_of, stop

pytestmark = pytest.mark.live

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.dirname(sys.executable)
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
SS_STATES = {"ESTAB": "ESTABLISHED", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV", "FIN-WAIT-1": "FIN_WAIT1",
             "FIN-WAIT-2": "FIN_WAIT2", "TIME-WAIT": "TIME_WAIT", "UNCONN": "CLOSE", "CLOSE-WAIT": "CLOSE_WAIT",
             "LAST-ACK": "LAST_ACK", "LISTEN": "LISTEN", "CLOSING": "CLOSING"}
SETTLED = ("LISTEN", "ESTABLISHED", "CLOSE_WAIT", "TIME_WAIT", "FIN_WAIT2", "SYN_SENT")
TIME_WAIT = 30000
CLOSE_WAIT = 40
CLOSE_WAIT_INBOUND = 10
# Outbound CLOSE_WAIT sockets keep the remote port; inbound ones (accepted on 7000, the clients closed) are
# grouped by the listening port instead, their remote ports being the clients' ephemeral ports.
LEAK_REMOTES = [{"address": "127.0.0.1", "port": 5432, "local_port": None, "count": CLOSE_WAIT},
                {"address": "127.0.0.1", "port": None, "local_port": 7000, "count": CLOSE_WAIT_INBOUND}]
ESTABLISHED = 200
BACKLOG = 8
QUEUED = 20

if os.geteuid() != 0:
    pytest.skip("live tests need root for ip netns and setns", allow_module_level=True)


def sh(*argv, **kwargs):
    return subprocess.run(list(argv), check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, LC_ALL="C"), timeout=120, **kwargs)


@pytest.fixture(scope="module")
def storm():
    """A namespace with the storm table held by a live _storm.py process; deleted afterwards."""
    # Namespaced keys, written only inside this namespace: a wide port range, and no TIME_WAIT reuse so
    # every short connection leaves its TIME_WAIT socket.
    with netns_of("net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=0") as name:
        proc = None
        try:
            proc = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, os.path.join(HERE, "_storm.py"),
                                     "--time-wait", str(TIME_WAIT), "--close-wait", str(CLOSE_WAIT),
                                     "--close-wait-inbound", str(CLOSE_WAIT_INBOUND), "--established", str(ESTABLISHED),
                                     "--backlog", str(BACKLOG), "--queued", str(QUEUED), "--hold", "170"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            info = json.loads(proc.stdout.readline())
            assert info["ready"]
            info["name"] = name
            info["path"] = "/run/netns/" + name
            yield info
        finally:
            stop(proc, timeout=20)


def ss_counts(name):
    out = sh("ip", "netns", "exec", name, "ss", "-tanH").stdout
    counts = {}
    for line in out.splitlines():
        if line.strip():
            state = SS_STATES[line.split()[0]]
            counts[state] = counts.get(state, 0) + 1
    return counts


def ansible_facts(**args):
    """Run the module through Ansible for real and return ansible_facts.tcp."""
    argv = [os.path.join(BIN, "ansible"), "localhost", "-c", "local", "-m", "linuxnet.tcp.tcp_facts",
            "-a", json.dumps(args)]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_STDOUT_CALLBACK="json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                          check=False)
    result = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return done.returncode, result


@pytest.mark.parametrize("backend", ["netlink", "proc"])
def test_counts_match_ss(storm, backend):
    before = ss_counts(storm["name"])
    code, result = ansible_facts(netns=storm["path"], backend=backend)
    after = ss_counts(storm["name"])
    assert code == 0, result
    assert result["changed"] is False
    tcp = result["ansible_facts"]["tcp"]
    assert tcp["collection"]["backend"] == backend and tcp["collection"]["netns"] == storm["path"]
    assert tcp["collection"]["initial_netns"] is False
    for state in SETTLED:
        assert before.get(state, 0) == after.get(state, 0), "ss itself saw %s move" % state
        assert tcp["states"][state] == before.get(state, 0), state
    assert tcp["states"]["TIME_WAIT"] >= TIME_WAIT  # the storm, plus the few from the CLOSE_WAIT setup
    assert tcp["close_wait"]["by_process"][0]["remotes"] == LEAK_REMOTES


def test_storm_diagnosis(storm):
    code, result = ansible_facts(netns=storm["path"], top=3)
    assert code == 0, result
    tcp = result["ansible_facts"]["tcp"]
    tw = tcp["time_wait"]
    two_thirds = TIME_WAIT * 2 // 3
    assert tw["by_remote"][0] == {"address": "127.0.0.1", "port": 3306, "count": two_thirds}
    assert tw["by_remote"][1] == {"address": "127.0.0.1", "port": 5432, "count": TIME_WAIT - two_thirds}
    assert tw["by_remote"][2] == {"address": "::1", "port": 3306, "count": 100}
    # CLOSE_WAIT leak: every socket attributed to the storm process.
    cw = tcp["close_wait"]
    total = CLOSE_WAIT + CLOSE_WAIT_INBOUND
    assert cw["total"] == total and cw["unowned"] == 0
    assert [(p["pid"], p["count"], p["user"]) for p in cw["by_process"]] == [(storm["pid"], total, "root")]
    assert cw["by_process"][0]["remotes"] == LEAK_REMOTES
    # The listener that never accepts: queue = backlog + 1 (sk_acceptq_is_full() uses '>').
    full = tcp["listeners"][0]
    assert (full["port"], full["queue"], full["backlog"], full["pid"]) == (8080, BACKLOG + 1, BACKLOG, storm["pid"])
    assert tcp["counters"]["ListenOverflows"] > 0
    busiest = tcp["ephemeral_ports"]["busiest"]
    assert tcp["ephemeral_ports"]["range"] == [1024, 65535]
    assert (busiest["address"], busiest["port"]) == ("127.0.0.1", 3306)
    assert busiest["in_use"] == two_thirds and 0 < busiest["utilisation"] < 1
    assert tcp["counters"]["sockstat"]["tw"] >= TIME_WAIT
    assert tcp["collection"]["owners"]["complete"] is True


def test_summary_and_counts_only(storm):
    code, result = ansible_facts(netns=storm["path"], summary=True)
    assert code == 0, result
    small = result["ansible_facts"]["tcp"]
    assert len(small["time_wait"]["by_remote"]) <= 5 and len(json.dumps(small)) < 6000
    assert small["close_wait"]["by_process"][0]["remotes"] == LEAK_REMOTES[:1]  # the top remote only
    code, result = ansible_facts(netns=storm["path"], states=[], processes=False)
    assert code == 0, result
    counts = result["ansible_facts"]["tcp"]
    assert counts["states"]["TIME_WAIT"] == small["states"]["TIME_WAIT"]
    assert counts["peers"] == [] and counts["collection"]["owners"]["visibility"] == "not requested"


def test_check_mode_and_bad_netns(storm):
    code, result = ansible_facts(netns="/proc/self/ns/uts")
    assert code != 0 and "not a network namespace" in result["msg"]
    code, result = ansible_facts(netns="/run/netns/lntcp-absent-%s" % uuid.uuid4().hex[:6])
    assert code != 0 and "netns: cannot open" in result["msg"]


def test_returns_to_the_original_namespace(storm):
    from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.collect import gather  # pylint: disable=import-outside-toplevel
    before = os.readlink("/proc/thread-self/ns/net")
    facts = gather(netns=storm["path"], states=[], processes=False)
    assert os.readlink("/proc/thread-self/ns/net") == before
    assert facts["states"]["CLOSE_WAIT"] == CLOSE_WAIT + CLOSE_WAIT_INBOUND


def test_unprivileged_inside_the_namespace(storm, tmp_path):
    """As uid 65534 inside the namespace: same counts, owners hidden, and the result says so."""
    code = ("import json; "
            "from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.collect import gather; "
            "f = gather(states=['CLOSE_WAIT']); print(json.dumps(f))")
    # uid 65534 must reach the code and an interpreter: a checkout under a private directory (CI clones into
    # `mktemp -d`, mode 0700) is out of its reach, so it runs a world-readable copy of the target-side code (the
    # standard library only) with the system's python3.
    copy = tmp_path / "collections"
    shutil.copytree(os.path.join(ROOT, "plugins", "module_utils"),
                    str(copy / "ansible_collections" / "linuxnet" / "tcp" / "plugins" / "module_utils"))
    for path in [tmp_path] + list(tmp_path.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    parent = tmp_path.parent
    while str(parent) != "/" and parent.stat().st_mode & 0o005 != 0o005:
        parent.chmod(parent.stat().st_mode | 0o005)  # pytest's base directory is private too
        parent = parent.parent
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    out = sh("ip", "netns", "exec", storm["name"], "env", "PYTHONPATH=" + str(copy),
             "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", code).stdout
    facts = json.loads(out)
    assert facts["collection"]["privileged"] is False
    assert "only processes of uid 65534" in facts["collection"]["owners"]["visibility"]
    total = CLOSE_WAIT + CLOSE_WAIT_INBOUND
    assert facts["close_wait"]["total"] == total and facts["close_wait"]["unowned"] == total
    assert facts["collection"]["backend"] == "netlink"


def test_concurrent_dumps_read_the_requested_namespace(storm, monkeypatch):
    """The threaded path, forced on this table (kinds apart, each in two port ranges: four dumps, two at
    once): every dump reads the namespace asked for, the counts equal ss, and the caller comes back to its
    own namespace with no thread left behind."""
    from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import sockets as S  # pylint: disable=import-outside-toplevel
    from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import collect as R  # pylint: disable=import-outside-toplevel
    monkeypatch.setattr(S, "default_parts", lambda: 2)

    def four_dumps(mask, _full, _mini, _parts, walked=None):  # pylint: disable=unused-argument
        return [(mask & ~S.MINISOCK_STATES, 2), (mask & S.MINISOCK_STATES, 2)]

    monkeypatch.setattr(R, "dump_plan", four_dumps)
    home = os.readlink("/proc/thread-self/ns/net")
    threads = threading.active_count()
    before = ss_counts(storm["name"])
    facts = R.gather(netns=storm["path"], top=3)
    after = ss_counts(storm["name"])
    assert os.readlink("/proc/thread-self/ns/net") == home and threading.active_count() == threads
    for state in SETTLED:
        assert before.get(state, 0) == after.get(state, 0), "ss itself saw %s move" % state
        assert facts["states"][state] == before.get(state, 0), state
    assert facts["close_wait"]["by_process"][0]["remotes"] == LEAK_REMOTES
    assert facts["time_wait"]["by_remote"][0] == {"address": "127.0.0.1", "port": 3306, "count": TIME_WAIT * 2 // 3}
