# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Carrying a plan out (_sysctl/apply.py): the journal first, the runtime transaction, the files, the rollback, the host
lock; runs killed at each mutating call. The runs go through profile_present/absent, as the module calls them."""
import errno
import json
import os

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import apply
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import files
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import keys
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import profile
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.plan import Change, FileChange, Transaction
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.tree import ApplyError, SysctlTree

from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.sysctl_fixtures import (  # pylint: disable=wrong-import-order
    DROPIN, MODPROBE_FILE, STATE, DiskFault, FakeKernel, FakeModprobe, conntrack_host, dirs, make_tree, put, raw, read, snapshot)


def test_failed_write_rolls_back_runtime_and_keeps_files(tmp_path):
    root = make_tree(tmp_path)
    before = snapshot(root)
    tree = FakeKernel(root, reject={"net.ipv4.tcp_keepalive_time": {"600": errno.EINVAL}})
    with pytest.raises(ApplyError) as err:
        profile.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600}, tree=tree)
    assert err.value.key == "net.ipv4.tcp_keepalive_time"
    after = snapshot(root)
    assert dict((k, v[0]) for k, v in after.items()) == dict((k, v[0]) for k, v in before.items())


def test_failed_file_write_rolls_back_runtime(tmp_path, monkeypatch):
    root = make_tree(tmp_path)
    os.makedirs(os.path.join(root, "etc/sysctl.d"))
    before, before_dirs = snapshot(root), dirs(root)
    fault = DiskFault(monkeypatch, root, "/etc/sysctl.d", errno.ENOSPC)
    with pytest.raises(apply.CommitError) as err:
        profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    assert fault.hits
    assert str(err.value) == ("writing the profile's files failed: %s: ENOSPC (No space left on device); rolled back 1 runtime "
                              "value(s) and 0 file(s); the state file is as before" % DROPIN)
    assert (err.value.path, err.value.errno) == (DROPIN, "ENOSPC")
    assert raw(root, "net/core/somaxconn") == "4096\n" and read(root, STATE) is None
    # A failed first run leaves nothing: no temporary file, no lock file, no empty state directory.
    assert dict((k, v[0]) for k, v in snapshot(root).items()) == dict((k, v[0]) for k, v in before.items())
    assert dirs(root) == before_dirs


def test_failed_boot_file_restores_the_files_already_written(tmp_path, monkeypatch):
    root, modprobe = conntrack_host(tmp_path)
    profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    os.makedirs(os.path.join(root, "etc/modprobe.d"))
    before = snapshot(root)
    DiskFault(monkeypatch, root, "/etc/modprobe.d", errno.EROFS)
    with pytest.raises(apply.CommitError) as err:
        profile.profile_present(root, "web", {"net.core.somaxconn": 16384}, modules=["ip_vs"],
                                module_options={"ip_vs": {"conn_tab_bits": 12}}, modprobe=modprobe, load=False)
    assert str(err.value).startswith("writing the profile's files failed: %s: EROFS (Read-only file system); rolled back 1 "
                                     "runtime value(s) and 2 file(s); the state file is as before" % MODPROBE_FILE)
    assert dict((k, v[0]) for k, v in snapshot(root).items()) == dict((k, v[0]) for k, v in before.items())
    assert raw(root, "net/core/somaxconn") == "8192\n"


# ---------------------------------------------------------------------------------------------
# Interrupted runs, full disks, concurrent runs. tests/integration/test_sysctl_crash.py does the same with the real
# module killed by SIGKILL (strace) in private namespaces; here every step of the library is cut in process.

class Killed(BaseException):
    """SIGKILL in process: not an Exception, so no handler of the code under test runs for it."""


class Killer(object):
    """Kill the run at its ``at``-th mutating system call under ``root``; every later one fails too (the process is
    gone), and its descriptors close, which releases its flock as the kernel would."""

    CALLS = ("write", "replace", "rename", "unlink", "mkdir", "rmdir", "fsync", "fchmod", "ftruncate")

    def __init__(self, monkeypatch, root, at):
        self.root, self.at, self.count, self.dead = os.path.realpath(root) + "/", at, 0, False
        for name in self.CALLS:
            monkeypatch.setattr(os, name, self._wrap(getattr(os, name)))

    def _mine(self, target):
        if isinstance(target, int):
            target = os.readlink("/proc/self/fd/%d" % target)
        return os.path.realpath(target).startswith(self.root)

    def _wrap(self, real):
        def call(target, *args, **kwargs):
            if self._mine(target):
                if self.dead:
                    raise Killed()
                self.count += 1
                if self.count == self.at:
                    self.dead = True
                    raise Killed()
            return real(target, *args, **kwargs)
        return call


class ProcTree(SysctlTree):
    """A fake tree whose write is one write(2) that a kill either prevents or lets through whole, as on /proc/sys
    (opening a proc file with O_TRUNC does not empty it; the handler takes the value from the one write)."""

    def write(self, key, value):
        data = (value + "\n").encode("utf-8")
        fd = os.open(self.path(key), os.O_WRONLY)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.truncate(self.path(key), len(data))


def _content(root):
    """What a run manages, for 'changed': the runtime and every file's text but the lock file's (it exists only while a
    run holds it, or after a killed one), by path under the root."""
    return dict((os.path.relpath(path, root), text) for path, (text, _mtime) in snapshot(root).items()
                if not path.endswith("/sysctl.lock"))


def _leftovers(root):
    """Evidence of an interrupted run on disk: a journal in the state file, or temporary files."""
    text = read(root, STATE)
    journal = bool(text) and "transaction" in json.loads(text)
    temps = [p for p in snapshot(root) if p.endswith(".lntcp-tmp")]
    return journal or bool(temps)


WEB1 = {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600, "net.ipv4.tcp_syn_retries": 5}
# Changes somaxconn, keeps keepalive, drops syn_retries (its original comes back), adds tcp_max_tw_buckets.
WEB2 = {"net.core.somaxconn": 16384, "net.ipv4.tcp_keepalive_time": 600, "net.ipv4.tcp_max_tw_buckets": 262144}
CRASH_KEYS = ("net/core/somaxconn", "net/ipv4/tcp_keepalive_time", "net/ipv4/tcp_syn_retries", "net/ipv4/tcp_max_tw_buckets")
SCENARIOS = {
    # name: (setup, the run that is killed; also the run that converges)
    "apply": (None, lambda root: profile.profile_present(root, "web", WEB1, modules=["nf_conntrack"], tree=ProcTree(root))),
    "update": (lambda root: profile.profile_present(root, "web", WEB1, modules=["nf_conntrack"]),
               lambda root: profile.profile_present(root, "web", WEB2, tree=ProcTree(root))),
    "absent": (lambda root: profile.profile_present(root, "web", WEB2, modules=["nf_conntrack"]),
               lambda root: profile.profile_absent(root, "web", tree=ProcTree(root))),
}


def _host(base, setup):
    root = make_tree(base)
    if setup:
        setup(root)
    return root


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_killed_at_every_step_loses_nothing_and_the_next_run_converges(tmp_path, monkeypatch, scenario):
    setup, run = SCENARIOS[scenario]
    # Durability is not what this test can see (no power is cut): fsync stays a step to cut, without the disk's wait.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    originals = dict((k, raw(make_tree(tmp_path / "pristine"), k)) for k in CRASH_KEYS)
    reference = _host(tmp_path / "reference", setup)
    start = dict((k, raw(reference, k)) for k in CRASH_KEYS)
    start_files = _content(reference)
    run(reference)
    target = dict((k, raw(reference, k)) for k in CRASH_KEYS)
    target_files = _content(reference)
    steps = 0
    while True:
        steps += 1
        root = _host(tmp_path / str(steps), setup)
        with monkeypatch.context() as patch:
            killer = Killer(patch, root, steps)
            try:
                run(root)
            except Killed:
                pass
        if not killer.dead:
            break  # the run finished before its steps-th mutating call: every step has been cut
        # Every key at its value before the run or at its target; every file whole (before or after, never torn).
        for key in CRASH_KEYS:
            assert raw(root, key) in (start[key], target[key]), (steps, key)
        state_text = read(root, STATE)
        saved = json.loads(state_text)["originals"] if state_text else {}
        for key in CRASH_KEYS:
            if raw(root, key) != originals[key]:
                # What undoes it is on disk.
                assert saved[keys.name(keys.parts_of(key))] == originals[key].strip(), (steps, key)
        for path, text in _content(root).items():
            if path.endswith(".lntcp-tmp") or path.startswith("proc/"):
                continue
            if path.endswith("/sysctl-web.json"):
                json.loads(text)
            else:
                assert text in (start_files.get(path), target_files.get(path)), (steps, path)
        # The next run converges, exactly as check mode predicts, with an exact 'changed' and 'recovered'.
        leftovers, before = _leftovers(root), _content(root)
        check = run_check(run, root)
        assert _content(root) == before
        again = run(root)
        assert again == check, steps
        assert again["changed"] is (_content(root) != before), steps
        assert (again["recovered"] is not None) is leftovers, steps
        assert dict((k, raw(root, k)) for k in CRASH_KEYS) == target, steps
        assert dict((p, t) for p, t in _content(root).items()) == target_files, steps
        # A second run changes nothing; absent puts every original back and leaves no file.
        settled = _content(root)
        second = run(root)
        assert second["changed"] is False and second["recovered"] is None and _content(root) == settled, steps
        profile.profile_absent(root, "web")
        assert dict((k, raw(root, k)) for k in CRASH_KEYS) == originals, steps
        assert not os.path.exists(os.path.join(root, "var/lib/linuxnet-tcp")) and not os.listdir(os.path.join(root, "etc/sysctl.d"))
    # Journal, runtime writes and files: a few dozen steps each; each one was cut.
    print("%s: %d mutating steps cut" % (scenario, steps - 1))
    assert steps > 15, steps


def run_check(run, root):
    """The same run in check mode (run() closes over its arguments, so call the library with check_mode through it)."""
    real = profile.profile_present, profile.profile_absent
    try:
        profile.profile_present = lambda *a, **k: real[0](*a, **dict(k, check_mode=True))
        profile.profile_absent = lambda *a, **k: real[1](*a, **dict(k, check_mode=True))
        return run(root)
    finally:
        profile.profile_present, profile.profile_absent = real


def test_recovered_says_what_the_interrupted_run_had_done(tmp_path, monkeypatch):
    root = make_tree(tmp_path)
    settings = {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600}
    # Cut the run right after its first runtime write: the journal is on disk, somaxconn written, keepalive not yet.
    writes = []
    with monkeypatch.context() as patch:
        real_write = SysctlTree.write

        def write(tree, key, value):
            if writes:
                raise Killed()
            writes.append(key)
            return real_write(tree, key, value)
        patch.setattr(SysctlTree, "write", write)
        with pytest.raises(Killed):
            profile.profile_present(root, "web", settings)
    assert writes == ["net.core.somaxconn"] and raw(root, "net/core/somaxconn") == "8192\n"
    put(root, "/etc/sysctl.d/.90-linuxnet-web.conf.abcd_123.lntcp-tmp", "# half a file")
    check = profile.profile_present(root, "web", settings, check_mode=True)
    assert read(root, "/etc/sysctl.d/.90-linuxnet-web.conf.abcd_123.lntcp-tmp") == "# half a file"
    result = profile.profile_present(root, "web", settings)
    assert result == check
    recovered = result["recovered"]
    assert recovered.pop("started").endswith("Z")
    assert recovered == {"action": "present", "pid": os.getpid(),
                         "runtime_written": {"net.core.somaxconn": {"before": "4096", "after": "8192"}},
                         "files_written": [], "temporary_files": ["/etc/sysctl.d/.90-linuxnet-web.conf.abcd_123.lntcp-tmp"]}
    assert result["changed"] is True and result["applied"]["net.ipv4.tcp_keepalive_time"] == {"before": "7200", "after": "600"}
    assert any("was interrupted after writing 1 runtime value(s) and 0 file(s)" in w for w in result["warnings"])
    assert os.listdir(os.path.join(root, "etc/sysctl.d")) == ["90-linuxnet-web.conf"]
    state = json.loads(read(root, STATE))
    assert "transaction" not in state and state["originals"] == {"net.core.somaxconn": "4096", "net.ipv4.tcp_keepalive_time": "7200"}
    again = profile.profile_present(root, "web", settings)
    assert again["changed"] is False and again["recovered"] is None


@pytest.mark.parametrize("scenario", ["apply", "update", "absent"])
@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_full_or_read_only_state_directory_fails_cleanly(tmp_path, monkeypatch, scenario, err):
    setup, run = SCENARIOS[scenario]
    root = _host(tmp_path, setup)
    os.makedirs(os.path.join(root, "var/lib"), exist_ok=True)
    before = _content(root)
    DiskFault(monkeypatch, root, "/var/lib", err)
    with pytest.raises(apply.CommitError) as exc:
        run(root)
    name = errno.errorcode[err]
    assert exc.value.errno == name and exc.value.path in (STATE, "/var/lib/linuxnet-tcp")
    assert str(exc.value).startswith("writing the journal to the state file failed: %s: %s (" % (exc.value.path, name))
    assert str(exc.value).endswith("; nothing was changed")
    assert _content(root) == before


def test_a_run_waits_for_the_lock_and_names_its_holder(tmp_path):
    root = make_tree(tmp_path)
    before = _content(root)
    with files.HostLock(root):
        with pytest.raises(files.LockTimeout) as err:
            profile.profile_present(root, "web", {"net.core.somaxconn": 8192}, lock_timeout=0.1)
        assert err.value.pid == os.getpid() and err.value.path == "/var/lib/linuxnet-tcp/sysctl.lock"
        with pytest.raises(files.LockTimeout):
            profile.profile_absent(root, "web", check_mode=True, lock_timeout=0)
    assert _content(root) == before
    with pytest.raises(SysctlError) as err:
        profile.profile_present(root, "web", {"net.core.somaxconn": 8192}, lock_timeout=-1)
    assert "lock_timeout must be a number of seconds" in str(err.value)


def test_commit_writes_the_journal_before_the_first_runtime_write(tmp_path, monkeypatch):
    root = make_tree(tmp_path)
    seen = []
    real_write = SysctlTree.write

    def write(tree, key, value):
        seen.append(json.loads(read(root, STATE)))  # the journal, on disk before this write
        return real_write(tree, key, value)
    monkeypatch.setattr(SysctlTree, "write", write)
    txn = Transaction("present", [Change("net.core.somaxconn", "4096", "8192")], [FileChange(DROPIN, None, files.MARKER + "\n", 0o644)],
                      True, files.state_text("web", DROPIN, {"net.core.somaxconn": "4096"}), {"net.core.somaxconn": "4096"})
    journal = files.journal_text("web", DROPIN, txn.originals, "present", txn.runtime, txn.files)
    apply.commit(root, SysctlTree(root), "web", txn, journal, None, [])
    assert seen[0]["transaction"]["action"] == "present" and seen[0]["originals"] == {"net.core.somaxconn": "4096"}
    assert raw(root, "net/core/somaxconn") == "8192\n" and read(root, DROPIN) == files.MARKER + "\n"
    assert "transaction" not in json.loads(read(root, STATE))


def test_commit_removes_only_the_empty_directories_of_a_revert(tmp_path):
    root = make_tree(tmp_path)
    put(root, "/etc/modules-load.d/other.conf", "sctp\n")
    os.makedirs(os.path.join(root, "etc/sysctl.d"))
    apply.commit(root, SysctlTree(root), "web", Transaction("reverted", rmdirs=["/etc/sysctl.d", "/etc/modules-load.d"]), None,
                 None, [])
    assert not os.path.exists(os.path.join(root, "etc/sysctl.d")) and read(root, "/etc/modules-load.d/other.conf") == "sctp\n"


def test_load_modules_reports_what_it_could_not_load(tmp_path):
    root, _modprobe = conntrack_host(tmp_path)
    tree = SysctlTree(root)
    modprobe = FakeModprobe(root, broken=("ip_vs",))
    loaded, warnings = apply.load_modules(tree, ["nf_conntrack", "ip_vs"], modprobe)
    assert loaded == ["nf_conntrack"] and modprobe.calls == [["nf_conntrack"], ["ip_vs"]]
    assert warnings == ["modprobe ip_vs failed (rc=1): modprobe: FATAL: Module ip_vs not found in directory "
                        "/lib/modules/6.18.44-test; its keys are skipped"]
    assert apply.load_modules(tree, ["sctp"], None) == ([], ["modprobe is not installed, so sctp was not loaded now; its keys are "
                                                             "skipped"])
    assert apply.load_modules(tree, ["sctp"], lambda argv: (0, "", ""))[1] == [
        "modprobe sctp succeeded but /sys/module/sctp is absent; its keys are skipped"]


@pytest.mark.parametrize("timeout", [-1, 86401, True, "60"])
def test_a_bad_lock_timeout_is_a_profile_error(timeout):
    with pytest.raises(files.ProfileError) as err:
        apply.check_timeout(timeout)
    assert "lock_timeout must be a number of seconds from 0 to 86400" in str(err.value)
