# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The record of an agent and of each key it writes (plugins/module_utils/_agents/records.py)."""
import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import records as R


@pytest.mark.parametrize("key, stored", [
    ("net.core.somaxconn", "net.core.somaxconn"),
    ("net/core/somaxconn", "net.core.somaxconn"),                   # any sysctl spelling, stored as sysctl(8) spells it
    ("net.ipv4.conf.eth0/100.forwarding", "net.ipv4.conf.eth0/100.forwarding"),
    ("not a key!", None),                                           # refused: nothing recorded
])
def test_set_key_spells_keys_once(key, stored):
    agent = R.new_agent("x", 1, "x --flag", "Change it in x")
    R.set_key(agent, key, 5, "x sets it")
    assert list(agent["keys"]) == ([stored] if stored else [])


@pytest.mark.parametrize("value, advice, expected", [
    (5, None, {"value": "5", "op": "=", "yields": None, "source": "x sets it", "advice": "Change it in x."}),
    (None, "Stop x", {"value": None, "op": "=", "yields": None, "source": "x sets it", "advice": "Stop x."}),
    (">2048", "Stop x.", {"value": ">2048", "op": "=", "yields": None, "source": "x sets it", "advice": "Stop x."}),
])
def test_set_key_entry(value, advice, expected):
    agent = R.new_agent("x", None, "x.service enabled", "Change it in x")
    R.set_key(agent, "net.core.somaxconn", value, "x sets it", advice)
    assert agent == {"agent": "x", "pid": None, "evidence": "x.service enabled", "advice": "Change it in x",
                     "keys": {"net.core.somaxconn": expected}}


def test_set_key_op_and_yields():
    agent = R.new_agent("x", 1, "x", "A")
    R.set_key(agent, "net.core.somaxconn", ">2048", "s", op=R.RAISES, yields=R.YIELDS_TO_SYSCTL_D)
    assert (agent["keys"]["net.core.somaxconn"]["op"], agent["keys"]["net.core.somaxconn"]["yields"]) == (">=", "sysctl.d")


@pytest.mark.parametrize("family, iface, name, key", [
    ("ipv4", "eth0", "forwarding", "net.ipv4.conf.eth0.forwarding"),
    ("ipv6", "eth0.100", "use_tempaddr", "net.ipv6.conf.eth0/100.use_tempaddr"),   # a dot in a name is written '/'
])
def test_iface_key(family, iface, name, key):
    assert R.iface_key(family, iface, name) == key
