# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
import errno
import os
import threading

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import files
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError

from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.sysctl_fixtures import (  # pylint: disable=wrong-import-order
    DROPIN, STATE, DiskFault, put, read, snapshot)


@pytest.mark.parametrize("name, file, expected", [
    ("web", None, DROPIN),
    ("db-primary.v2", None, "/etc/sysctl.d/90-linuxnet-db-primary.v2.conf"),
    ("web", "/run/sysctl.d/50-web.conf", "/run/sysctl.d/50-web.conf"),
])
def test_dropin_path(name, file, expected):
    assert files.dropin_path(name, file) == expected


@pytest.mark.parametrize("name, file, words", [
    ("fz0\n", None, "name 'fz0\\n' must be 1-64 characters"),  # '$' would match before the newline
    ("web\x00", None, "name"),
    ("web", "/etc/sysctl.d/x\x00.conf", "must not contain a NUL byte"),
    ("web", "/etc/sysctl.d/x\n.conf", "must not contain a newline"),
    ("web", "/etc/sysctl.d/x\t.conf", "must not contain a tab"),
    ("web", "/etc/sysctl.d/.hidden.conf", "hidden file name"),
    ("web", "/etc/sysctl.d/.90-linuxnet-web.conf.abcd1234.lntcp-tmp.conf", "hidden file name"),
    ("web", "/etc/sysctl.d/.conf", "hidden file name"),
    ("../../etc/passwd", None, "name"),
    ("a/b", None, "name"),
    ("a..b", None, "name"),
    (".hidden", None, "name"),
    ("", None, "name"),
    (5, None, "name"),
    ("web", "relative.conf", "absolute"),
    ("web", "/etc/sysctl.d/x.txt", ".conf"),
    ("web", "/etc/sysctl.d/../sysctl.d/x.conf", "normalised"),
    ("web", "/etc/sysctl.conf", "never edits /etc/sysctl.conf"),
    ("web", "/etc/sysctl.d/99-sysctl.conf", "never edits /etc/sysctl.conf"),
])
def test_dropin_path_rejects(name, file, words):
    with pytest.raises(SysctlError) as err:
        files.dropin_path(name, file)
    assert words in str(err.value)


def test_render_is_stable_and_marks_module_keys():
    text = files.render("web", [("net.netfilter.nf_conntrack_max", "262144", True), ("net.core.somaxconn", "8192", False)])
    assert text.startswith(files.MARKER)
    lines = text.splitlines()
    assert lines[-2:] == ["net.core.somaxconn = 8192", "-net.netfilter.nf_conntrack_max = 262144"]
    assert text == files.render("web", [("net.core.somaxconn", "8192", False), ("net.netfilter.nf_conntrack_max", "262144", True)])


@pytest.mark.parametrize("option, value", [("modules", ["nf_conntrack\n"]), ("module_options", {"nf_conntrack": {"hashsize": "1\n"}}),
                                           ("module_options", {"nf_conntrack": {"hash\nsize": 1}})])
def test_module_input_full_match(option, value):
    with pytest.raises(SysctlError) as err:
        if option == "modules":
            files.validate_modules(value)
        else:
            files.validate_module_options(value)
    assert str(err.value).startswith(option)


def test_write_atomic_syncs_the_file_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    root, events = str(tmp_path), []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink("/proc/self/fd/%d" % fd)))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    files.write_atomic(root, DROPIN, "x = 1\n", 0o640)
    base = os.path.join(root, "etc", "sysctl.d")
    # /etc and /etc/sysctl.d were made (each synced in its parent), then the temporary file, then the directory.
    assert events[:2] == [("fsync", root), ("fsync", os.path.join(root, "etc"))]
    assert events[2][0] == "fsync" and events[2][1].startswith(base + "/.90-linuxnet-web.conf.") and events[2][1].endswith(".lntcp-tmp")
    assert events[3:] == [("rename", os.path.join(base, "90-linuxnet-web.conf")), ("fsync", base)]
    assert read(root, DROPIN) == "x = 1\n" and os.stat(os.path.join(base, "90-linuxnet-web.conf")).st_mode & 0o777 == 0o640
    assert os.listdir(base) == ["90-linuxnet-web.conf"]


def test_write_atomic_on_a_full_disk_names_the_target_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    root = str(tmp_path)
    put(root, DROPIN, "old\n")
    DiskFault(monkeypatch, root, "/etc/sysctl.d", errno.ENOSPC)
    with pytest.raises(OSError) as err:
        files.write_atomic(root, DROPIN, "new\n")
    assert (err.value.errno, err.value.filename) == (errno.ENOSPC, DROPIN)
    assert files.describe(err.value) == DROPIN + ": ENOSPC (No space left on device)"
    assert os.listdir(os.path.join(root, "etc", "sysctl.d")) == ["90-linuxnet-web.conf"] and read(root, DROPIN) == "old\n"


def test_concurrent_first_runs_make_the_directory_once(tmp_path, monkeypatch):
    """Another run makes the directory between our look and our mkdir: EEXIST is taken as done, not a crash."""
    root = str(tmp_path)
    real_mkdir = os.mkdir

    def mkdir(path, mode=0o777):
        real_mkdir(path, mode)  # the other run, first
        return real_mkdir(path, mode)

    monkeypatch.setattr(os, "mkdir", mkdir)
    assert files.ensure_dir(root, "/var/lib/linuxnet-tcp") == []
    assert os.path.isdir(os.path.join(root, "var", "lib", "linuxnet-tcp"))


def test_leftover_temp_files_by_name_only(tmp_path):
    root = str(tmp_path)
    for name in (".90-linuxnet-web.conf.k2j4x9_a.lntcp-tmp", ".90-linuxnet-db.conf.abcdefgh.lntcp-tmp",  # ours, any profile
                 ".90-linuxnet-web.conf.abcdefgh",  # an earlier release's naming, of this profile's file
                 ".90-linuxnet-db.conf.abcdefgh",  # the earlier naming of another profile's file: not known to be ours
                 ".90-other.conf.swp", "90-linuxnet-web.conf", ".x.abc.lntcp-tmp"):
        put(root, "/etc/sysctl.d/" + name, "x\n")
    os.makedirs(os.path.join(root, "etc/sysctl.d/.dir.abcdefgh.lntcp-tmp"))  # a directory is never removed
    found = files.leftover_temp_files(root, ["/etc/sysctl.d", "/etc/modprobe.d"], ["90-linuxnet-web.conf"])
    assert found == ["/etc/sysctl.d/.90-linuxnet-db.conf.abcdefgh.lntcp-tmp", "/etc/sysctl.d/.90-linuxnet-web.conf.abcdefgh",
                     "/etc/sysctl.d/.90-linuxnet-web.conf.k2j4x9_a.lntcp-tmp"]


def _lock_file(root):
    return os.path.join(root, files.LOCK_PATH.lstrip("/"))


def test_lock_holds_the_pid_and_leaves_nothing(tmp_path):
    root = str(tmp_path)
    before = snapshot(root)
    with files.HostLock(root) as lock:
        assert lock.held and read(root, files.LOCK_PATH) == "%d\n" % os.getpid()
        assert lock.created == ["/var/lib/linuxnet-tcp", "/var/lib", "/var"]
    assert snapshot(root) == before and os.listdir(root) == []
    # With a state file in the directory, only the lock file goes.
    put(root, STATE, "{}")
    with files.HostLock(root):
        pass
    assert os.listdir(os.path.join(root, "var/lib/linuxnet-tcp")) == ["sysctl-web.json"]


def test_lock_timeout_names_the_lock_and_the_holder(tmp_path):
    root = str(tmp_path)
    with files.HostLock(root):
        with pytest.raises(files.LockTimeout) as err:
            files.HostLock(root, timeout=0.2).acquire()
        # The holder's pid from the kernel's record (/proc/locks); here the holder is this very process.
        assert (err.value.path, err.value.pid) == (files.LOCK_PATH, os.getpid())
        assert str(err.value) == ("another run of linuxnet.tcp.sysctl_profile holds the lock %s (pid %d) for more than "
                                  "lock_timeout=0.2 s" % (files.LOCK_PATH, os.getpid()))
        # Check mode waits for a real run as well, without writing anything.
        with pytest.raises(files.LockTimeout):
            files.HostLock(root, shared=True, timeout=0.1).acquire()
    assert not os.path.exists(os.path.join(root, "var"))


def test_a_waiting_run_takes_the_lock_over_once_the_holder_removed_it(tmp_path):
    root = str(tmp_path)
    first = files.HostLock(root)
    first.acquire()
    timer = threading.Timer(0.3, first.release)
    timer.start()
    with files.HostLock(root, timeout=10) as second:
        # It had opened the first lock file, saw it unlinked once it got it, and locked a new one at the path.
        assert first.fd is None
        assert os.fstat(second.fd).st_ino == os.stat(_lock_file(root)).st_ino
        assert read(root, files.LOCK_PATH) == "%d\n" % os.getpid()
        with pytest.raises(files.LockTimeout):
            files.HostLock(root, timeout=0).acquire()
    timer.join()


def test_check_mode_lock_writes_nothing(tmp_path):
    root = str(tmp_path)
    with files.HostLock(root, shared=True) as lock:
        assert not lock.held
    assert os.listdir(root) == []


def test_a_killed_runs_lock_file_is_taken_over(tmp_path):
    root = str(tmp_path)
    put(root, files.LOCK_PATH, "999999999\n")
    with files.HostLock(root, timeout=0) as lock:
        assert lock.held and read(root, files.LOCK_PATH) == "%d\n" % os.getpid()
    assert not os.path.exists(os.path.join(root, "var/lib/linuxnet-tcp"))


def test_read_only_state_directory_runs_without_the_lock(tmp_path, monkeypatch):
    """Nothing can be written there, so there is nothing to guard: the run goes on, and fails at its first write if any."""
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "var/lib"))
    DiskFault(monkeypatch, root, "/var/lib", errno.EROFS)
    with files.HostLock(root) as lock:
        assert not lock.held
    assert os.listdir(os.path.join(root, "var/lib")) == []
