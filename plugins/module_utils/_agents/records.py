# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The record a detector returns for one agent, and how it writes each key (PRIVATE to the collection).

    {"agent": str, "pid": int or None, "evidence": str, "advice": str,
     "keys": {key: {"value": str or None, "op": SETS | RAISES | LOWERS, "yields": None | YIELDS_TO_SYSCTL_D |
                    YIELDS_TO_WRITES, "source": str, "advice": str}}}

Every detector (one file per agent in this package) builds its record with :func:`new_agent` and
:func:`set_key`, so the spelling of keys and the shape of an entry are decided here once; writers.py reads the
records (writers_for(), conflicts()).
"""

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError, canonical_key
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import name as key_name

# How an agent writes a key (``op``): SETS exactly ``value``; RAISES only when the key is smaller (kube-proxy's
# conntrack buckets, TuneD's ">N"); LOWERS only when it is larger (TuneD's "<N"). ``value`` keeps the agent's own
# spelling (">2048").
SETS, RAISES, LOWERS = "=", ">=", "<="
# When an agent gives way (``yields``): TuneD with reapply_sysctl=1 re-applies /etc/sysctl.d and /run/sysctl.d
# after its profile; bpftune stops tuning a key once someone else writes it.
YIELDS_TO_SYSCTL_D = "sysctl.d"
YIELDS_TO_WRITES = "writes"


def new_agent(name, pid, evidence, advice):
    """An agent's record without keys; ``advice`` is the default advice of its keys."""
    return {"agent": name, "pid": pid, "evidence": evidence, "keys": {}, "advice": advice}


def set_key(agent, key, value, source, advice=None, op=SETS, yields=None):
    """Record that ``agent`` writes ``key`` (any sysctl spelling; stored as _sysctl.keys.canonical_key spells it).

    ``value`` None means the agent decides it at runtime or its configuration could not be read (``source`` says
    which). ``advice`` defaults to the agent's and always ends with a full stop.
    """
    try:
        key = canonical_key(key)
    except SysctlError:
        # A name that is not a sysctl key (a typo in a TuneD profile): the kernel has no such key to write, and
        # writers_for() drops such names from its question the same way, so it could never match.
        return
    advice = advice or agent["advice"]
    agent["keys"][key] = {"value": None if value is None else str(value), "op": op, "yields": yields, "source": source,
                          "advice": advice if advice.endswith(".") else advice + "."}


def iface_key(family, iface, name):
    """``net.<family>.conf.<iface>.<name>``, a dot in the interface name written '/' (sysctl(8) spelling)."""
    return key_name(["net", family, "conf", iface, name])
