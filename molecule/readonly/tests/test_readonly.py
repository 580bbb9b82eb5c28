"""Verify the read-only /proc/sys case from the container's real state: nothing written anywhere."""
from __future__ import annotations

import pytest

from ansible_collections.linuxnet.tcp.molecule.default.tests.snapshot import snapshot

# Kernel defaults of a fresh network namespace on this kernel: the web profile would change each one.
DEFAULTS = {
    "net.ipv4.tcp_tw_reuse": "2",
    "net.ipv4.ip_local_port_range": "32768 60999",
    "net.ipv4.tcp_slow_start_after_idle": "1",
    "net.ipv4.tcp_mtu_probing": "0",
    "net.ipv4.tcp_notsent_lowat": "4294967295",
}
NOT_WRITTEN = ["/etc/sysctl.d/90-linuxnet-tuning.conf", "/var/lib/linuxnet-tcp/sysctl-tuning.json", "/var/lib/linuxnet-tcp",
               "/etc/modules-load.d/90-linuxnet-tuning.conf", "/etc/modprobe.d/90-linuxnet-tuning.conf"]


@pytest.fixture(scope="module")
def state(host):
    return snapshot(host, list(DEFAULTS), NOT_WRITTEN)


def test_proc_sys_is_read_only_here(host):
    assert "ro" in host.mount_point("/proc/sys").options


def test_runtime_unchanged(state):
    for key, value in DEFAULTS.items():
        assert state["proc"][key] == value, key


def test_nothing_written(state):
    for path in NOT_WRITTEN:
        assert state["files"][path] is None, path
