# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bpftune's options (plugins/module_utils/_agents/bpftune.py); its keys on recorded trees are in test_writers.py."""
import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import bpftune as B


@pytest.mark.parametrize("argv, allowed, libdirs", [
    (["bpftune"], [], []),
    (["bpftune", "-s", "-a", "tcp_buffer_tuner.so", "--allow=/usr/lib64/bpftune/ip_frag_tuner.so"],
     ["tcp_buffer_tuner", "ip_frag_tuner"], []),
    (["bpftune", "-l", "/opt/lib", "--libdir=/srv/lib"], [], ["/opt/lib/bpftune", "/srv/lib/bpftune"]),
    (["bpftune", "-a"], [], []),                                     # an option without its value at the end
])
def test_options(argv, allowed, libdirs):
    assert B._options(argv) == (allowed, libdirs)


def test_every_tuner_key_is_a_sysctl_name():
    assert all(key.startswith("net.") and " " not in key for keys in B.BPFTUNE_TUNERS.values() for key in keys)
