"""Which holder of a listening socket accepts: relatives found from the first holder, ranked by how each waits."""

import os

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import acceptors as A
from ansible_collections.linuxnet.tcp.plugins.module_utils._host.processes import ProcessTable

LISTENER = 555


def make(root, procs):
    """procs: {pid: (comm, ppid, state, {fd: target}, {fd: fdinfo text}, syscall line or None)}"""
    for pid, (comm, ppid, state, fds, infos, syscall) in procs.items():
        base = os.path.join(root, "proc", str(pid))
        for sub in ("fd", "fdinfo", os.path.join("task", str(pid))):
            os.makedirs(os.path.join(base, sub))
        with open(os.path.join(base, "comm"), "w") as handle:
            handle.write(comm + "\n")
        with open(os.path.join(base, "stat"), "w") as handle:
            handle.write("%d (%s) %s %d 1 1 0 -1 4194560 0 0\n" % (pid, comm, state, ppid))
        for fd, target in fds.items():
            os.symlink(target, os.path.join(base, "fd", str(fd)))
        for fd, text in infos.items():
            with open(os.path.join(base, "fdinfo", str(fd)), "w") as handle:
                handle.write(text)
        if syscall:
            with open(os.path.join(base, "task", str(pid), "syscall"), "w") as handle:
                handle.write(syscall + "\n")
    return root


EPOLL = "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\ntfd:        6 events:       19 data:                6  pos:0 ino:22b sdev:8\n"


@pytest.fixture
def nginx(tmp_path):
    """A master (only holds the socket), a running worker and a stopped one whose epoll sets watch it (fd 6),
    and an unrelated process."""
    sock = "socket:[%d]" % LISTENER
    return make(str(tmp_path), {
        100: ("nginx", 1, "S", {6: sock}, {}, "130 0x7ffc 0x8 0x0"),
        101: ("nginx", 100, "T", {6: sock, 7: "anon_inode:[eventpoll]"}, {7: EPOLL}, None),
        102: ("nginx", 100, "S", {6: sock, 7: "anon_inode:[eventpoll]"}, {7: EPOLL}, "232 0x7 0x55 0x200"),
        300: ("bash", 1, "S", {0: "/dev/null"}, {}, None),
    })


def test_the_workers_come_first_and_a_stopped_one_after_a_running_one(nginx):
    # The /proc walk met the master only: its children are found and ranked.
    ranked, total = A.rank(nginx, LISTENER, [{"pid": 100, "name": "nginx", "user": "root"}], {(LISTENER, 100): [6]})
    assert total == 3
    assert [(r["pid"], r["state"], r["waits"], r["ppid"]) for r in ranked] == [
        (102, "sleeping", "epoll", 100), (101, "stopped", "epoll", 100), (100, "sleeping", "none", 1)]
    assert ranked[0]["name"] == "nginx" and ranked[0]["user"]


def test_starting_from_a_worker_finds_the_master_and_the_siblings(nginx):
    ranked, total = A.rank(nginx, LISTENER, [{"pid": 101, "name": "nginx", "user": "root"}], {(LISTENER, 101): [6]})
    assert total == 3 and [r["pid"] for r in ranked] == [102, 101, 100]


def test_blocked_in_accept_on_the_socket(tmp_path, monkeypatch):
    monkeypatch.setattr(A, "_ACCEPT_SYSCALLS", {os.uname().machine: (43, 288)})
    root = make(str(tmp_path), {
        200: ("server", 1, "S", {3: "socket:[%d]" % LISTENER}, {}, "288 0x3 0x0 0x0 0x80000"),  # accept4(3, ...)
        201: ("server", 200, "S", {3: "socket:[%d]" % LISTENER}, {}, "288 0x9 0x0 0x0 0x80000"),  # another fd
    })
    ranked, _total = A.rank(root, LISTENER, [{"pid": 201, "name": "server", "user": "u"}], {(LISTENER, 201): [3]})
    assert [(r["pid"], r["waits"]) for r in ranked] == [(200, "accept"), (201, "none")]


def test_unreadable_files_count_as_not_waiting(tmp_path):
    root = make(str(tmp_path), {400: ("app", 1, "S", {5: "socket:[%d]" % LISTENER}, {}, None)})
    ranked, total = A.rank(root, LISTENER, [{"pid": 400, "name": "app", "user": "u"}], {})
    assert total == 1 and ranked[0]["waits"] == "none" and ranked[0]["state"] == "sleeping"


def test_in_a_scan_of_every_namespace_relatives_come_from_the_scan_and_its_namespace(nginx, monkeypatch):
    """With the scan's process table, parents are read once for the scan, and only relatives in the socket's
    namespace are looked at: a sibling in another namespace (here the running worker, 102) is not."""
    for pid in (100, 101, 102, 300):
        os.makedirs(os.path.join(nginx, "proc", str(pid), "ns"))
    with open(os.path.join(nginx, "proc", "100", "ns", "net"), "w") as handle:
        handle.write("netns")
    os.link(os.path.join(nginx, "proc", "100", "ns", "net"), os.path.join(nginx, "proc", "101", "ns", "net"))
    for pid in (102, 300):
        with open(os.path.join(nginx, "proc", str(pid), "ns", "net"), "w") as handle:
            handle.write("other")
    table = ProcessTable(nginx)
    netns = "net:[%d]" % os.stat(os.path.join(nginx, "proc", "100", "ns", "net")).st_ino
    walks = []
    real = A._parents
    monkeypatch.setattr(A, "_parents", lambda proc: walks.append(proc) or real(proc))
    for _round in range(2):
        ranked, total = A.rank(nginx, LISTENER, [{"pid": 100, "name": "nginx", "user": "root"}],
                               {(LISTENER, 100): [6]}, table, netns)
        assert total == 2 and [(r["pid"], r["waits"]) for r in ranked] == [(101, "epoll"), (100, "none")]
    assert len(walks) == 1
