# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""systemd-networkd's .network matching (plugins/module_utils/_agents/networkd.py); recorded trees: test_writers.py."""
import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import networkd as N


@pytest.mark.parametrize("patterns, iface, matches", [
    ("eth0", "eth0", True), ("eth*", "eth0.100", True), ("en* eth*", "eth1", True), ("wl*", "eth0", False),
    ("!eth0", "eth1", True), ("!eth*", "eth0", False), ("!eth0 wg*", "wg0", False), ("", "eth0", False),
])
def test_name_matches(patterns, iface, matches):
    assert N._name_matches(patterns, iface) is matches


def test_merge_ini_records_each_key_origin():
    out, origins = {}, {}
    N._merge_ini(out, {"": {"x": "1"}, "Network": {"A": "1", "B": "1"}}, "/usr/lib/a.conf", origins)
    N._merge_ini(out, {"Network": {"B": "2"}}, "/etc/b.conf", origins)
    assert out == {"Network": {"A": "1", "B": "2"}}                 # keys before a section do not count
    assert origins == {"Network": {"A": "/usr/lib/a.conf", "B": "/etc/b.conf"}}
