"""inode -> process attribution on fake /proc trees."""
import os

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._host import processes as O


def make_proc(root, procs):
    """procs: {pid: (comm, netns_link, [fd targets])}"""
    base = os.path.join(root, "proc")
    os.makedirs(base, exist_ok=True)
    os.makedirs(os.path.join(base, "sys"), exist_ok=True)  # non-numeric entries are ignored
    for pid, (comm, netns, targets) in procs.items():
        pdir = os.path.join(base, str(pid))
        os.makedirs(os.path.join(pdir, "fd"))
        os.makedirs(os.path.join(pdir, "ns"))
        with open(os.path.join(pdir, "comm"), "w", encoding="ascii") as handle:
            handle.write(comm + "\n")
        os.symlink(netns, os.path.join(pdir, "ns", "net"))
        for fd, target in enumerate(targets):
            os.symlink(target, os.path.join(pdir, "fd", str(fd)))
    return root


ME = os.geteuid()


@pytest.fixture
def tree(tmp_path):
    return make_proc(str(tmp_path), {
        1: ("init", "net:[1]", ["/dev/null", "socket:[500]"]),
        20: ("web", "net:[2]", ["/dev/null", "pipe:[9]", "socket:[101]", "socket:[102]"]),
        30: ("worker", "net:[2]", ["socket:[101]", "anon_inode:[eventpoll]", "socket:[103]"]),
        40: ("other", "net:[1]", ["socket:[104]"]),
    })


def test_finds_owners_and_user(tree):
    owners, info = O.find_owners([101, 103, 104], tree, netns="net:[2]")
    assert owners[103] == [{"pid": 30, "name": "worker", "user": O.user_name(ME, {})}]
    assert [h["pid"] for h in owners[101]] == [20, 30]  # shared after fork: both holders met before the end
    assert owners[104][0]["name"] == "other"
    assert info["complete"] is True


def test_stops_when_everything_is_found(tree):
    # 101 and 102 are both in pid 20 of the inspected namespace: nothing after it is read.
    owners, info = O.find_owners([102, 101], tree, netns="net:[2]")
    assert set(owners) == {101, 102}
    assert info["processes_scanned"] == 1 and info["fds_read"] == 4


def test_same_namespace_first(tree):
    _owners, info = O.find_owners([500], tree, netns="net:[1]")
    assert info["processes_scanned"] == 1  # pid 1 is in net:[1], scanned before the others


def test_missing_inode_scans_everything(tree):
    owners, info = O.find_owners([999, 103], tree, netns="net:[2]")
    assert set(owners) == {103}
    assert info == {"processes_scanned": 4, "processes_denied": 0, "fds_read": 10, "complete": False, "fds": {(103, 30): [2]}}


def test_zero_and_empty_inodes_do_not_scan(tree):
    assert O.find_owners([0, 0], tree) == ({}, {"processes_scanned": 0, "processes_denied": 0, "fds_read": 0,
                                                "complete": True, "fds": {}})


def test_denied_processes_are_counted(tree, monkeypatch):
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):
        if path.endswith("/20/fd"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(O.os, "open", fake_open)
    owners, info = O.find_owners([102], tree, netns="net:[2]")
    assert owners == {} and info["processes_denied"] == 1 and info["complete"] is False


def test_netns_link(tmp_path):
    assert O.netns_link("/").startswith("net:[")
    path = tmp_path / "ns"
    path.write_text("")
    assert O.netns_link("/", str(path)) == "net:[%d]" % path.stat().st_ino
    assert O.netns_link("/", str(tmp_path / "absent")) is None


def fake_fd_counts(monkeypatch, sizes):
    """Make st_size of /proc/PID/fd report ``sizes[pid]`` descriptors, as Linux 6.2+ does."""
    real_stat = os.stat

    def fake_stat(path, *args, **kwargs):
        parts = str(path).rstrip("/").split("/")
        if parts[-1] == "fd" and parts[-2] in sizes:
            return os.stat_result((0o40555, 0, 0, 2, 0, 0, sizes[parts[-2]], 0, 0, 0))
        return real_stat(path, *args, **kwargs)
    monkeypatch.setattr(O.os, "stat", fake_stat)


REAL_SIZES = {"1": 2, "20": 4, "30": 3, "40": 1}


@pytest.mark.parametrize("budget, found", [(100, {103, 104}), (5, {103, 104}), (3, {103})])
def test_optional_inodes_only_within_budget(tree, monkeypatch, budget, found):
    # Order (netns 2 first, fewest fds first): 30 (3 fds, holds 103), 20 (4), then 40 (1, holds 104), 1 (2).
    # 104 is optional: a process is read for it only while fds read so far + its own stay within budget.
    fake_fd_counts(monkeypatch, REAL_SIZES)
    owners, info = O.find_owners([103], tree, netns="net:[2]", optional=[104], budget=budget)
    assert set(owners) == found and info["complete"] is True


def test_fewest_descriptors_first(tree, monkeypatch):
    fake_fd_counts(monkeypatch, {"20": 50, "30": 3, "1": 9, "40": 1})
    assert [row[2] for row in O.ProcessTable(tree).order(None, set())] == [40, 30, 1, 20]
    # pid 30 (3 descriptors) is read before pid 20 (50): 101 is found there first.
    owners, _info = O.find_owners([101], tree)
    assert [h["pid"] for h in owners[101]] == [30]


def test_one_table_serves_every_namespace(tree):
    """A scan of every namespace walks /proc once: lookups ordered from that table find what fresh walks find."""
    table = O.ProcessTable(tree)
    assert [(pid, link) for pid, _name, _uid, link in table.rows] == [
        (1, "net:[1]"), (20, "net:[2]"), (30, "net:[2]"), (40, "net:[1]")]
    for inodes, netns in (([101, 103, 104], "net:[2]"), ([500], "net:[1]"), ([999, 103], "net:[2]")):
        assert O.find_owners(inodes, tree, netns=netns, table=table) == O.find_owners(inodes, tree, netns=netns)


def test_table_of_a_recorded_tree_and_of_refused_links(tmp_path, monkeypatch):
    """A plain file for ns/net (a recorded tree) gives its inode; a link the caller may not read, the errno."""
    root = make_proc(str(tmp_path), {1: ("init", "net:[1]", [])})
    os.makedirs(os.path.join(root, "proc", "7", "ns"))
    with open(os.path.join(root, "proc", "7", "ns", "net"), "w", encoding="ascii") as handle:
        handle.write("netns")
    inode = os.stat(os.path.join(root, "proc", "7", "ns", "net")).st_ino
    real = os.readlink

    def readlink(path, *args, **kwargs):
        if path.endswith("/1/ns/net"):
            raise PermissionError(13, "Permission denied")
        return real(path, *args, **kwargs)
    monkeypatch.setattr(O.os, "readlink", readlink)
    assert [(pid, link) for pid, _name, _uid, link in O.ProcessTable(root).rows] == [(1, 13), (7, "net:[%d]" % inode)]


def test_program_of(tmp_path):
    base = tmp_path / "proc" / "9"
    base.mkdir(parents=True)
    os.symlink("/usr/sbin/php-fpm8.2 (deleted)", str(base / "exe"))
    (base / "cgroup").write_text("0::/system.slice/php-fpm.service\n")
    assert O.program_of(str(tmp_path), 9) == ("/usr/sbin/php-fpm8.2", "/system.slice/php-fpm.service")
    v1 = tmp_path / "proc" / "10"
    v1.mkdir()
    (v1 / "cgroup").write_text("12:memory:/docker/abc\n1:name=systemd:/docker/abc\n")
    assert O.program_of(str(tmp_path), 10) == (None, "/docker/abc")
    assert O.program_of(str(tmp_path), 11) == (None, None)


def test_commands_of_a_recorded_tree(tmp_path):
    """{pid, comm, argv} per process: NUL-separated argv without the trailing NUL, kernel threads with none, a
    process without comm (it exited during the walk) left out, in the sorted order of the /proc names."""
    proc = tmp_path / "proc"
    for pid, comm, cmdline in (("10", "kube-proxy\n", b"/usr/local/bin/kube-proxy\0--config=/a\0"),
                               ("2", "kthreadd\n", b""), ("7", None, b"gone\0")):
        (proc / pid).mkdir(parents=True)
        if comm is not None:
            (proc / pid / "comm").write_text(comm)
        (proc / pid / "cmdline").write_bytes(cmdline)
    (proc / "self").mkdir()
    assert O.commands(str(tmp_path)) == [
        {"pid": 10, "comm": "kube-proxy", "argv": ["/usr/local/bin/kube-proxy", "--config=/a"]},
        {"pid": 2, "comm": "kthreadd", "argv": []},
    ]
    assert O.commands(str(tmp_path / "missing")) == []


def test_commands_of_this_host_include_this_process():
    me = [p for p in O.commands("/") if p["pid"] == os.getpid()]
    with open("/proc/self/cmdline", "rb") as handle:
        argv = handle.read().decode("utf-8", "replace").split("\0")[:-1]
    assert len(me) == 1 and me[0]["argv"] == argv
