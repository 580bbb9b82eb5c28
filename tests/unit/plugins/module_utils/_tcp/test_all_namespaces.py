# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The scan of every namespace on a fake host: one walk of /proc, each namespace read once by one of the threads,
failures counted, a failure to come back stopping the scan. The socket table and the namespaces themselves are
read for real by tests/integration/test_tcp_facts_namespaces.py (against ss)."""

import errno
import threading

import pytest
from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.host_fixtures import fake_host

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import all_namespaces as T
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.counters import KstatsError
from ansible_collections.linuxnet.tcp.plugins.module_utils._host.netns import NetnsError, NetnsReturnError

PATHS = {"/run/netns/netns-28476392", "/proc/900/ns/net", "/run/netns/lab"}


def facts(time_wait=0, values=None):
    """A summary document as gather() returns it, with ``time_wait`` TIME_WAIT sockets."""
    return {
        "states": {"TIME_WAIT": time_wait, "total": time_wait},
        "time_wait": {"total": time_wait, "by_remote": [], "by_local_port": []},
        "close_wait": {"total": 0, "by_process": [], "unowned": 0},
        "listeners": [], "ephemeral_ports": {"range": [32768, 60999], "size": 28232, "busiest": {}},
        "counters": {"TW": time_wait}, "sysctl_values": values or {"net.core.somaxconn": "4096"},
        "collection": {"backend": "netlink", "owners": {"visibility": "not requested", "complete": None}},
    }


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A fake host whose namespaces' facts come from ``gather`` below; returns (root, calls)."""
    root = str(tmp_path)
    fake_host(root)
    calls = []

    def gather(**kwargs):
        calls.append(dict(kwargs, thread=threading.current_thread().name))
        return facts(time_wait=1000 if kwargs["netns"] == "/proc/900/ns/net" else 0)
    monkeypatch.setattr(T, "gather", gather)
    return root, calls


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_every_namespace_is_read_once_whatever_the_threads(host, threads):
    root, calls = host
    docs, scan = T.gather_all(root=root, threads=threads)
    assert sorted(call["netns"] for call in calls) == sorted(PATHS)
    assert [doc["path"] for doc in docs][0] == "/proc/900/ns/net"  # the TIME_WAIT storm sorts first
    assert {doc["label"] for doc in docs} == {"pod shop/web-7d4b9", "podman leaky", "netns lab"}
    assert docs[0]["sysctl"] == {"runtime": {"net.core.somaxconn": "4096"}} and "sysctl_values" not in docs[0]
    assert scan["found"] == scan["reported"] == 3 and scan["processes"] == 5
    # One walk of /proc for the scan, shared by every namespace's owner lookup; one dump each (parts=1), and the
    # namespace's sysctls read while inside it.
    assert len({id(call["table"]) for call in calls}) == 1
    assert all(call["parts"] == 1 and call["sysctls"] == T.SYSCTLS and call["summary"] for call in calls)
    assert len({call["thread"] for call in calls}) <= threads


def test_two_threads_report_what_one_does(host):
    root, _calls = host
    one, _scan = T.gather_all(root=root, threads=1)
    two, _scan = T.gather_all(root=root, threads=2)
    assert one == two


def entering_refused():
    exc = NetnsError("netns: cannot enter /run/netns/lab: Operation not permitted")
    exc.__cause__ = OSError(errno.EPERM, "Operation not permitted")
    return exc


def fail_in(monkeypatch, path, exc):
    """Make the gathering of the namespace at ``path`` raise ``exc``; the others are gathered for real."""
    real = T.gather

    def failing(**kwargs):
        if kwargs["netns"] == path:
            raise exc
        return real(**kwargs)
    monkeypatch.setattr(T, "gather", failing)


@pytest.mark.parametrize("exc, counted", [
    (NetnsError("netns: cannot open /run/netns/lab: No such file or directory"), "vanished"),
    (entering_refused(), "not_permitted"),
    (KstatsError("cannot read /proc/thread-self/net/netstat: file not found"), "vanished"),
    (OSError(errno.ENOENT, "gone"), "vanished"),
    (OSError(errno.EPERM, "Operation not permitted"), "not_permitted"),
])
def test_a_namespace_that_fails_is_skipped_and_counted(host, monkeypatch, exc, counted):
    root, _calls = host
    fail_in(monkeypatch, "/run/netns/lab", exc)
    docs, scan = T.gather_all(root=root, threads=2)
    assert scan["reported"] == 2 and scan[counted] == 1
    assert "/run/netns/lab" not in [doc["path"] for doc in docs]
    if counted == "vanished":
        assert scan["errors"][0].startswith("/run/netns/lab: ")


@pytest.mark.parametrize("exc", [NetnsReturnError("netns: cannot return to the original network namespace: x"),
                                 ValueError("a bug")])
def test_failing_to_come_back_or_a_bug_stops_the_scan(host, monkeypatch, exc):
    root, calls = host
    fail_in(monkeypatch, "/proc/900/ns/net", exc)
    with pytest.raises(type(exc)):
        T.gather_all(root=root, threads=1)
    # One thread: the namespaces after the failing one (in the order found) are never entered.
    assert [call["netns"] for call in calls] == ["/run/netns/netns-28476392"]


def test_the_time_budget_leaves_the_rest_out(host):
    root, calls = host
    # The budget runs out while the first namespace is read.
    docs, scan = T.gather_all(root=root, threads=1, budget=30.0, clock=lambda: 100.0 if calls else 0.0)
    assert len(calls) == len(docs) == 1
    assert scan["timed_out"] is True and scan["left_out"] == 2 and scan["found"] == 3


@pytest.mark.parametrize("walk, helped", [(1.0, True), (0.0, False)])
def test_a_second_thread_joins_only_when_the_kernels_walks_dominate(host, monkeypatch, walk, helped):
    root, calls = host
    real = T.gather

    def walking(**kwargs):
        kwargs["timing"]["walk"] = walk  # seconds in send()/recv(), against the real (tiny) time of the call
        return real(**kwargs)
    made = []

    class Thread(threading.Thread):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self.name)
    monkeypatch.setattr(T, "gather", walking)
    monkeypatch.setattr(T.threading, "Thread", Thread)
    monkeypatch.setattr(T, "default_parts", lambda: 2)
    # The fake host has three namespaces: decide after the second (the first is never counted), with one left.
    monkeypatch.setattr(T, "DECIDE_AFTER", 1)
    docs, scan = T.gather_all(root=root)
    assert made == (["netns-1"] if helped else [])
    assert sorted(call["netns"] for call in calls) == sorted(PATHS) and scan["reported"] == len(docs) == 3
    # The first two namespaces are always read alone.
    assert [call["thread"] for call in calls[:2]] == [threading.current_thread().name] * 2
    if not helped:
        assert {call["thread"] for call in calls} == {threading.current_thread().name}


def test_explicit_threads_start_at_once_and_one_thread_never_spreads(host, monkeypatch):
    root, calls = host
    made = []

    class Thread(threading.Thread):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self.name)
    monkeypatch.setattr(T.threading, "Thread", Thread)
    monkeypatch.setattr(T, "DECIDE_AFTER", 1)
    T.gather_all(root=root, threads=1)
    assert made == []
    T.gather_all(root=root, threads=2)
    assert made == ["netns-1"]
