"""Read a container's real state in one round trip (the ansible backend costs seconds per command).

Shared by the tuning scenarios' testinfra modules. The script runs inside the container with its
python3 and reads /proc/sys, the given files and /proc/net/tcp{,6}; nothing comes from the play's output.
"""
from __future__ import annotations

import json

SCRIPT = r"""
import json, os, sys
keys, paths, dropin = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]

def read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None

def entries(text):
    out = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if line and line[0] not in "#;" and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = " ".join(value.split())
    return out

persisted = entries(read(dropin))
proc = {}
for key in set(keys) | set(k.lstrip("-") for k in persisted):
    value = read("/proc/sys/" + key.replace(".", "/"))
    proc[key] = None if value is None else " ".join(value.split())
files = {}
for path in paths + [dropin]:
    try:
        st = os.lstat(path)
    except OSError:
        files[path] = None
        continue
    files[path] = {"mode": st.st_mode & 0o7777, "uid": st.st_uid,
                   "link": os.readlink(path) if os.path.islink(path) else None, "text": read(path)}
listening = set()
for name in ("tcp", "tcp6"):
    for line in (read("/proc/net/" + name) or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A":
            listening.add(int(fields[1].rsplit(":", 1)[1], 16))
print(json.dumps({"proc": proc, "files": files, "persisted": persisted, "listening": sorted(listening)}))
"""


def snapshot(host, keys=(), paths=(), dropin="/etc/sysctl.d/90-linuxnet-tuning.conf"):
    """``{proc: {key: value|None}, files: {path: {mode, uid, link, text}|None}, persisted: {key: value}, listening: [port]}``.

    ``persisted`` keeps the leading '-' of keys that need a module; ``proc`` covers ``keys`` and every
    key of the drop-in.
    """
    out = host.check_output("python3 -c %s %s %s %s", SCRIPT, json.dumps(list(keys)), json.dumps(list(paths)), dropin)
    return json.loads(out)
