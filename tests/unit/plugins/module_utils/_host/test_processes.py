"""The process table, a process's program and namespace identity, on fake /proc trees."""
import os

import pytest

from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.host_fixtures import (  # pylint: disable=wrong-import-order
    fake_fd_counts, make_proc, sockets_tree)

from ansible_collections.linuxnet.tcp.plugins.module_utils._host import processes as O


def test_netns_link(tmp_path):
    assert O.netns_link("/").startswith("net:[")
    path = tmp_path / "ns"
    path.write_text("")
    assert O.netns_link("/", str(path)) == "net:[%d]" % path.stat().st_ino
    assert O.netns_link("/", str(tmp_path / "absent")) is None


@pytest.fixture
def tree(tmp_path):
    return sockets_tree(str(tmp_path))


def test_order_fewest_descriptors_first(tree, monkeypatch):
    fake_fd_counts(monkeypatch, {"20": 50, "30": 3, "1": 9, "40": 1})
    assert [row[2] for row in O.ProcessTable(tree).order(None, set())] == [40, 30, 1, 20]
    # Same fd count order within a priority; the inspected namespace and the wanted uids first.
    fake_fd_counts(monkeypatch, {"20": 4, "30": 3, "1": 2, "40": 1})
    assert [row[:3] for row in O.ProcessTable(tree).order("net:[2]", {os.geteuid()})] == [
        (0, 3, 30), (0, 4, 20), (2, 1, 40), (2, 2, 1)]


def test_pids_in(tree):
    assert O.ProcessTable(tree).pids_in("net:[2]") == {20, 30}


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
