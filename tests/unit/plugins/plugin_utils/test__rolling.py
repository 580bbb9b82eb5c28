# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rolling tune's decisions (plugins/plugin_utils/_rolling.py): batches cut as Ansible cuts them (checked against
ansible-core's own PlaybookExecutor._get_serialized_batches), rates over a window, the health rule, and the summary
lines tests/integration/test_tune_rollback.py reads from whole playbook runs."""
from __future__ import annotations

import types

import pytest
from ansible.errors import AnsibleFilterError
from ansible.executor.playbook_executor import PlaybookExecutor

from ansible_collections.linuxnet.tcp.plugins.filter.tcp_tune_rates import tcp_tune_rates
from ansible_collections.linuxnet.tcp.plugins.filter.tcp_tune_roll import tcp_tune_roll
from ansible_collections.linuxnet.tcp.plugins.filter.tcp_tune_worse import tcp_tune_worse
from ansible_collections.linuxnet.tcp.plugins.plugin_utils import _rolling


def ansible_batches(hosts, serial):
    """The batches ansible-core itself runs: its PlaybookExecutor._get_serialized_batches, on an inventory and a play
    that hold just what it reads (the play keyword serial is a list: FieldAttribute isa='list' makes one value a list
    of one)."""
    inventory = types.SimpleNamespace(get_hosts=lambda pattern, order=None: list(hosts))
    play = types.SimpleNamespace(hosts="all", order=None, serial=serial if isinstance(serial, list) else [serial])
    return PlaybookExecutor._get_serialized_batches(types.SimpleNamespace(_inventory=inventory), play)


SERIALS = [1, 2, 3, 5, 2.5, "1", "2", " 3", 0, -1, "0", "25%", "30%", "50%", "100%", "10%", "1%", "0%", "150%", "-10%",
           [1, "50%"], [1, 2, 3], [], ["10%", "50%"], [1, 0], [2, "-10%"], ["100%", 1], [3, 1]]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 10, 12])
@pytest.mark.parametrize("serial", SERIALS, ids=repr)
def test_batches_are_ansibles(count, serial):
    hosts = ["h%02d" % index for index in range(count)]
    expected = ansible_batches(hosts, serial)
    assert _rolling.batches(hosts, serial) == expected
    assert [host for batch in expected for host in batch] == hosts, "every host in one batch, in order"


@pytest.mark.parametrize("serial", ["abc", "50.5%", "%", None, ["1", "x"], {"a": 1}], ids=repr)
def test_serial_ansible_refuses_is_a_clear_error(serial):
    hosts = ["a", "b", "c"]
    with pytest.raises((TypeError, ValueError)):
        ansible_batches(hosts, serial)
    with pytest.raises(_rolling.RollError, match=r"^tcp_tune_serial must be a number of hosts, a percentage \(N%\)"):
        _rolling.batches(hosts, serial)


SETTINGS = {"tcp_tune_counters": ["ListenOverflows", "RetransSegs", "TCPTimeWaitOverflow"], "tcp_tune_health_window": 4,
            "tcp_tune_tolerance": 0.5, "tcp_tune_slack": 1.0, "tcp_tune_serial": "25%", "tcp_tune_max_fail_percentage": 0.0,
            "tcp_tune_rollback": True}


@pytest.mark.parametrize("end, start, rates", [
    # (end - start) / window, rounded to 3 places, in the order of the watched counters.
    ({"ListenOverflows": 18, "RetransSegs": 1000, "TCPTimeWaitOverflow": 0}, {"ListenOverflows": 0, "RetransSegs": 999},
     {"ListenOverflows": 4.5, "RetransSegs": 0.25, "TCPTimeWaitOverflow": 0.0}),
    # A counter this kernel lacks (or null) is 0 at both ends; the other counters of the facts are not rated.
    ({"RetransSegs": 7, "InSegs": 100}, {"RetransSegs": None}, {"ListenOverflows": 0.0, "RetransSegs": 1.75, "TCPTimeWaitOverflow": 0.0}),
    ({"ListenOverflows": 1}, {}, {"ListenOverflows": 0.25, "RetransSegs": 0.0, "TCPTimeWaitOverflow": 0.0}),
    ({"ListenOverflows": 3, "RetransSegs": "10"}, {"ListenOverflows": 1}, {"ListenOverflows": 0.5, "RetransSegs": 2.5, "TCPTimeWaitOverflow": 0.0}),
])
def test_rates(end, start, rates):
    got = tcp_tune_rates(end, start, SETTINGS)
    assert got == rates and list(got) == SETTINGS["tcp_tune_counters"]
    assert all(type(rate) is float for rate in got.values())  # pylint: disable=unidiomatic-typecheck


def test_rates_round_to_three_places_and_need_a_window():
    assert _rolling.rates({"A": 10}, {"A": 0}, {"tcp_tune_counters": ["A"], "tcp_tune_health_window": 3}) == {"A": 3.333}
    with pytest.raises(AnsibleFilterError, match="tcp_tune_health_window must be at least 1 second"):
        tcp_tune_rates({}, {}, dict(SETTINGS, tcp_tune_health_window=0))
    with pytest.raises(AnsibleFilterError, match="the settings \\(the converted tcp_tune_\\* variables\\) lack tcp_tune_counters"):
        tcp_tune_rates({}, {}, {"tcp_tune_health_window": 1})
    # A reading that is no number is an error, not a 0 that would hide a host that got worse.
    with pytest.raises(AnsibleFilterError, match="counter RetransSegs at the end of the window must be a number, got 'n/a'"):
        tcp_tune_rates({"RetransSegs": "n/a"}, {}, SETTINGS)
    with pytest.raises(AnsibleFilterError, match="rate of A must be a number, got 'x'"):
        tcp_tune_worse({"A": "x"}, {}, {"tcp_tune_counters": ["A"], "tcp_tune_tolerance": 0, "tcp_tune_slack": 1})


@pytest.mark.parametrize("after, before, worse", [
    # Worse when after > before x (1 + 0.5) + 1.0.
    ({"ListenOverflows": 4.0}, {"ListenOverflows": 2.0}, []),                 # exactly the limit: healthy
    ({"ListenOverflows": 4.001}, {"ListenOverflows": 2.0}, ["ListenOverflows"]),
    ({"RetransSegs": 1.0}, {}, []),                                           # slack only: the idle host's noise
    ({"RetransSegs": 1.5, "ListenOverflows": 9}, {}, ["ListenOverflows", "RetransSegs"]),  # in the counters' order
    ({"ListenOverflows": 0.0}, {"ListenOverflows": 50.0}, []),               # better is never worse
    ({"TCPTimeWaitOverflow": None, "Other": 100}, {}, []),                   # null is 0; unwatched counters not judged
])
def test_health_rule(after, before, worse):
    assert tcp_tune_worse(after, before, SETTINGS) == worse


def test_health_rule_reads_tolerance_and_slack():
    assert tcp_tune_worse({"A": 2.5}, {"A": 1.0}, {"tcp_tune_counters": ["A"], "tcp_tune_tolerance": 0, "tcp_tune_slack": 1}) == ["A"]
    assert tcp_tune_worse({"A": 2.5}, {"A": 1.0}, {"tcp_tune_counters": ["A"], "tcp_tune_tolerance": 1, "tcp_tune_slack": 0}) == ["A"]
    assert tcp_tune_worse({"A": 2.5}, {"A": 1.0}, {"tcp_tune_counters": ["A"], "tcp_tune_tolerance": 2, "tcp_tune_slack": 0}) == []


# The summary, from hostvars-like mappings as tune.yml leaves them after a batch.
ROLLED_BACK = {
    "status": "worse", "changed": True, "measured": True, "worse": ["ListenOverflows"],
    "before": {"ListenOverflows": 0.0, "RetransSegs": 0.2}, "after": {"ListenOverflows": 4.5, "RetransSegs": 0.2},
    "restored": {"ListenOverflows": 0.25, "RetransSegs": 0.0},
    "rolled_back": ["restored: net.core.somaxconn 8 -> 4096", "restored: net.ipv4.tcp_fin_timeout 15 -> 60",
                    "put back: /etc/sysctl.d/90-linuxnet-tcp-fleet.conf", "removed: /etc/systemd/system/x.wants/y"],
    "still_worse": [],
}


def hostvars(hosts, **rollback):
    return {name: {"tcp_tune_host": host, "__tcp_tune": {"vars": dict(SETTINGS, tcp_tune_rollback=rollback.get(name, True))}}
            for name, host in hosts.items()}


def test_a_worse_batch_rolled_back_stops_the_roll():
    hosts = {"web1": {"status": "healthy", "changed": True, "measured": True}, "web2": ROLLED_BACK,
             "web3": dict(ROLLED_BACK, rolled_back=None, rollback_task="Apply the profile", rollback_error="is not managed by linuxnet.tcp"),
             "web4": None}
    del hosts["web3"]["rolled_back"], hosts["web3"]["restored"]
    data = hostvars(hosts)
    for name in data:
        data[name]["__tcp_tune"]["vars"]["tcp_tune_serial"] = [1, 2]
    roll = tcp_tune_roll(data, "web2", list(hosts), list(hosts), ["web2", "web3"])
    assert roll["lines"] == [
        "linuxnet.tcp.tune: 4 host(s) in 3 batch(es) (serial 1, 2, max_fail_percentage 0, health window 4 s, rollback on):"
        " the roll stopped after batch 2 of 3: 2 of its 2 host(s) failed",
        "tuned and healthy: web1 (batch 1)",
        "rolled back: web2 (batch 2): got worse: ListenOverflows 0.0 -> 4.5 -> 0.25 events/s (before -> tuned -> rolled"
        " back); restored net.core.somaxconn 8 -> 4096, net.ipv4.tcp_fin_timeout 15 -> 60; put back"
        " /etc/sysctl.d/90-linuxnet-tcp-fleet.conf; removed /etc/systemd/system/x.wants/y",
        'ROLLBACK FAILED: web3 (batch 2): got worse: ListenOverflows 0.0 -> 4.5 events/s (before -> tuned); the rollback'
        ' failed at "Apply the profile": is not managed by linuxnet.tcp; it keeps what this run changed: undo with'
        " ansible-playbook linuxnet.tcp.restore --limit web3",
        "not reached: web4 (batch 3): the roll stopped before its batch",
    ]
    assert (roll["ends"], roll["stops"], roll["batch"], roll["batches"], roll["batch_hosts"]) == (True, True, 2, 3, ["web2", "web3"])
    assert roll["by_host"]["web1"] == roll["lines"][1]


def test_rollback_outcomes_after_the_rollback():
    measured_again = dict(ROLLED_BACK, still_worse=["ListenOverflows", "RetransSegs"])
    not_measured = dict(ROLLED_BACK, restored_error="unreachable")
    del not_measured["restored"]
    lines = {name: _rolling.host_line(name, host, 1, True, True) for name, host in
             (("a", measured_again), ("b", not_measured))}
    assert lines["a"].endswith("; still worse after the rollback (ListenOverflows, RetransSegs): the change may not be the cause")
    assert lines["b"].startswith("rolled back: b (batch 1): got worse: ListenOverflows 0.0 -> 4.5 events/s (before -> tuned); restored")
    assert lines["b"].endswith("; not measured after the rollback: unreachable")


@pytest.mark.parametrize("host, rollback, reached, line", [
    (None, True, False, "left out: h: it did not answer before the roll started"),
    ({"status": "started"}, True, True, "lost: h (batch 2): unreachable during its batch; it may keep what this run changed"),
    ({"status": "healthy", "changed": False}, True, True, "nothing to change: h (batch 2)"),
    ({"status": "healthy", "changed": True, "measured": False}, True, True,
     "tuned, not measured: h (batch 2): it changed although the check before the roll predicted no change (something else"
     " changed it meanwhile?)"),
    ({"status": "failed", "changed": False, "task": "Apply", "error": "boom"}, True, True,
     'failed: h (batch 2): failed at "Apply": boom; nothing to roll back: this run changed nothing on it'),
    (dict(ROLLED_BACK, rolled_back=None), False, True, None),
    ({"status": "checked", "changed": True}, False, True,
     "check mode: h (batch 2): if it got worse, it would keep the change (tcp_tune_rollback: false)"),
])
def test_host_lines(host, rollback, reached, line):
    if line is None:  # worse, not rolled back (tcp_tune_rollback: false)
        host = {key: value for key, value in host.items() if key not in ("rolled_back", "restored")}
        line = ("worse, left tuned: h (batch 2): got worse: ListenOverflows 0.0 -> 4.5 events/s (before -> tuned); left"
                " tuned (tcp_tune_rollback: false): undo with ansible-playbook linuxnet.tcp.restore --limit h")
    assert _rolling.host_line("h", host, 2, rollback, reached) == line


def test_check_mode_says_what_a_rollback_would_put_back():
    revert = {"profile": {"profile": "fleet", "runtime": {"net.ipv4.tcp_keepalive_time": "7200", "net.core.default_qdisc": ""},
                          "files": {"/etc/sysctl.d/90-linuxnet-tcp-fleet.conf": None, "/etc/modules-load.d/x.conf": "x\n"},
                          "state": {"changed": True, "text": None}},
              "ipvs_timeouts": {"tcp": 900, "tcpfin": 120, "udp": 300},
              "files": [{"path": "/etc/systemd/system/ipvs.service", "before": "absent"}, {"path": "/etc/y", "before": "file"}],
              "directories": ["/etc/systemd/system/z.wants"]}
    result = {"applied": {"net.ipv4.tcp_keepalive_time": {"after": "300"}}, "restored": {}}
    data = hostvars({"db1": {"status": "checked", "changed": True}, "db2": {"status": "checked", "changed": False}})
    data["db1"].update(tcp_tuning_revert=revert, tcp_tuning_result=result)
    roll = tcp_tune_roll(data, "db1", ["db1", "db2"], ["db1", "db2"], ["db1", "db2"], True)
    assert roll["lines"] == [
        "linuxnet.tcp.tune: 2 host(s) in 2 batch(es) (serial 25%, max_fail_percentage 0, health window 4 s, rollback on):"
        " check mode, nothing was changed",
        "check mode: db1 (batch 1): if it got worse, the rollback would put back net.ipv4.tcp_keepalive_time 300 -> 7200,"
        ' net.core.default_qdisc ? -> "", remove /etc/sysctl.d/90-linuxnet-tcp-fleet.conf, put back /etc/modules-load.d/x.conf,'
        " remove /var/lib/linuxnet-tcp/sysctl-fleet.json, IPVS timeouts 900 120 300, remove /etc/systemd/system/ipvs.service,"
        " put back /etc/y, remove /etc/systemd/system/z.wants (if empty)",
        "nothing to change (1 host(s)): db2",
    ]


@pytest.mark.parametrize("statuses, max_fail, batch_now, state, ends", [
    # Every batch done: the last batch ends the roll.
    (["healthy", "healthy", "healthy", "healthy"], 0, ["c", "d"], "every batch done", True),
    # One failed host of a batch of two is not more than 50 %: the roll goes on after batch 1 (which does not end it).
    (["worse", "healthy", None, None], 50, ["a", "b"], None, False),
    (["worse", "healthy", "healthy", "healthy"], 50, ["c", "d"], "every batch done, 1 host(s) failed within max_fail_percentage", True),
    # More than 49.9 %: it stops.
    (["worse", "healthy", None, None], 49.9, ["a", "b"], "the roll stopped after batch 1 of 2: 1 of its 2 host(s) failed", True),
    # A host lost during its batch (no longer in ansible_play_batch) with the other one failed: the whole batch.
    (["failed", "started", None, None], 100, ["a"], "the roll stopped after batch 1 of 2: 2 of its 2 host(s) failed", True),
])
def test_when_the_roll_stops_or_ends(statuses, max_fail, batch_now, state, ends):
    names = ["a", "b", "c", "d"]
    hosts = {name: ({"status": status, "changed": True, "measured": True, "worse": [], "before": {}, "after": {},
                     "task": "t", "error": "e"} if status else None) for name, status in zip(names, statuses)}
    data = hostvars(hosts)
    for name in names:
        data[name]["__tcp_tune"]["vars"].update(tcp_tune_serial=2, tcp_tune_max_fail_percentage=float(max_fail))
    roll = tcp_tune_roll(data, batch_now[0], names, [n for n in names if (hosts[n] or {}).get("status") != "started"], batch_now)
    assert roll["ends"] is ends
    if state:
        assert roll["lines"][0] == ("linuxnet.tcp.tune: 4 host(s) in 2 batch(es) (serial 2, max_fail_percentage %s, health "
                                    "window 4 s, rollback on): %s" % ("%g" % max_fail, state))


def test_header_rollback_per_host_and_nothing_changed():
    data = hostvars({"a": {"status": "healthy", "changed": False}, "b": {"status": "healthy", "changed": False},
                     "c": {"status": "healthy", "changed": False}}, b=False)
    roll = tcp_tune_roll(data, "a", ["a", "b", "c"], ["a", "b", "c"], ["a", "b", "c"])
    assert roll["lines"] == [
        "linuxnet.tcp.tune: 3 host(s) in 3 batch(es) (serial 25%, max_fail_percentage 0, health window 4 s, rollback on for"
        " 2 of 3 hosts): every batch done, nothing changed on any host (no health window needed)",
        "nothing to change (3 host(s)): a, b, c"]
    for name in data:
        data[name]["__tcp_tune"]["vars"]["tcp_tune_rollback"] = False
    assert "rollback off)" in tcp_tune_roll(data, "a", ["a", "b", "c"], ["a", "b", "c"], ["a"])["lines"][0]


def test_roll_input_errors_name_what_is_missing():
    with pytest.raises(AnsibleFilterError, match="c has no __tcp_tune.vars: the first play of linuxnet.tcp.tune sets it"):
        tcp_tune_roll(dict(hostvars({"a": None}), c={}), "a", ["a", "c"], ["a"], ["a"])
    with pytest.raises(AnsibleFilterError, match="x is not a host of the play"):
        tcp_tune_roll(hostvars({"a": None}), "x", ["a"], ["a"], ["a"])
    data = hostvars({"a": None})
    data["a"]["__tcp_tune"]["vars"]["tcp_tune_serial"] = "half"
    with pytest.raises(AnsibleFilterError, match="tcp_tune_serial must be a number of hosts, a percentage"):
        tcp_tune_roll(data, "a", ["a"], ["a"], ["a"])


def test_a_host_lost_while_the_roll_goes_on():
    """A host unreachable during its batch keeps status "started" (no "changed"): within max_fail_percentage the roll
    goes on, and the summary says so (the Jinja template this replaces failed on it: "dict object has no attribute
    changed")."""
    data = hostvars({"a": {"status": "started"}, "b": {"status": "healthy", "changed": True, "measured": True},
                     "c": None, "d": None})
    for name in data:
        data[name]["__tcp_tune"]["vars"].update(tcp_tune_serial=2, tcp_tune_max_fail_percentage=50.0)
    roll = tcp_tune_roll(data, "b", ["a", "b", "c", "d"], ["b", "c", "d"], ["b"])
    assert (roll["ends"], roll["stops"]) == (False, False)
    assert roll["lines"][0].endswith("): every batch done, 1 host(s) failed within max_fail_percentage"), roll["lines"][0]
    assert roll["by_host"]["a"] == "lost: a (batch 1): unreachable during its batch; it may keep what this run changed"
