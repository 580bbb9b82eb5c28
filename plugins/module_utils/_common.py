# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every domain of module_utils shares (PRIVATE to the collection): the root of the collection's errors,
paths under a root, and reading a target's file without blocking on what is not a regular file.

Every reader takes a ``root`` (``/`` on a host, a fake tree in the unit tests) and maps the target's absolute
paths into it with :func:`host_path`, so the tests run the real code on recorded trees.
"""

import os
import stat


class LinuxnetError(Exception):
    """Root of the errors the collection raises on purpose; the message is for the user and names what failed.

    Each domain has its subclass (sysctl, TCP collection, namespaces, counters, IPVS), and a module catches its
    domain's class to fail with that message instead of a traceback.
    """


def host_path(root, path):
    """Map an absolute target path into ``root``."""
    return os.path.join(root, path.lstrip("/"))


def _kind(mode):
    for test, label in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return label
    return "not a regular file"


def resolve(root, path):
    """Host path of a target file with its symlinks followed inside ``root``; None for a link to /dev/null."""
    full = host_path(root, path)
    for _hop in range(40):
        if not os.path.islink(full):
            break
        target = os.readlink(full)
        if target == "/dev/null":
            return None
        full = host_path(root, target) if os.path.isabs(target) else os.path.join(os.path.dirname(full), target)
    return full


def special_kind(root, path):
    """What a target path is when it exists but is not a regular file ("a FIFO", "a directory", ...), else None.

    A link to /dev/null (systemd's way to mask a file) counts as an empty regular file.
    """
    full = resolve(root, path)
    try:
        mode = os.stat(full).st_mode if full is not None else None
    except OSError:
        return None
    return None if mode is None or stat.S_ISREG(mode) else _kind(mode)


def read_text(root, path):
    """Text of a target file, following symlinks inside ``root``; ``""`` for a link to /dev/null, None if unreadable.

    Only a regular file is opened: a FIFO would block the read forever and a device could act on the open, and
    any package can put one in a sysctl.d directory. It is checked before the open (stat) and after it (fstat on a
    descriptor opened without blocking), so nothing swapped in between is read either.
    """
    full = resolve(root, path)
    if full is None:
        return ""
    try:
        if not stat.S_ISREG(os.stat(full).st_mode):
            return None
        fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def listed_files(root, dirs, suffix):
    """``[(path, text)]`` of the ``suffix`` files in ``dirs`` by systemd's conf-files rules (conf_files_list_strv():
    hidden names skipped, one file per name, the first directory winning, sorted by name), as sysctl.d, modprobe.d,
    modules-load.d, udev rules and networkd drop-ins are read. Unreadable files are left out.
    """
    chosen = {}
    for directory in dirs:
        real = os.path.realpath(host_path(root, directory))
        try:
            names = os.listdir(host_path(root, directory))
        except OSError:
            continue  # a missing directory lists no file, as for systemd
        for entry in names:
            if entry.endswith(suffix) and not entry.startswith("."):
                chosen.setdefault(entry, (directory + "/" + entry, real))
    out, seen = [], set()
    for entry in sorted(chosen):
        path, real = chosen[entry]
        if (real, entry) in seen:
            continue
        seen.add((real, entry))
        text = read_text(root, path)
        if text is not None:
            out.append((path, text))
    return out
