"""Entering and leaving network namespaces."""
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._host import netns as N


def here():
    return os.readlink("/proc/thread-self/ns/net")


def test_none_is_a_no_op():
    """No namespace asked: the block runs once, in this thread's namespace, and no descriptor is opened."""
    before, fds = here(), len(os.listdir("/proc/self/fd"))
    ran = []
    with N.entered(None):
        ran.append((here(), len(os.listdir("/proc/self/fd"))))
    assert ran == [(before, fds)]


@pytest.mark.parametrize("path, match", [
    ("/etc/hostname", "is not a namespace file"),
    ("/proc/self/ns/uts", "not a network namespace"),
    ("/nonexistent/ns", "cannot open"),
])
def test_bad_paths_name_the_option(path, match):
    if not os.path.exists(path) and "nonexistent" not in path:
        pytest.skip("%s missing here" % path)
    with pytest.raises(N.NetnsError, match="^netns: .*" + match):
        with N.entered(path):
            pytest.fail("must not run the block")


@pytest.mark.skipif(os.geteuid() != 0, reason="setns needs CAP_SYS_ADMIN")
def test_enters_own_namespace_and_returns_after_an_error():
    before = here()
    with pytest.raises(ZeroDivisionError):
        with N.entered("/proc/self/ns/net"):
            assert here() == before
            raise ZeroDivisionError
    assert here() == before


def test_ctypes_setns_path(monkeypatch):
    # Python < 3.12 has no os.setns: the ctypes path must report errors as OSError.
    monkeypatch.delattr(N.os, "setns", raising=False)
    with pytest.raises(OSError):
        N._setns(-1)


def test_is_initial_here():
    """This thread's own namespace link is always readable: a verdict, the same as for its path given explicitly."""
    mine = N.is_initial()
    assert isinstance(mine, bool)
    assert N.is_initial(path="/proc/thread-self/ns/net") is mine
    assert N.is_initial("/nonexistent") is None


# A process in a network namespace of its own: prints what is_initial() says inside, then waits for its stdin to close.
_INSIDE = ("import os, sys; from ansible_collections.linuxnet.tcp.plugins.module_utils._host import netns; "
           "print(netns.is_initial(), os.stat('/proc/thread-self/ns/net').st_ino, flush=True); sys.stdin.read()")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="unshare --net needs root")
def test_a_new_namespace_is_not_initial():
    """A namespace made by unshare(1) is not the initial one, seen from inside and through its /proc link from here."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
    child = subprocess.Popen(["unshare", "--net", sys.executable, "-c", _INSIDE], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=env, universal_newlines=True)
    try:
        inside, inode = child.stdout.readline().split()
        assert inside == "False"
        link = "/proc/%d/ns/net" % child.pid
        assert os.stat(link).st_ino == int(inode) != os.stat("/proc/thread-self/ns/net").st_ino  # what /proc says
        assert N.is_initial(path=link) is False
    finally:
        child.stdin.close()
        assert child.wait(timeout=30) == 0


@pytest.mark.parametrize("release, version", [("6.18.44-fc-v669", (6, 18)), ("5.10.0-28-amd64", (5, 10)),
                                              ("4.19rc1", (4, 19)), ("weird", (0, 0))])
def test_kernel_version(release, version):
    assert N.kernel_version(release) == version


@pytest.mark.parametrize("release, pid1_readable, expected", [
    ("6.18.1", False, False), ("5.10.0", False, None), ("5.10.0", True, True),
])
def test_is_initial_without_fixed_inode(tmp_path, monkeypatch, release, pid1_readable, expected):
    here = tmp_path / "proc" / "thread-self" / "ns"
    here.mkdir(parents=True)
    (here / "net").write_text("")
    if pid1_readable:
        (tmp_path / "proc" / "1" / "ns").mkdir(parents=True)
        os.link(here / "net", tmp_path / "proc" / "1" / "ns" / "net")
    real = N.kernel_version
    monkeypatch.setattr(N, "kernel_version", lambda: real(release))
    assert N.is_initial(str(tmp_path)) is expected
