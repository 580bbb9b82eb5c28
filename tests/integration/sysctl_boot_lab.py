# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Replay boot with the real systemd-sysctl on generated sysctl.d layouts, and ask sysctl_facts what it predicts.

Run as root INSIDE a private mount namespace (``unshare -m --propagation private``), with the collection importable
(PYTHONPATH at .build/collections, where ``make link`` exposes this checkout); the test does that::

    PYTHONPATH=.build/collections unshare -m --propagation private python sysctl_boot_lab.py random --seed 1100 --count 60 --out result.json

What it touches, and why nothing of the host is applied:
- tmpfs over every directory systemd-sysctl reads (/etc, /run, /usr/local/lib and /usr/lib ``sysctl.d``; /run
  and /usr/local/lib as a whole where the directory is missing) and a scratch file bind-mounted over
  /etc/sysctl.conf, all inside the private mount namespace, so the host's own files are neither read nor changed;
- tmpfs over the udev rules directories too, so the facts see no rule that re-applies interface keys when an
  interface appears (systemd's 99-systemd.rules): the probe runs systemd-sysctl once, over interfaces that exist;
- every layout is applied in a NEW network namespace (``unshare -n``), and generated keys are only
  per-network-namespace ``net.ipv4.*`` keys; before each run ``systemd-sysctl --cat-config`` (the tool's own view
  of the files) must name nothing else, and the probe refuses to run outside a child network namespace.

The probe first puts the namespace in the state boot leaves it in when systemd-sysctl.service runs: ``default`` holds
the kernel's boot-time values (so interfaces, copies of it, hold them too), and ``lo`` is up with 127.0.0.1, which marks
its values as set. Then it reads every ``net.ipv4`` key, runs systemd-sysctl, reads them again and runs the real
``linuxnet.tcp.sysctl_facts`` module (as Ansible runs it) over the same files. The result says, per key, what
systemd-sysctl left and what the facts said boot applies.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import conf

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(REPO, ".build", "collections")
SYSTEMD_SYSCTL = next((p for p in ("/lib/systemd/systemd-sysctl", "/usr/lib/systemd/systemd-sysctl") if os.path.exists(p)), None)
DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"
UDEV_RULES_DIRS = ("/etc/udev/rules.d", "/run/udev/rules.d", "/usr/local/lib/udev/rules.d", "/usr/lib/udev/rules.d",
                   "/lib/udev/rules.d")
# Interfaces of each probe's network namespace: names with dots, as VLAN and bond sub-interfaces have.
INTERFACES = ("eth0.100", "bond0.20")
# Keys the generator writes explicitly, with values every one of them accepts. No 'forwarding': writing
# conf.all.forwarding changes every interface (devinet_sysctl_forward()), which no file-level model predicts.
CONF_LEAVES = {"rp_filter": (0, 2), "send_redirects": (0, 1), "accept_redirects": (0, 1), "log_martians": (0, 1),
               "accept_source_route": (0, 1), "secure_redirects": (0, 1)}
TCP_KEYS = {"tcp_fin_timeout": (10, 120), "tcp_keepalive_time": (60, 7200), "tcp_keepalive_intvl": (10, 120),
            "tcp_keepalive_probes": (1, 20), "tcp_syn_retries": (3, 8), "tcp_synack_retries": (2, 6),
            "tcp_tw_reuse": (0, 2), "tcp_max_syn_backlog": (128, 4096)}
# Globs and the value range every key they match accepts.
GLOBS = (
    ("net.ipv4.conf.*.rp_filter", (0, 2)),
    ("net/ipv4/conf/*/send_redirects", (0, 1)),
    ("net.ipv4.conf.e*.log_martians", (0, 1)),
    ("net.ipv4.conf.eth0?100.accept_redirects", (0, 1)),
    ("net.ipv4.conf.eth0/1*.rp_filter", (0, 2)),
    ("net/ipv4/conf/*.*/rp_filter", (0, 2)),
    ("net.ipv4.conf.{lo,bond*}.send_redirects", (0, 1)),
    ("net.ipv4.conf.[!al]*.log_martians", (0, 1)),
    ("net.ipv4.conf.[^d]*.secure_redirects", (0, 1)),
    ("net.ipv4.conf.*.accept_*", (0, 1)),
    ("net.ipv4.tcp_keepalive_*", (10, 100)),
    ("net.ipv4.tcp_keepalive_{time,intvl}", (10, 100)),  # braces without * ? [ are literal: matches nothing
    ("net.ipv4.conf.*.no_such_leaf", (0, 1)),
)
NAMES = ("10-base", "50-net", "60-vendor", "90-linuxnet-web", "95-site", "99-local")


# ---------------------------------------------------------------------------------------------
# Generator.

def _spell(rng, parts):
    """One key in one of the spellings systemd-sysctl accepts."""
    kind = rng.random()
    if kind < 0.45:
        return ".".join(p.replace(".", "/") for p in parts)
    if kind < 0.8:
        return "/".join(parts)
    if kind < 0.9:
        return "/" + "/".join(parts)          # leading slash: dropped by sysctl_normalize()
    return ".".join(p.replace(".", "/") for p in parts[:2]) + "." + ".".join(p.replace(".", "/") for p in parts[2:])


def _value(rng, lo, hi):
    value = rng.randint(lo, hi)
    kind = rng.random()
    if kind < 0.08 and value > 0:
        return "0x%x" % value                 # the kernel parses integers with base 0
    if kind < 0.14 and value > 0:
        return " %d " % value
    return str(value)


def _line(rng):
    """One line of a sysctl.d file."""
    roll = rng.random()
    if roll < 0.06:
        return rng.choice(("# comment = 1", "; also a comment", "", "   ", "not an assignment"))
    if roll < 0.26:
        pattern, (lo, hi) = rng.choice(GLOBS)
        return "%s = %s" % (pattern, _value(rng, lo, hi))
    if roll < 0.3:
        pattern, _range = rng.choice(GLOBS)
        return "-" + pattern                  # an exclusion given as a glob excludes nothing
    if roll < 0.65:
        leaf = rng.choice(sorted(CONF_LEAVES))
        parts = ["net", "ipv4", "conf", rng.choice(("all", "default", "lo") + INTERFACES), leaf]
        lo, hi = CONF_LEAVES[leaf]
    elif roll < 0.67:
        parts, lo, hi = ["net", "ipv4", "tcp_no_such_key"], 0, 1
    else:
        leaf = rng.choice(sorted(TCP_KEYS))
        parts = ["net", "ipv4", leaf]
        lo, hi = TCP_KEYS[leaf]
    key = _spell(rng, parts)
    if rng.random() < 0.1:
        return "-" + key                      # exclusion
    sep = rng.choice(("=", " = ", "\t=\t", " =", "= "))
    return "%s%s%s%s" % ("-" if rng.random() < 0.15 else "", key, sep, _value(rng, lo, hi))


def _text(rng):
    lines = [_line(rng) for _number in range(rng.randint(1, 8))]
    end = rng.choice(("\n", "\n", "\r\n"))
    return end.join(lines) + (end if rng.random() < 0.9 else "")


def generate(seed):
    """A layout: ``{"files": {path: text}, "links": {path: target}, "sysctl_conf": text}``."""
    rng = random.Random(seed)
    files, links = {}, {}
    for name in rng.sample(NAMES, rng.randint(2, len(NAMES))):
        for directory in rng.sample(DIRS, rng.randint(1, 3)):  # the same basename across directories
            files["%s/%s.conf" % (directory, name)] = _text(rng)
    if rng.random() < 0.3:
        # Mask a name: /etc/sysctl.d/NAME.conf -> /dev/null hides every file of that name.
        victim = rng.choice(sorted(files))
        mask = "/etc/sysctl.d/" + os.path.basename(victim)
        files.pop(mask, None)
        links[mask] = "/dev/null"
    if rng.random() < 0.6:
        links["/etc/sysctl.d/99-sysctl.conf"] = "../sysctl.conf"
    for _extra in range(rng.randint(0, 2)):
        # Files systemd-sysctl never reads: no .conf suffix, or hidden.
        name = rng.choice(("README", "50-net.conf.bak", ".hidden.conf", "70-x.conf~", "80-y.conf.dpkg-old"))
        files["%s/%s" % (rng.choice(DIRS), name)] = _text(rng)
    return {"files": files, "links": links, "sysctl_conf": _text(rng)}


# ---------------------------------------------------------------------------------------------
# The private mount namespace.

def isolate(scratch):
    """tmpfs over every sysctl.d directory and a scratch /etc/sysctl.conf. Only inside a private mount namespace."""
    with open("/proc/self/mountinfo") as handle:
        if not any(line.split()[4] == "/" and "shared:" not in line for line in handle):
            raise SystemExit("sysctl_boot_lab: run me under 'unshare -m --propagation private'")
    for directory in DIRS:
        if os.path.isdir(directory):
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", directory], check=True)
            continue
        # /run or /usr/local/lib without a sysctl.d: a tmpfs over the parent, inside this namespace only, whose
        # entries link to the parent's real content (kept reachable through a bind mount in the scratch dir),
        # so whatever lives there (a Python under /usr/local/lib) still works.
        parent = os.path.dirname(directory)
        keep = os.path.join(scratch, "orig" + parent.replace("/", "_"))
        os.makedirs(keep)
        subprocess.run(["mount", "--bind", parent, keep], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", parent], check=True)
        for entry in os.listdir(keep):
            os.symlink(os.path.join(keep, entry), os.path.join(parent, entry))
        os.makedirs(directory)
    if os.path.realpath("/lib/sysctl.d") not in [os.path.realpath(d) for d in DIRS] and os.path.isdir("/lib/sysctl.d"):
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/lib/sysctl.d"], check=True)
    for directory in UDEV_RULES_DIRS:
        if os.path.isdir(directory) and not os.path.islink(directory):
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", directory], check=True)
    conf = os.path.join(scratch, "sysctl.conf")
    open(conf, "w").close()
    if os.path.exists(SYSCTL_CONF):
        subprocess.run(["mount", "--bind", conf, SYSCTL_CONF], check=True)
    return conf


def _mounts_under(directory):
    prefix = os.path.realpath(directory) + "/"
    with open("/proc/self/mountinfo") as handle:
        return [line.split()[4] for line in handle if line.split()[4].startswith(prefix)]


def release(scratch):
    """Unmount what :func:`isolate` mounted in the scratch directory, then remove it.

    The scratch directory holds bind mounts of real host directories (``/run``, ``/usr/local/lib`` when they have no
    sysctl.d): removing the tree through them would delete the host's own files, in every namespace. So every mount
    under it is detached first, deepest first, and the tree is left in place if one remains."""
    for point in sorted(_mounts_under(scratch), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    if _mounts_under(scratch):
        print("sysctl_boot_lab: %s still holds mounts %s; left in place" % (scratch, _mounts_under(scratch)),
              file=sys.stderr)
        return
    shutil.rmtree(scratch, ignore_errors=True)


def install(layout):
    """Make the sysctl.d directories hold exactly the layout."""
    for directory in DIRS:
        for entry in os.listdir(directory):
            path = os.path.join(directory, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
    for path, text in layout["files"].items():
        with open(path, "w", newline="") as handle:
            handle.write(text)
    for path, target in layout["links"].items():
        os.symlink(target, path)
    if os.path.exists(SYSCTL_CONF):
        with open(SYSCTL_CONF, "w", newline="") as handle:
            handle.write(layout["sysctl_conf"])


# ---------------------------------------------------------------------------------------------
# The probe, in a fresh network namespace.

def read_net_ipv4():
    """Every readable net.ipv4 key of this network namespace: {collection spelling: value}."""
    out = {}
    base = "/proc/sys/net/ipv4"
    for top, dirs, names in os.walk(base):
        dirs.sort()
        for entry in names:
            path = os.path.join(top, entry)
            if not os.stat(path).st_mode & 0o444:
                continue
            parts = os.path.relpath(path, "/proc/sys").split("/")
            try:
                with open(path) as handle:
                    value = " ".join(handle.read().split())
            except OSError:
                continue  # write-only keys (route/flush: EACCES) and keys the kernel will not read here have no value
            out[".".join(p.replace(".", "/") for p in parts)] = value
    return out


def cat_config_keys():
    """Keys of every assignment systemd-sysctl would apply, from its own --cat-config."""
    out = subprocess.run([SYSTEMD_SYSCTL, "--cat-config", "--no-pager"], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}).stdout
    found = []
    for raw in out.replace("\r", "\n").replace("\x00", "\n").split("\n"):
        line = raw.strip(" \t")
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key = line.split("=", 1)[0].strip(" \t").lstrip("-").strip(" \t")
        seps = [i for i in (key.find("."), key.find("/")) if i >= 0]
        if seps and key[min(seps)] == ".":
            key = key.translate(str.maketrans("./", "/."))
        found.append("/".join(p for p in key.split("/") if p not in ("", ".")))
    return found


def run_facts(patterns, python):
    """The real sysctl_facts module, as Ansible runs it: python -m MODULE ARGS_FILE."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": {"keys": patterns}}, handle)
    try:
        env = dict(os.environ, PYTHONPATH=COLLECTIONS, LC_ALL="C")
        env.pop("CREDENTIALS_DIRECTORY", None)
        proc = subprocess.run([python, "-m", "ansible_collections.linuxnet.tcp.plugins.modules.sysctl_facts", handle.name],
                              capture_output=True, text=True, env=env, check=False)
    finally:
        os.unlink(handle.name)
    result = json.loads(proc.stdout)
    if result.get("failed"):
        raise RuntimeError("sysctl_facts failed: %s" % result.get("msg"))
    return result["ansible_facts"]["sysctl"]


def boot_state():
    """Put this (fresh) network namespace where boot is when systemd-sysctl.service runs.

    A new namespace copies ``default`` from the host's current values (devconf_inherit_init_net=0), not from the
    kernel's: write the kernel's boot-time values (the model's table, which the VM tests check on real boots) to
    ``default``, which the interfaces, never written, copy. Then ``lo`` comes up, as systemd brings it up before any
    unit; its 127.0.0.1 marks all its values as set (devinet.c), so later ``default`` writes pass it by.
    """
    base = "/proc/sys/net/ipv4/conf/default"
    for leaf in sorted(os.listdir(base)):
        path = os.path.join(base, leaf)
        if leaf in conf._NOT_COPIED_FROM_DEFAULT or not os.stat(path).st_mode & 0o200:  # pylint: disable=protected-access
            continue
        value = str(conf._DEVCONF_DEFAULT_AT_BOOT.get(leaf, 0))  # pylint: disable=protected-access
        with open(path) as handle:
            if handle.read().strip() == value:
                continue
        with open(path, "w") as handle:
            handle.write(value + "\n")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def probe(python, out_path):
    """In this (fresh) network namespace: boot state, before, systemd-sysctl, after, facts."""
    if os.path.exists("/proc/sys/net/core/netdev_max_backlog"):
        raise SystemExit("sysctl_boot_lab probe: not in a child network namespace, refusing to run systemd-sysctl")
    if not os.path.isdir("/proc/sys/net/ipv4/conf/" + INTERFACES[0]):
        subprocess.run(["ip", "link", "add", INTERFACES[0], "type", "veth", "peer", "name", INTERFACES[1]], check=True)
    boot_state()
    bad = [k for k in cat_config_keys() if not k.startswith("net/ipv4/")]
    if bad:
        raise SystemExit("sysctl_boot_lab probe: refusing, the configuration names keys outside net.ipv4: %s" % bad[:5])
    before = read_net_ipv4()
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "SYSTEMD_LOG_LEVEL": "debug"}
    proc = subprocess.run([SYSTEMD_SYSCTL], capture_output=True, text=True, env=env, check=False)
    after = read_net_ipv4()
    facts = run_facts(["net.ipv4.*", "net.ipv4.conf.*.*"], python)
    with open(out_path, "w") as handle:
        json.dump({"before": before, "after": after, "facts": facts, "rc": proc.returncode,
                   "log": (proc.stdout + proc.stderr)[-4000:]}, handle)


def compare(result):
    """Keys where what systemd-sysctl left differs from what the facts predict: [(key, before, after, predicted)]."""
    persisted = result["facts"]["persisted"]
    bad = []
    for key in sorted(set(result["before"]) | set(result["after"])):
        predicted = persisted[key]["value"] if key in persisted else result["before"].get(key)
        after = result["after"].get(key)
        if not _same(after, predicted):
            bad.append((key, result["before"].get(key), after, predicted))
    return bad


def dotted_interface_keys(result):
    """How many keys of an interface with a dot in its name (``/`` in the collection's spelling) the facts say boot
    sets and :func:`compare` checked against what systemd-sysctl left."""
    compared = set(result["before"]) | set(result["after"])
    return sum(1 for key in result["facts"]["persisted"] if "/" in key and key in compared)


def skipped_interface_writes(layout, result):
    """How many interface keys (not ``all``/``default``) some line of the layout assigns, in the ``.`` spelling
    with a plain integer, the value the key already had before systemd-sysctl: writes it skipped."""
    count = 0
    for text in list(layout["files"].values()) + [layout["sysctl_conf"]]:
        for raw in text.replace("\r", "\n").split("\n"):
            key, sep, value = raw.strip().lstrip("-").partition("=")
            parts = key.strip().split(".")
            if sep and len(parts) == 5 and parts[:3] == ["net", "ipv4", "conf"] and parts[3] not in ("all", "default"):
                name = ".".join(parts[:3] + [parts[3].replace(".", "/"), parts[4]])
                count += result["before"].get(name) == value.strip()
    return count


def _same(runtime, configured):
    if runtime is None or configured is None:
        return runtime == configured
    if runtime == " ".join(configured.split()):
        return True
    try:
        return [int(t, 0) for t in runtime.split()] == [int(t, 0) for t in configured.split()]
    except ValueError:
        return False  # not both numeric, and not the same text either


def run_random(seed, count, out_path, python):
    scratch = tempfile.mkdtemp(prefix="lntcp-boot-")
    try:
        isolate(scratch)
        report = []
        for index in range(count):
            layout = generate(seed + index)
            install(layout)
            probe_out = os.path.join(scratch, "probe-%d.json" % index)
            subprocess.run(["unshare", "-n", python, __file__, "probe", "--python", python, "--out", probe_out], check=True)
            with open(probe_out) as handle:
                result = json.load(handle)
            mismatches = compare(result)
            report.append({"seed": seed + index, "layout": layout, "mismatches": mismatches, "rc": result["rc"],
                           "keys": len(result["after"]), "persisted": len(result["facts"]["persisted"]),
                           "dotted_interface_keys": dotted_interface_keys(result),
                           "skipped_interface_writes": skipped_interface_writes(layout, result),
                           "log": result["log"] if mismatches else ""})
        with open(out_path, "w") as handle:
            json.dump(report, handle, indent=1)
    finally:
        release(scratch)


def run_replay(sources, out_path, python):
    """Boot as systemd-sysctl would with the given directories' files (``{sysctl.d dir: scratch dir}``)."""
    scratch = tempfile.mkdtemp(prefix="lntcp-boot-")
    try:
        isolate(scratch)
        layout = {"files": {}, "links": {}, "sysctl_conf": ""}
        for target, source in sources.items():
            for entry in sorted(os.listdir(source)):
                path = os.path.join(source, entry)
                if os.path.islink(path):
                    layout["links"][os.path.join(target, entry)] = os.readlink(path)
                elif os.path.isfile(path):
                    with open(path, newline="") as handle:
                        layout["files"][os.path.join(target, entry)] = handle.read()
        install(layout)
        subprocess.run(["unshare", "-n", python, __file__, "probe", "--python", python, "--out", out_path], check=True)
    finally:
        release(scratch)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    rnd = sub.add_parser("random", help="random layouts, each replayed in a fresh network namespace")
    rnd.add_argument("--seed", type=int, default=1100)
    rnd.add_argument("--count", type=int, default=60)
    rnd.add_argument("--out", required=True)
    rnd.add_argument("--python", default=sys.executable)
    rep = sub.add_parser("replay", help="boot with the files of given directories, in a fresh network namespace")
    rep.add_argument("--dir", action="append", default=[], metavar="SYSCTL_D=SCRATCH",
                     help="e.g. /etc/sysctl.d=/tmp/lab/etc (repeatable)")
    rep.add_argument("--out", required=True)
    rep.add_argument("--python", default=sys.executable)
    prb = sub.add_parser("probe", help="(internal) run inside unshare -n")
    prb.add_argument("--python", default=sys.executable)
    prb.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if SYSTEMD_SYSCTL is None:
        raise SystemExit("systemd-sysctl is not installed")
    if args.cmd == "random":
        run_random(args.seed, args.count, args.out, args.python)
    elif args.cmd == "replay":
        sources = dict(item.split("=", 1) for item in args.dir)
        if not set(sources) <= set(DIRS):
            raise SystemExit("replay: --dir targets must be among %s" % ", ".join(DIRS))
        run_replay(sources, args.out, args.python)
    else:
        probe(args.python, args.out)


if __name__ == "__main__":
    main()
