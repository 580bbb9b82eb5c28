"""Fixtures of the VM tests: the three Debian VMs, booted side by side, always stopped.

The images come from tests/vm/build.sh (`make vm-images`, a prerequisite of `make test`). Without them, or without
root, qemu or ssh, the VM tests are skipped with the reason. LINUXNET_TCP_VMS=debian12 (comma separated) limits the
run to some images.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import time

import pytest

import vmlab


def _wanted():
    names = [n.strip() for n in os.environ.get("LINUXNET_TCP_VMS", ",".join(vmlab.TAGS)).split(",") if n.strip()]
    unknown = [n for n in names if n not in vmlab.TAGS]
    if unknown:
        raise pytest.UsageError("LINUXNET_TCP_VMS: unknown image(s) %s (expected %s)" % (unknown, ", ".join(vmlab.TAGS)))
    return names


def pytest_collection_modifyitems(config, items):
    """Skip the VM tests (with the reason) where they cannot run."""
    mine = [item for item in items if item.get_closest_marker("vm")]
    if not mine:
        return
    reason = None
    if os.geteuid() != 0:
        reason = "needs root"
    elif not all(shutil.which(t) for t in ("qemu-system-x86_64", "qemu-img", "ssh")):
        reason = "needs qemu-system-x86, qemu-utils and openssh-client (make system-deps)"
    else:
        missing = vmlab.missing_images(_wanted())
        if missing:
            reason = "VM images not built: %s (make vm-images)" % ", ".join(missing)
    if reason:
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=reason))


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through the fixture's finally, which stops the VMs


@pytest.fixture(scope="session")
def vms(tmp_path_factory):
    """The VMs, booted in parallel from fresh overlays, with an Ansible inventory; stopped on every exit path.

    The finally below runs on failures and Ctrl-C (KeyboardInterrupt), SIGTERM is turned into SystemExit so that it
    runs then too, and an atexit hook stops them should pytest leave without finalizing; whatever survives a SIGKILL
    is stopped by the next session's sweep.
    """
    stale = vmlab.sweep()  # VMs an interrupted session of this checkout left running
    machines = [vmlab.VM(tag) for tag in _wanted()]
    timings = {"swept": stale}
    previous = signal.signal(signal.SIGTERM, _terminate)
    atexit.register(lambda: [vm.stop() for vm in machines])
    try:
        start = time.monotonic()
        for vm in machines:
            vm.start()
        for vm in machines:
            vm.wait_ssh(timeout=600)
            timings[vm.name] = {"boot_to_ssh": round(time.monotonic() - start)}
        work = tmp_path_factory.mktemp("vm")
        inventory = str(work / "inventory.json")
        hosts = dict((vm.name, {
            "ansible_host": "127.0.0.1", "ansible_port": vm.port, "ansible_user": "root",
            "ansible_ssh_private_key_file": vm.key, "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        }) for vm in machines)
        with open(inventory, "w", encoding="utf-8") as handle:
            json.dump({"all": {"children": {"vms": {"hosts": hosts}}}}, handle, indent=2)
        yield {"machines": dict((vm.name, vm) for vm in machines), "inventory": inventory, "work": work,
               "timings": timings, "state": {}}
    finally:
        for vm in machines:
            vm.stop()
        signal.signal(signal.SIGTERM, previous)
