# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Throwaway network namespaces and teardown of the helper processes the live tests start (test helper)."""
from __future__ import annotations

import contextlib
import os
import subprocess
import uuid


def sh(*argv, timeout=60):
    return subprocess.run(list(argv), check=True, capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"),
                          timeout=timeout)


@contextlib.contextmanager
def netns(*sysctls):
    """A new namespace ``lntcp-<random>`` with loopback up and ``sysctls`` ("key=value", namespaced keys only)
    written inside it; deleted on exit. Yields its name."""
    name = "lntcp-%s" % uuid.uuid4().hex[:8]
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        for setting in sysctls:
            sh("ip", "netns", "exec", name, "sysctl", "-q", "-w", setting)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def stop(proc, close_stdin=True, timeout=10):
    """End ``proc``: close its stdin (the helpers exit on EOF) or terminate it, then kill it if it lingers."""
    if proc is None:
        return
    if close_stdin and proc.stdin is not None:
        proc.stdin.close()
    else:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
