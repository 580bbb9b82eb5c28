"""socket inode -> process attribution (find_owners) on fake /proc trees."""
import os

import pytest
from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.host_fixtures import (  # pylint: disable=wrong-import-order
    fake_fd_counts, sockets_tree)

from ansible_collections.linuxnet.tcp.plugins.module_utils._host.processes import ProcessTable, user_name
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import owners as W

ME = os.geteuid()
REAL_SIZES = {"1": 2, "20": 4, "30": 3, "40": 1}


@pytest.fixture
def tree(tmp_path):
    return sockets_tree(str(tmp_path))


def test_finds_owners_and_user(tree):
    owners, info = W.find_owners([101, 103, 104], tree, netns="net:[2]")
    assert owners[103] == [{"pid": 30, "name": "worker", "user": user_name(ME, {})}]
    assert [h["pid"] for h in owners[101]] == [20, 30]  # shared after fork: both holders met before the end
    assert owners[104][0]["name"] == "other"
    assert info["complete"] is True


def test_stops_when_everything_is_found(tree):
    # 101 and 102 are both in pid 20 of the inspected namespace: nothing after it is read.
    owners, info = W.find_owners([102, 101], tree, netns="net:[2]")
    assert set(owners) == {101, 102}
    assert info["processes_scanned"] == 1 and info["fds_read"] == 4


def test_same_namespace_first(tree):
    _owners, info = W.find_owners([500], tree, netns="net:[1]")
    assert info["processes_scanned"] == 1  # pid 1 is in net:[1], scanned before the others


def test_missing_inode_scans_everything(tree):
    owners, info = W.find_owners([999, 103], tree, netns="net:[2]")
    assert set(owners) == {103}
    assert info == {"processes_scanned": 4, "processes_denied": 0, "fds_read": 10, "complete": False, "fds": {(103, 30): [2]}}


def test_zero_and_empty_inodes_do_not_scan(tree):
    assert W.find_owners([0, 0], tree) == ({}, {"processes_scanned": 0, "processes_denied": 0, "fds_read": 0,
                                                "complete": True, "fds": {}})


def test_denied_processes_are_counted(tree, monkeypatch):
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):
        if path.endswith("/20/fd"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(W.os, "open", fake_open)
    owners, info = W.find_owners([102], tree, netns="net:[2]")
    assert owners == {} and info["processes_denied"] == 1 and info["complete"] is False


@pytest.mark.parametrize("budget, found", [(100, {103, 104}), (5, {103, 104}), (3, {103})])
def test_optional_inodes_only_within_budget(tree, monkeypatch, budget, found):
    # Order (netns 2 first, fewest fds first): 30 (3 fds, holds 103), 20 (4), then 40 (1, holds 104), 1 (2).
    # 104 is optional: a process is read for it only while fds read so far + its own stay within budget.
    fake_fd_counts(monkeypatch, REAL_SIZES)
    owners, info = W.find_owners([103], tree, netns="net:[2]", optional=[104], budget=budget)
    assert set(owners) == found and info["complete"] is True


def test_fewest_descriptors_first(tree, monkeypatch):
    fake_fd_counts(monkeypatch, {"20": 50, "30": 3, "1": 9, "40": 1})
    # pid 30 (3 descriptors) is read before pid 20 (50): 101 is found there first.
    owners, _info = W.find_owners([101], tree)
    assert [h["pid"] for h in owners[101]] == [30]


def test_one_table_serves_every_namespace(tree):
    """A scan of every namespace walks /proc once: lookups ordered from that table find what fresh walks find."""
    table = ProcessTable(tree)
    assert [(pid, link) for pid, _name, _uid, link in table.rows] == [
        (1, "net:[1]"), (20, "net:[2]"), (30, "net:[2]"), (40, "net:[1]")]
    for inodes, netns in (([101, 103, 104], "net:[2]"), ([500], "net:[1]"), ([999, 103], "net:[2]")):
        assert W.find_owners(inodes, tree, netns=netns, table=table) == W.find_owners(inodes, tree, netns=netns)
