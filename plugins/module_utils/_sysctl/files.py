# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The files a profile owns: render, check ownership, write atomically, save the runtime originals.

The only code in the collection that writes files. A profile ``NAME`` owns:

- the drop-in ``/etc/sysctl.d/90-linuxnet-NAME.conf`` (or the path given as ``file``);
- ``/etc/modules-load.d/90-linuxnet-NAME.conf``, read by systemd-modules-load before systemd-sysctl runs;
- ``/etc/modprobe.d/90-linuxnet-NAME.conf`` with the profile's module parameters;
- the state file ``/var/lib/linuxnet-tcp/sysctl-NAME.json``, the runtime values found before the first change, and
  while a run is under way its journal (see :func:`journal_text`).

Every owned file but the state file starts with :data:`MARKER`; a file at one of these paths without it
belongs to someone else and is never overwritten.

Writes are atomic and durable: a temporary file in the target directory (named ``.NAME.<8 random characters>.lntcp-tmp``, so a
later run knows a killed run's leftovers by their name), fsync, rename, fsync of the directory. One run at a time
per host holds :class:`HostLock`.
"""

import errno
import fcntl
import hashlib
import json
import os
import re
import stat
import tempfile
import time

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import keys
from ansible_collections.linuxnet.tcp.plugins.module_utils._common import host_path, read_text, special_kind
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.conf import SYSCTL_CONF
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError

DEFAULT_DIR = "/etc/sysctl.d"
MODULES_LOAD_DIR = "/etc/modules-load.d"
MODPROBE_DIR = "/etc/modprobe.d"
STATE_DIR = "/var/lib/linuxnet-tcp"
LOCK_PATH = STATE_DIR + "/sysctl.lock"
LOCK_TIMEOUT = 60
MARKER = "# Managed by linuxnet.tcp.sysctl_profile"
TEMP_SUFFIX = ".lntcp-tmp"
# Every pattern is matched whole (fullmatch): '$' would also match before a trailing newline.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Kernel module names: MODULE_NAME_LEN is 56 including the NUL; '-' and '_' are interchangeable.
_MODULE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,54}")
_PARAM_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
_PARAM_VALUE_RE = re.compile(r"[A-Za-z0-9_.,:/+-]{1,256}")
# tempfile.mkstemp() names: the prefix, 8 characters of [a-z0-9_], the suffix.
_TEMP_RE = re.compile(r"\..+\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX))
_CONTROL = dict((chr(c), "character 0x%02x" % c) for c in list(range(32)) + [127])
_CONTROL.update({"\n": "a newline", "\x00": "a NUL byte", "\r": "a carriage return", "\t": "a tab"})


class ProfileError(SysctlError):
    """A profile's own input that is not a setting (its name, file, modules, module_options, revert, lock_timeout) is
    wrong; raised before anything changes."""


class OwnedFileError(SysctlError):
    """A file at one of the profile's paths is not the profile's to change (another's file, a FIFO, a directory), or
    its state file cannot be read; raised before anything changes."""


class LockError(SysctlError):
    """The host lock cannot be taken; raised before anything changes."""


# ---------------------------------------------------------------------------------------------
# Paths and input.

def validate_name(name):
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name:
        raise ProfileError("name %r must be 1-64 characters of letters, digits, '_', '-', '.' (no newline or other character), "
                           "start with a letter or digit and contain no '..' (it becomes a file name under %s)" % (name, DEFAULT_DIR))
    return name


def dropin_path(name, file=None):
    """Target path of a profile's drop-in, validated."""
    validate_name(name)
    if file is None:
        return "%s/90-linuxnet-%s.conf" % (DEFAULT_DIR, name)
    if not isinstance(file, str):
        raise ProfileError("file %r must be an absolute path ending in .conf" % (file,))
    bad = next((c for c in file if c in _CONTROL), None)
    if bad is not None:
        raise ProfileError("file %r must not contain %s: it becomes a file name that boot reads" % (file, _CONTROL[bad]))
    if not file.startswith("/") or not file.endswith(".conf"):
        raise ProfileError("file %r must be an absolute path ending in .conf" % (file,))
    norm = os.path.normpath(file)
    if norm != file or "/../" in file + "/":
        raise ProfileError("file %r must be a normalised absolute path without '..'" % (file,))
    if os.path.basename(norm).startswith("."):
        raise ProfileError("file %r: a hidden file name (leading '.') is never read at boot, and names this collection's "
                           "temporary files" % (file,))
    if norm == SYSCTL_CONF or os.path.basename(norm) == "99-sysctl.conf":
        raise ProfileError("file %r: this collection never edits /etc/sysctl.conf; use a drop-in under %s" % (file, DEFAULT_DIR))
    return norm


def state_path(name):
    return "%s/sysctl-%s.json" % (STATE_DIR, validate_name(name))


def modules_load_path(name):
    return "%s/90-linuxnet-%s.conf" % (MODULES_LOAD_DIR, validate_name(name))


def modprobe_path(name):
    return "%s/90-linuxnet-%s.conf" % (MODPROBE_DIR, validate_name(name))


def validate_modules(modules, option="modules"):
    """Kernel module names, in order, without duplicates; errors name ``option``."""
    if modules is None:
        return []
    if not isinstance(modules, (list, tuple)):
        raise ProfileError("%s must be a list of kernel module names" % option)
    out = []
    for item in modules:
        if not isinstance(item, str) or not _MODULE_RE.fullmatch(item):
            raise ProfileError("%s: %r is not a kernel module name (letters, digits, '_' and '-', at most 55)" % (option, item))
        if item not in out:
            out.append(item)
    return out


def validate_module_options(options):
    """``{module: {param: value}}`` with every name and value checked, values as strings."""
    if not options:
        return {}
    if not isinstance(options, dict):
        raise ProfileError("module_options must map kernel module names to {parameter: value} mappings")
    out = {}
    for module, params in options.items():
        validate_modules([module], "module_options")
        if not isinstance(params, dict) or not params:
            raise ProfileError("module_options.%s must be a non-empty mapping of parameter names to values" % module)
        checked = {}
        for param, value in params.items():
            if not isinstance(param, str) or not _PARAM_RE.fullmatch(param):
                raise ProfileError("module_options.%s: %r is not a module parameter name (letters, digits, '_')" % (module, param))
            if isinstance(value, bool) or not isinstance(value, (int, str)) or not _PARAM_VALUE_RE.fullmatch(str(value)):
                raise ProfileError("module_options.%s.%s: value %r must be an integer or a token of letters, digits and "
                                   "_ . , : / + - (no spaces, newlines or comment characters)" % (module, param, value))
            checked[param] = str(value)
        out[module] = checked
    return out


# ---------------------------------------------------------------------------------------------
# Content.

def render(name, entries):
    """Drop-in text for ``[(key, value, needs_module)]``; stable, so identical input gives identical bytes."""
    lines = [
        '%s (profile "%s"). Local edits are overwritten.' % (MARKER, name),
        "# Remove it with state=absent, which also restores the runtime values saved before the first apply.",
        '# A leading "-" marks keys that need a kernel module: boot never fails when the module is absent.',
    ]
    for key, value, needs_module in sorted(entries):
        lines.append("%s%s = %s" % ("-" if needs_module else "", key, value))
    return "\n".join(lines) + "\n"


def render_modules(name, modules):
    """modules-load.d(5) text: one module per line, loaded by systemd-modules-load before systemd-sysctl."""
    lines = ['%s (profile "%s"). Local edits are overwritten.' % (MARKER, name),
             "# Loaded by systemd-modules-load before systemd-sysctl, so the profile's keys exist at boot."]
    return "\n".join(lines + list(modules)) + "\n"


def render_modprobe(name, options):
    """modprobe.d(5) text: one ``options`` line per module."""
    lines = ['%s (profile "%s"). Local edits are overwritten.' % (MARKER, name)]
    for module in sorted(options):
        params = options[module]
        lines.append("options %s %s" % (module, " ".join("%s=%s" % (k, params[k]) for k in sorted(params))))
    return "\n".join(lines) + "\n"


def is_owned(text):
    return text is None or text.startswith(MARKER)


def check_owned(path, text, action="overwrite"):
    """Refuse to touch a file at one of our paths that lacks our header (``text`` is its content or None)."""
    if not is_owned(text):
        raise OwnedFileError("%s exists and is not managed by linuxnet.tcp (no '%s' header); refusing to %s it" % (path, MARKER, action))


def read_owned(root, path, action="overwrite"):
    """Text of one of the profile's paths (None: absent), refusing what is not ours: another's file, or something
    that is not a regular file (a FIFO, a directory, a device), which is never opened or replaced."""
    kind = special_kind(root, path)
    if kind is not None:
        raise OwnedFileError("%s exists and is %s, not a regular file; refusing to %s it" % (path, kind, action))
    text = read_text(root, path)
    check_owned(path, text, action)
    return text


def boot_file_change(root, path, new_text):
    """``(path, old, new)`` for one of the profile's module files, or None when nothing is to change.

    A file at our path without our header (or not a regular file) is never overwritten; when we would only remove
    it, it is left alone (unlike a foreign drop-in, which stops the run: the keys it sets are what we manage).
    """
    if new_text is None and (special_kind(root, path) is not None or not is_owned(read_text(root, path))):
        return None
    old = read_owned(root, path)
    return None if old == new_text else (path, old, new_text)


def text_digest(text):
    """What the journal records of a file's text (None: no file)."""
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Writing. Errors are OSError naming the target path (not the temporary file).

def _named(exc, path):
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno or 0), path)


def describe(exc):
    """``PATH: ENOSPC (No space left on device)`` for an OSError."""
    name = errno.errorcode.get(exc.errno, str(exc.errno))
    return "%s: %s (%s)" % (exc.filename, name, exc.strerror or os.strerror(exc.errno or 0))


def _fsync_dir(directory):
    """Make a rename, unlink or mkdir in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # a file system without directory fsync
            raise
    finally:
        os.close(fd)


def ensure_dir(root, directory):
    """Create ``directory`` and missing parents (0755); return the ones made, deepest first.

    Another run creating the same directory at the same moment is fine (mkdir's EEXIST is taken as done).
    """
    missing = []
    while directory not in ("", "/") and not os.path.isdir(host_path(root, directory)):
        missing.append(directory)
        directory = os.path.dirname(directory)
    made = []
    for path in reversed(missing):
        try:
            os.mkdir(host_path(root, path), 0o755)
        except FileExistsError:
            continue  # made meanwhile by someone else: there, and not ours to remove
        except OSError as exc:
            raise _named(exc, path)
        made.insert(0, path)
        try:
            _fsync_dir(host_path(root, os.path.dirname(path)))
        except OSError as exc:
            raise _named(exc, os.path.dirname(path))
    return made


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_atomic(root, path, text, mode=0o644):
    """Write through a temp file in the target directory, fsync it, rename it over the target, fsync the directory.

    At every instant the target holds its old or its new text, never a mix. The temporary file is removed on any
    error; a killed run leaves it behind, named so that :func:`leftover_temp_files` finds it.
    """
    full = host_path(root, path)
    directory = os.path.dirname(full)
    ensure_dir(root, os.path.dirname(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(full) + ".", suffix=TEMP_SUFFIX)
    except OSError as exc:
        raise _named(exc, path)
    try:
        try:
            os.fchmod(fd, mode)
            _write_all(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, full)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass  # the error that matters is the one raised below; a leftover temp file is removed by the next run
        if isinstance(exc, OSError):
            raise _named(exc, path)
        raise
    try:
        _fsync_dir(directory)
    except OSError as exc:
        raise _named(exc, os.path.dirname(path))


def remove_file(root, path):
    """Remove a target file (and make that durable); False when there was none."""
    full = host_path(root, path)
    try:
        os.unlink(full)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _named(exc, path)
    try:
        _fsync_dir(os.path.dirname(full))
    except OSError as exc:
        raise _named(exc, os.path.dirname(path))
    return True


def put_file(root, path, text, mode=0o644):
    """Write ``text`` atomically, or remove the file when ``text`` is None."""
    if text is None:
        remove_file(root, path)
    else:
        write_atomic(root, path, text, mode)


def write_files(root, changes):
    """Write or remove ``[(path, old_text, new_text, mode)]`` (new None removes) as one unit.

    Each file is replaced atomically; when one fails, the files already changed get their old text
    back before the error is raised, so no run leaves half of its files behind. The error carries
    ``rolled_back`` (the files put back) and ``rollback_failures`` (those that could not be).
    """
    done = []
    try:
        for path, old, new, mode in changes:
            done.append((path, old, mode))
            put_file(root, path, new, mode)
    except OSError as exc:
        exc.rollback_failures = undo_files(root, done)
        exc.rolled_back = [path for path, _old, _mode in done[:-1] if path not in exc.rollback_failures]
        raise


def undo_files(root, done):
    """Put back ``[(path, old_text, mode)]`` in reverse order where the text differs; return the paths that failed."""
    failures = []
    for path, old, mode in reversed(done):
        try:
            if read_text(root, path) != old:
                put_file(root, path, old, mode)
        except OSError:
            failures.append(path)
    return failures


def remove_empty_dirs(root, directories):
    """Remove ``directories`` (deepest first) that a reverted run had created; one that is not empty stays."""
    for directory in directories:
        try:
            os.rmdir(host_path(root, directory))
        except OSError:
            pass  # something was put there meanwhile (or the lock file, removed last): keep it


def leftover_temp_files(root, directories, own_names=()):
    """Temporary files of this collection in ``directories``, left by a killed run: ``[path]`` (target paths).

    Our naming (``.NAME.<8 random characters>.lntcp-tmp``) of any profile (the caller holds the host lock, so no other run is
    writing one now), and the naming of earlier releases (``.NAME.<8 random characters>``) for the file names in ``own_names``.
    Regular files only, never followed through a link.
    """
    legacy = re.compile(r"\.(%s)\.[a-z0-9_]{8}" % "|".join(re.escape(n) for n in own_names)) if own_names else None
    out = []
    for directory in sorted(set(directories)):
        try:
            entries = os.listdir(host_path(root, directory))
        except OSError:
            continue  # no such directory: no leftover in it
        for entry in sorted(entries):
            if _TEMP_RE.fullmatch(entry) or (legacy is not None and legacy.fullmatch(entry)):
                path = directory + "/" + entry
                try:
                    if stat.S_ISREG(os.lstat(host_path(root, path)).st_mode):
                        out.append(path)
                except OSError:
                    pass  # gone meanwhile: nothing to remove
    return out


# ---------------------------------------------------------------------------------------------
# State file and journal.

def load_state(root, name):
    """The saved originals ``{"profile", "file", "originals": {key: value}}`` or None; keys in the collection's spelling.

    ``transaction`` is there (a dict) when a run was interrupted after writing its journal (:func:`journal_text`),
    None otherwise. State files written before keys were spelled the sysctl(8) way (``net/ipv4/conf/eth0.100/x``)
    read the same.
    """
    path = state_path(name)
    kind = special_kind(root, path)
    if kind is not None:
        raise OwnedFileError("state file %s is %s, not a regular file; move it away to continue" % (path, kind))
    text = read_text(root, path)
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise OwnedFileError("state file %s is not valid JSON; move it away to continue" % path)
    if not isinstance(data, dict) or not isinstance(data.get("originals"), dict):
        raise OwnedFileError("state file %s has no 'originals' mapping; move it away to continue" % path)
    originals = {}
    for key, value in data["originals"].items():
        # Validated like any key given as an option: a '..' component or a stray character would direct the
        # restore of this original outside /proc/sys.
        try:
            originals[keys.canonical_key(key)] = value
        except SysctlError as exc:
            raise OwnedFileError("state file %s names an invalid key (%s); move it away to continue" % (path, exc))
        if not isinstance(value, str):
            raise OwnedFileError("state file %s: the original of %s is not a string; move it away to continue" % (path, key))
    data["originals"] = originals
    txn = data.get("transaction")
    data["transaction"] = _check_transaction(txn) if txn is not None else None
    return data


def _check_transaction(txn):
    """The journal's transaction with what a report needs; a damaged one still says that a run was interrupted."""
    out = {"action": None, "pid": None, "started": None, "runtime": {}, "files": {}}
    if not isinstance(txn, dict):
        return out
    for field, kind in (("action", str), ("pid", int), ("started", str)):
        if isinstance(txn.get(field), kind) and not isinstance(txn.get(field), bool):
            out[field] = txn[field]
    runtime = txn.get("runtime") if isinstance(txn.get("runtime"), dict) else {}
    for key, pair in runtime.items():
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair):
            try:
                out["runtime"][keys.canonical_key(key)] = pair
            except SysctlError:
                pass  # never read: a key outside /proc/sys
    written = txn.get("files") if isinstance(txn.get("files"), dict) else {}
    for path, pair in written.items():
        if isinstance(pair, list) and len(pair) == 2:
            out["files"][path] = pair
    return out


def dump_state(data):
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def state_text(name, file, originals):
    """The state file's text at rest."""
    return dump_state({"profile": name, "file": file, "originals": originals})


def state_text_originals(text):
    """The originals in a state file's text (as a revert document carries it), keys in the collection's spelling."""
    if not text:
        return {}
    data = json.loads(text)
    return dict((keys.canonical_key(key), value) for key, value in data["originals"].items())


def journal_text(name, file, originals, action, runtime, file_changes):
    """The state file while a run is under way: written (atomically) before the first runtime or file change.

    ``originals`` are those of the state before the run and after it together, plus the value before the run of
    every key the run writes, so whatever instant a run is killed at, every value it may have changed has its
    original on disk. ``transaction`` says what the run was doing, for the next run's ``recovered`` report.
    """
    return dump_state({
        "profile": name, "file": file, "originals": originals,
        "transaction": {
            "action": action, "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "runtime": dict((key, [before, after]) for key, before, after in runtime),
            "files": dict((path, [text_digest(old), text_digest(new)]) for path, old, new, _mode in file_changes),
        },
    })


# ---------------------------------------------------------------------------------------------
# One run at a time per host.

class LockTimeout(LockError):
    """Another run held the host lock for longer than the timeout."""

    def __init__(self, message, path, pid):
        super(LockTimeout, self).__init__(message)
        self.path = path
        self.pid = pid


class HostLock(object):
    """flock(2) on :data:`LOCK_PATH`: one sysctl_profile run at a time per host, from its plan to its last write.

    A real run takes it exclusively, creating the state directory and the lock file when missing, and writes its pid
    into it. It removes the lock file as its very last step (while still holding it), and the state directory too
    when no state file is left in it, so a host without a profile keeps no trace. A run that waited checks, once it
    has the lock, that the path still names the file it locked, and otherwise starts over on the new one.

    Check mode (``shared``) writes nothing: it takes a shared lock on the lock file only when one exists (a real run
    is under way), so it waits for that run to finish and never sees its transaction half done, and it holds a real
    run up only while it plans. With a read-only state directory nothing can be written, so there is nothing to lock:
    the run goes on without the lock (``held`` False), and fails at its first write if it has anything to change.
    """

    def __init__(self, root="/", shared=False, timeout=LOCK_TIMEOUT):
        self.root, self.shared, self.timeout = root, shared, timeout
        self.full = host_path(root, LOCK_PATH)
        self.fd = None
        self.created = []
        self.remove_on_release = []

    @property
    def held(self):
        return self.fd is not None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()

    def acquire(self):
        deadline = time.monotonic() + self.timeout
        while True:
            fd = self._open()
            if fd is None:
                return
            try:
                try:
                    got = self._wait(fd, deadline)
                except OSError as exc:
                    raise LockError("cannot take the lock %s: %s" % (LOCK_PATH, describe(_named(exc, LOCK_PATH))))
                if not got:
                    pid = self._holder(fd)
                    raise LockTimeout("another run of linuxnet.tcp.sysctl_profile holds the lock %s (pid %s) for more than "
                                      "lock_timeout=%s s" % (LOCK_PATH, pid or "unknown", self.timeout),
                                      LOCK_PATH, pid)
                if self._same(fd):
                    self.fd, fd = fd, None
                    break
            finally:
                if fd is not None:
                    os.close(fd)
        if not self.shared:
            try:
                os.ftruncate(self.fd, 0)
                _write_all(self.fd, ("%d\n" % os.getpid()).encode("ascii"))
            except OSError:
                pass  # a full disk: the lock holds all the same, only without the pid
            except BaseException:
                os.close(self.fd)
                self.fd = None
                raise

    def _open(self):
        cloexec = getattr(os, "O_CLOEXEC", 0)
        if self.shared:
            try:
                return os.open(self.full, os.O_RDONLY | cloexec)
            except OSError:
                return None  # no run under way (or nothing it could lock here)
        for _attempt in range(100):
            try:
                self.created.extend(ensure_dir(self.root, STATE_DIR))
                return os.open(self.full, os.O_RDWR | os.O_CREAT | cloexec, 0o644)
            except FileNotFoundError:
                continue  # a run that just finished removed the empty directory: make it again
            except OSError as exc:
                if exc.errno == errno.EROFS:
                    return None
                raise LockError("cannot take the lock %s: %s" % (LOCK_PATH, describe(_named(exc, LOCK_PATH))))
        raise LockError("cannot take the lock %s: its directory keeps disappearing" % LOCK_PATH)

    def _wait(self, fd, deadline):
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(0.05, remaining))

    def _same(self, fd):
        try:
            now = os.stat(self.full)
        except OSError:
            return False  # the lock file was removed by the run that held it: take the lock on a new one
        mine = os.fstat(fd)
        return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)

    @staticmethod
    def _holder(fd):
        """Pid of the run holding the lock: the kernel's own record (/proc/locks), else the pid the holder wrote."""
        mine = os.fstat(fd)
        ident = "%02x:%02x:%d" % (os.major(mine.st_dev), os.minor(mine.st_dev), mine.st_ino)
        try:
            with open("/proc/locks") as handle:
                for line in handle:
                    fields = line.split()
                    if "->" not in fields and len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == ident:
                        return int(fields[4])
        except (OSError, ValueError):
            pass  # no /proc/locks here: the pid the holder wrote is the next source
        try:
            text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        except OSError:
            return None  # the message then says the holder's pid is unknown
        return int(text) if text.isdigit() else None

    def release(self):
        """Remove the lock file (and the state directory, if nothing else is in it) while still holding the lock, then
        unlock. Nothing else is written after the unlink: the next run may already hold a new lock file."""
        if self.fd is None:
            return
        try:
            if not self.shared:
                state_dir = os.path.dirname(self.full)
                try:
                    alone = os.listdir(state_dir) == [os.path.basename(self.full)]
                except OSError:
                    alone = False  # when in doubt the directory stays
                try:
                    os.unlink(self.full)
                except OSError:
                    pass  # a lock file left behind is harmless: the next run takes the lock on it
                if alone:
                    dirs = set([STATE_DIR] + self.created + self.remove_on_release)
                    for directory in sorted(dirs, key=lambda d: (-d.count("/"), d)):
                        try:
                            os.rmdir(host_path(self.root, directory))
                        except OSError:
                            pass  # not empty, or a new run is making it again
        finally:
            os.close(self.fd)
            self.fd = None
