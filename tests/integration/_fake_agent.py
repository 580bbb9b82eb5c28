# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Become a process that looks like an agent to /proc: a given comm and exactly the given command line.

    python _fake_agent.py --comm kube-proxy --hold 60 -- /usr/local/bin/kube-proxy --config=/x.conf

/proc/PID/cmdline is the process's own argument memory (mm->arg_start..arg_end), so the helper re-executes
the interpreter with an argument area of exactly the length of the wanted command line, overwrites that
memory with it (NUL separated, as execve lays it out) and sets comm with prctl(PR_SET_NAME). Nothing needs
privileges. It prints one JSON line ({"pid", "ready"}) and exits when stdin closes or after --hold seconds.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import select
import sys

PR_SET_NAME = 15
_STAGE = "LNTCP_FAKE_AGENT_STAGE"
_CODE = "exec(open(__import__('os').environ['LNTCP_FAKE_AGENT']).read())"


def _arg_area():
    with open("/proc/self/stat", encoding="ascii") as handle:
        stat = handle.read()
    fields = stat[stat.rindex(")") + 2:].split()  # fields[0] is field 3 of proc(5)
    return int(fields[45]), int(fields[46])  # arg_start (48), arg_end (49)


def become(comm, argv):
    blob = b"".join(arg.encode() + b"\0" for arg in argv)
    start, end = _arg_area()
    if end - start != len(blob):
        raise SystemExit("argument area is %d bytes, the command line needs %d" % (end - start, len(blob)))
    ctypes.memmove(start, blob, len(blob))
    name = ctypes.create_string_buffer(comm.encode()[:15])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_NAME, ctypes.addressof(name), 0, 0, 0) != 0:
        raise SystemExit("prctl(PR_SET_NAME) failed: errno %d" % ctypes.get_errno())
    with open("/proc/self/cmdline", "rb") as handle:
        if handle.read() != blob:
            raise SystemExit("/proc/self/cmdline does not show the wanted command line")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--comm", required=True)
    parser.add_argument("--hold", type=float, default=60.0)
    parser.add_argument("argv", nargs="+")
    if os.environ.get(_STAGE) == "2":
        spec = json.loads(os.environ["LNTCP_FAKE_AGENT_SPEC"])
        become(spec["comm"], spec["argv"])
        print(json.dumps({"pid": os.getpid(), "ready": True}), flush=True)
        select.select([sys.stdin], [], [], min(spec["hold"], 600.0))
        return 0
    args = parser.parse_args()
    blob_len = sum(len(arg.encode()) + 1 for arg in args.argv)
    fixed = len(b"x\0-c\0") + len(_CODE) + 1
    pad = blob_len - fixed - 1
    if pad < 0:
        parser.error("the command line must be at least %d bytes long" % (fixed + 1))
    env = dict(os.environ, LNTCP_FAKE_AGENT=os.path.abspath(__file__), LNTCP_FAKE_AGENT_SPEC=json.dumps(
        {"comm": args.comm, "argv": args.argv, "hold": args.hold}), **{_STAGE: "2"})
    os.execve(sys.executable, ["x", "-c", _CODE, "p" * pad], env)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
