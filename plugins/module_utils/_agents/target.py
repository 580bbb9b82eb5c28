# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a detector finds its agent on the target and reads the files the agent reads (PRIVATE to the collection).

An agent counts when it runs (its process, found by comm or program name) or, for a daemon, when its unit is
enabled to start at boot. Its configuration is read as the process sees it: through /proc/PID/root for a
container's files, /proc/PID/cwd for a relative path. Every read goes through _common.read_text, which opens only
regular files (the /proc files are regular too), so a FIFO planted in a container's tree cannot block a run.
Everything takes ``root`` (``/`` on a host, a recorded tree in the unit tests).
"""

import os

from ansible_collections.linuxnet.tcp.plugins.module_utils._common import host_path, read_text


def listdir(root, path):
    """Sorted names in the target's directory ``path``; [] when it is missing or unreadable (nothing configured)."""
    try:
        return sorted(os.listdir(host_path(root, path)))
    except OSError:
        return []


def find(procs, *names):
    """Processes whose comm (15 characters at most) or program name is one of ``names``.

    ``procs`` is _host.processes.commands(). A script's argv[0] is its interpreter ("/usr/bin/python3 -Es
    /usr/sbin/tuned"), so the first non-option argument after a python interpreter counts as the program too.
    """
    found = []
    for proc in procs:
        argv = proc["argv"]
        program = os.path.basename(argv[0]) if argv else ""
        if program.startswith("python") and len(argv) > 1:
            script = next((arg for arg in argv[1:] if not arg.startswith("-")), "")
            program = os.path.basename(script)
        if proc["comm"] in names or program in names:
            found.append(proc)
    return found


def unit_enabled(root, unit):
    """The /etc/systemd/system/*.wants/ link that starts ``unit`` at boot, or None."""
    for wants in listdir(root, "/etc/systemd/system"):
        if wants.endswith(".wants"):
            link = "/etc/systemd/system/%s/%s" % (wants, unit)
            if os.path.lexists(host_path(root, link)):
                return link
    return None


def instances(root, procs, names, unit):
    """The running processes named ``names``, or one stand-in (pid None) when only ``unit`` starts at boot."""
    found = find(procs, *names)
    if found:
        return found
    link = unit_enabled(root, unit)
    return [{"pid": None, "comm": names[0], "argv": [], "enabled": link}] if link else []


def cmdline(proc):
    """The command line of a process as one string; ``[comm]`` for a kernel thread."""
    return " ".join(proc["argv"]) or "[%s]" % proc["comm"]


def evidence(proc, unit):
    """What shows the agent: its command line, or the enabled unit of a stand-in from instances()."""
    return cmdline(proc) if proc["argv"] else "%s (%s enabled, not running)" % (proc["enabled"], unit)


def proc_file(root, pid, path):
    """Read ``path`` as the process sees it (its mount namespace through /proc/PID/root, relative paths from
    its cwd), then as a path of ``root``. Returns (text or None, the path that was read or tried)."""
    candidates = []
    if pid is not None:
        if os.path.isabs(path):
            candidates.append("/proc/%d/root%s" % (pid, path))
        else:
            candidates.append("/proc/%d/cwd/%s" % (pid, path))
    if os.path.isabs(path):
        candidates.append(path)
    for candidate in candidates:
        text = read_text(root, candidate)
        if text is not None:
            return text, candidate
    return None, path
