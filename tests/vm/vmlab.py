# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Debian virtual machines for the tests: start, reach over ssh, reboot, always stop.

Each VM boots an image of tests/vm/build.sh (the kernel and initramfs from the image, a qcow2 overlay over its
read-only disk, so every test session starts from the image as built) under qemu's TCG: this machine's /dev/kvm is
kvm_pvm, which runs only kernels built for it. User-mode networking forwards a free loopback port to the guest's
ssh. qemu daemonizes with a pidfile under .build/vm/run of this checkout; stop() and sweep() end a VM by that
pidfile only after checking that the process is the qemu started with it, so nothing else is ever killed.

    python tests/vm/vmlab.py up debian12      boot one by hand (prints the ssh command), then
    python tests/vm/vmlab.py down             stop every VM of this checkout
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUN = os.path.join(REPO, ".build", "vm", "run")
BUILD = os.path.join(HERE, "build.sh")
TAGS = ("debian11", "debian12", "debian13")
# Kernel command line: the root disk without partition table; eth0 as the guest's networkd configuration names
# it; quiet, no crypto self-tests and no mitigations (under TCG they cost seconds of boot and every syscall).
CMDLINE = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet cryptomgr.notests mitigations=off"
MEMORY_MB = 1024


class VMError(Exception):
    pass


def image_dir(tag: str) -> str:
    """The directory of the image the current recipe builds for ``tag`` (which need not exist yet)."""
    return subprocess.run([BUILD, "--path", tag], stdout=subprocess.PIPE, check=True, text=True).stdout.strip()


def missing_images(tags=TAGS) -> list:
    return [tag for tag in tags if not os.path.exists(os.path.join(image_dir(tag), "ready"))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _qemu_pid(pidfile: str):
    """The pid in ``pidfile`` if that process is a qemu started with this pidfile, else None."""
    try:
        with open(pidfile) as handle:
            pid = int(handle.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            argv = handle.read().decode("utf-8", "replace").split("\0")
    except (OSError, ValueError):
        return None
    return pid if os.path.basename(argv[0]).startswith("qemu-system") and pidfile in argv else None


def _end(pid: int, pidfile: str, timeout: float = 10.0) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _qemu_pid(pidfile) == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    if _qemu_pid(pidfile) == pid:
        os.kill(pid, signal.SIGKILL)


def sweep() -> list:
    """Stop every VM this checkout left running (an interrupted session) and remove its run files; return names."""
    stopped = []
    if not os.path.isdir(RUN):
        return stopped
    for entry in sorted(os.listdir(RUN)):
        if not entry.endswith(".pid"):
            continue
        pidfile = os.path.join(RUN, entry)
        pid = _qemu_pid(pidfile)
        if pid is not None:
            _end(pid, pidfile)
            stopped.append(entry[:-4])
        for suffix in (".pid", ".qcow2"):
            try:
                os.unlink(pidfile[:-4] + suffix)
            except OSError:
                pass
    return stopped


class VM:
    """One qemu VM of an image: ``start()``, ``wait_ssh()``, ``ssh()``, ``reboot()``, ``stop()``."""

    def __init__(self, tag: str, name: str | None = None):
        if tag not in TAGS:
            raise VMError("unknown image %r (expected one of %s)" % (tag, ", ".join(TAGS)))
        self.tag = tag
        self.name = name or tag
        self.image = image_dir(tag)
        self.key = os.path.join(self.image, "id_ed25519")
        self.overlay = os.path.join(RUN, self.name + ".qcow2")
        self.pidfile = os.path.join(RUN, self.name + ".pid")
        self.console = os.path.join(RUN, self.name + ".console")
        self.port = None
        self.boot_id = None

    def start(self) -> None:
        if not os.path.exists(os.path.join(self.image, "ready")):
            raise VMError("image %s is not built: run `make vm-images` (tests/vm/build.sh %s)" % (self.image, self.tag))
        os.makedirs(RUN, exist_ok=True)
        if _qemu_pid(self.pidfile) is not None:
            raise VMError("VM %s is already running (pidfile %s)" % (self.name, self.pidfile))
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", os.path.join(self.image, "disk.raw"), "-F", "raw",
                        self.overlay], check=True)
        self.port = free_port()
        argv = ["qemu-system-x86_64", "-name", "linuxnet-tcp-" + self.name,
                "-machine", "pc", "-accel", "tcg,tb-size=256", "-cpu", "max", "-smp", "1", "-m", str(MEMORY_MB),
                "-nodefaults", "-no-user-config", "-display", "none", "-serial", "file:" + self.console,
                "-kernel", os.path.join(self.image, "vmlinuz"), "-initrd", os.path.join(self.image, "initrd.img"),
                "-append", CMDLINE,
                "-drive", "file=%s,if=virtio,format=qcow2,cache=unsafe" % self.overlay,
                "-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22" % self.port, "-device", "virtio-net-pci,netdev=n0",
                "-device", "virtio-rng-pci", "-pidfile", self.pidfile, "-daemonize"]
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              check=False)
        if done.returncode != 0:
            raise VMError("qemu for %s failed (rc=%d): %s" % (self.name, done.returncode, done.stdout.strip()))

    def running(self) -> bool:
        return _qemu_pid(self.pidfile) is not None

    def ssh_argv(self, *command: str) -> list:
        return ["ssh", "-i", self.key, "-p", str(self.port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
                "root@127.0.0.1", "--"] + [shlex.quote(c) for c in command]

    def ssh(self, *command: str, check: bool = True, timeout: float = 300, stdin: str | None = None) -> str:
        """Run ``command`` (an argument list) in the guest and return its stdout; raise VMError on failure."""
        # ssh makes the stdin it is given non-blocking, which would leak into later processes (ansible-playbook
        # refuses to run then): it gets the script or /dev/null, never the caller's stdin.
        done = subprocess.run(self.ssh_argv(*command), input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise VMError("%s: %s failed (rc=%d): %s" % (self.name, " ".join(command), done.returncode,
                                                          (done.stderr or done.stdout).strip()[-2000:]))
        return done.stdout

    def python(self, script: str, *args: str, timeout: float = 300) -> str:
        """Run a Python script in the guest's python3 (given on stdin) and return its stdout."""
        return self.ssh("python3", "-", *args, stdin=script, timeout=timeout)

    def _read_boot_id(self):
        try:
            done = subprocess.run(self.ssh_argv("cat", "/proc/sys/kernel/random/boot_id"), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=20, check=False)
        except subprocess.TimeoutExpired:
            return None
        return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None

    def wait_ssh(self, timeout: float = 300, other_than: str | None = None) -> float:
        """Wait until ssh answers with a boot id other than ``other_than``; return the seconds waited."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.running():
                raise VMError("VM %s stopped while booting; console: %s" % (self.name, self.console_tail()))
            boot_id = self._read_boot_id()
            if boot_id and boot_id != other_than:
                self.boot_id = boot_id
                return time.monotonic() - start
            time.sleep(2)
        raise VMError("VM %s: no ssh after %d s; console: %s" % (self.name, timeout, self.console_tail()))

    def reboot_begin(self) -> str:
        """Ask the guest to reboot, detached (an ssh session that runs `systemctl reboot` can hang); return the old
        boot id for :meth:`wait_ssh`."""
        old = self.boot_id or self._read_boot_id()
        self.ssh("systemd-run", "--on-active=1", "--timer-property=AccuracySec=100ms", "/bin/systemctl", "reboot")
        return old

    def stop(self) -> None:
        pid = _qemu_pid(self.pidfile)
        if pid is not None:
            _end(pid, self.pidfile)
        for path in (self.pidfile, self.overlay):
            try:
                os.unlink(path)
            except OSError:
                pass

    def console_tail(self, lines: int = 15) -> str:
        try:
            with open(self.console, errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return "(no console log)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="boot VMs and print how to reach them")
    up.add_argument("tags", nargs="*", default=list(TAGS))
    sub.add_parser("down", help="stop every VM of this checkout")
    args = parser.parse_args(argv)
    if args.cmd == "down":
        print("stopped: %s" % (", ".join(sweep()) or "none"))
        return 0
    vms = [VM(tag) for tag in args.tags]
    for vm in vms:
        vm.start()
    for vm in vms:
        print("%s up in %.0f s: %s" % (vm.name, vm.wait_ssh(), " ".join(vm.ssh_argv()[:-1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
