# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""containerd's CNI networks (plugins/module_utils/_agents/containerd.py); recorded trees are in test_writers.py."""
import json

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import containerd as C
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.records import new_agent


def _cni(tmp_path, conf):
    path = tmp_path / "etc/cni/net.d/10-net.conflist"
    path.parent.mkdir(parents=True)
    path.write_text(conf if isinstance(conf, str) else json.dumps(conf))
    agent = new_agent("containerd", 1, "containerd", "A")
    C._cni_keys(str(tmp_path), agent, "/etc/cni/net.d/10-net.conflist")
    return {key: entry["value"] for key, entry in agent["keys"].items()}


@pytest.mark.parametrize("conf, keys", [
    ({"name": "n", "plugins": [{"type": "bridge", "isGateway": True, "ipam": {"subnet": "10.88.0.0/16"}}]},
     {"net.ipv4.ip_forward": "1"}),
    ({"name": "n", "plugins": [{"type": "bridge", "isGateway": True,
                                "ipam": {"ranges": [[{"subnet": "10.88.0.0/16"}], [{"subnet": "fd00::/64"}]]}}]},
     {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}),
    ({"name": "n", "type": "ptp"}, {"net.ipv4.ip_forward": "1"}),           # a single plugin, no "plugins" list
    ({"name": "n", "plugins": [{"type": "bridge", "isGateway": False}]}, {}),
    ({"name": "n", "plugins": [{"type": "macvlan"}, "not a plugin"]}, {}),
    ("{", {}), ("[1, 2]", {}),                                               # the CNI library refuses these: no plugin runs
])
def test_cni_keys(tmp_path, conf, keys):
    assert _cni(tmp_path, conf) == keys
