# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""IPVS connection timeouts through ipvsadm (PRIVATE to the collection).

``ipvsadm --set TCP TCPFIN UDP`` sets the timeouts of IPVS connection entries of the current network
namespace (ip_vs_set_timeout() takes a struct netns_ipvs); ``0`` keeps a value. ``ipvsadm -L --timeout``
prints them as ``Timeout (tcp tcpfin udp): 900 120 300``. The kernel defaults come from
net/netfilter/ipvs/ip_vs_proto_tcp.c (ESTABLISHED 15 min, FIN_WAIT 2 min) and ip_vs_proto_udp.c (5 min).
Nothing persists them across a reboot.
"""

import os
import re
from ansible_collections.linuxnet.tcp.plugins.module_utils._common import LinuxnetError

FIELDS = ("tcp", "tcpfin", "udp")
DEFAULTS = {"tcp": 900, "tcpfin": 120, "udp": 300}
PROC_IP_VS = "/proc/net/ip_vs"
_TIMEOUT_RE = re.compile(r"^\s*Timeout\s*\(\s*tcp\s+tcpfin\s+udp\s*\)\s*:\s*(\d+)\s+(\d+)\s+(\d+)\s*$", re.MULTILINE)


class IpvsError(LinuxnetError):
    """ipvsadm is missing, failed, or printed something this parser does not know."""


def parse_timeouts(text):
    """``{"tcp": int, "tcpfin": int, "udp": int}`` from ``ipvsadm -L --timeout`` output."""
    match = _TIMEOUT_RE.search(text or "")
    if not match:
        raise IpvsError("cannot find 'Timeout (tcp tcpfin udp): N N N' in ipvsadm output: %r" % (text or "")[:200])
    return dict(zip(FIELDS, (int(v) for v in match.groups())))


def target(current, wanted):
    """Timeouts after the change: a wanted value of None or 0 keeps the current one (ipvsadm semantics)."""
    out = {}
    for field in FIELDS:
        value = wanted.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise IpvsError("%s must be a non-negative integer of seconds, got %r" % (field, value))
        out[field] = value if value else current[field]
    return out


def set_args(after):
    """Argument list of ``ipvsadm --set`` for the target timeouts."""
    return ["--set"] + [str(after[f]) for f in FIELDS]


def available(root="/"):
    """True when ip_vs is loaded in this network namespace (/proc/net/ip_vs exists)."""
    return os.path.exists(os.path.join(root, PROC_IP_VS.lstrip("/")))


class Ipvsadm(object):
    """The one runner for ipvsadm: argument lists, LC_ALL=C, rc and stderr both checked."""

    def __init__(self, module, binary=None):
        self.module = module
        self.binary = binary or module.get_bin_path("ipvsadm", required=False, opt_dirs=["/usr/sbin", "/sbin"])
        if not self.binary:
            raise IpvsError("ipvsadm is not installed (Debian/Ubuntu/RHEL package 'ipvsadm')")

    def run(self, args):
        rc, out, err = self.module.run_command([self.binary] + list(args), environ_update={"LC_ALL": "C"})
        if rc != 0 or err.strip():
            raise IpvsError("ipvsadm %s failed (rc=%s): %s" % (" ".join(args), rc, (err or out).strip()))
        return out

    def get(self):
        return parse_timeouts(self.run(["-L", "--timeout"]))

    def set(self, after):
        self.run(set_args(after))


def ensure(runner, wanted, check_mode=False):
    """Read, decide, (unless check mode) set and read back. Returns ``(changed, before, after)``."""
    before = runner.get()
    after = target(before, wanted)
    changed = after != before
    if changed and not check_mode:
        runner.set(after)
        got = runner.get()
        if got != after:
            raise IpvsError("ipvsadm kept %s after --set %s" % (got, " ".join(set_args(after)[1:])))
    return changed, before, after
