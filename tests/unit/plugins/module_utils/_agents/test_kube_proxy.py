# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""kube-proxy's view of the machine (plugins/module_utils/_agents/kube_proxy.py); its keys on recorded trees are in
test_writers.py."""
import os

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import kube_proxy as K


@pytest.mark.parametrize("online, status, expected", [
    ("0-3\n", None, (4, "/sys/devices/system/cpu/online")),
    ("0,2-3,8-11\n", None, (7, "/sys/devices/system/cpu/online")),
    (None, "Name:\tx\nCpus_allowed_list:\t0-1\n", (2, "/proc/7/status Cpus_allowed_list")),
    ("garbage\n", "Cpus_allowed_list:\t5\n", (1, "/proc/7/status Cpus_allowed_list")),  # an unreadable list: the next source
    (None, None, (None, None)),
])
def test_cpu_count(tmp_path, online, status, expected):
    if online is not None:
        os.makedirs(str(tmp_path / "sys/devices/system/cpu"))
        (tmp_path / "sys/devices/system/cpu/online").write_text(online)
    if status is not None:
        os.makedirs(str(tmp_path / "proc/7"))
        (tmp_path / "proc/7/status").write_text(status)
    assert K.cpu_count(str(tmp_path), 7) == expected


@pytest.mark.parametrize("cidrs, expected", [
    (None, True), ([], True),                           # unset: NodePorts on every address, loopback included
    (["127.0.0.0/8"], True), (["10.0.0.0/8", "127.0.0.1/32"], True), (["10.0.0.0/8"], False),
    (["::1/128"], False), (["not a cidr", "127.0.0.0/8"], True), (["not a cidr"], False),
])
def test_contains_loopback(cidrs, expected):
    assert K._contains_loopback(cidrs) is expected
