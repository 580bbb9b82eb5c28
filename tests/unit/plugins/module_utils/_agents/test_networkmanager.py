# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""NetworkManager's keyfile profiles (plugins/module_utils/_agents/networkmanager.py); recorded trees: test_writers.py."""
import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import networkmanager as M

RUNNING = [{"pid": 688, "comm": "NetworkManager", "argv": ["/usr/sbin/NetworkManager", "--no-daemon"]}]


@pytest.mark.parametrize("profile, keys", [
    ("[connection]\nid=Hotspot\n[ipv4]\nmethod=shared\n", {"net.ipv4.ip_forward": "1"}),
    ("[connection]\nid=W\ninterface-name=wlan0\n[ipv6]\nip6-privacy=2\n", {"net.ipv6.conf.wlan0.use_tempaddr": "2"}),
    ("[connection]\nid=W\ninterface-name=wlan0\n[ipv6]\nip6-privacy=-1\n", {}),      # -1: left to the global setting
    ("[connection]\nid=W\n[ipv6]\nip6-privacy=2\n", {}),                             # no interface: no key to name
    ("[ipv4]\nmethod=auto\n", {}),
])
def test_profiles(tmp_path, profile, keys):
    path = tmp_path / "etc/NetworkManager/system-connections/p.nmconnection"
    path.parent.mkdir(parents=True)
    path.write_text(profile)
    agents = M.detect(str(tmp_path), RUNNING)
    assert [{key: entry["value"] for key, entry in agent["keys"].items()} for agent in agents] == [keys]


def test_not_running_and_not_enabled(tmp_path):
    assert M.detect(str(tmp_path), []) == []
