# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Other writers of our sysctl keys: known agents found from the target alone (PRIVATE to the collection).

A key that another agent rewrites does not stay at the value a profile set: kube-proxy writes the conntrack
size and timeouts when it starts, dockerd turns IPv4 forwarding back on, TuneD re-applies its profile,
bpftune retunes buffers continuously, systemd-networkd and NetworkManager write per-interface keys when a
link comes up. The package finds those agents from what the target shows (process table, command lines,
their own configuration files) and says, per key, what the agent writes and where to change it instead.
This file is its public face; the rest of the package:

- one file per agent (kube_proxy, docker, containerd, tuned, bpftune, networkd, networkmanager), each with a
  ``detect(root, procs)`` that returns its records and cites the agent's source for what it writes;
- records.py: the record of an agent and of each key it writes (``op``, ``yields``);
- target.py: finding an agent's process or enabled unit, reading files as its process sees them;
- parsers.py: the configuration formats (pflag command lines, Go durations, INI, a YAML subset).

    detect(root="/") -> [{"agent": str, "pid": int or None, "evidence": str,
                          "keys": {key: {"value": str or None, "op": str, "yields": str or None,
                                         "source": str, "advice": str}}, "advice": str}]
    in_this_netns(agents, root="/") -> the agents that write the caller's network namespace's keys
    writers_for(keys, agents) -> {key: [{"agent", "value", "op", "yields", "source", "advice"}]}
    conflicts(write, requested, persisted=True) -> bool: would the agent rewrite ``requested``?

Keys use the sysctl(8) spelling of _sysctl.keys.canonical_key (``net.ipv4.conf.eth0/100.forwarding``
for components with dots). ``value`` is None when the agent decides it at runtime (bpftune) or when
its configuration cannot be read. ``op`` says how the agent writes it: SETS ("=", exactly ``value``), RAISES
(">=", only when the key is smaller: kube-proxy's conntrack buckets, TuneD's ">N") or LOWERS ("<=", TuneD's "<N");
``value`` keeps the agent's own spelling (">2048"). ``yields`` names when the agent gives way: YIELDS_TO_SYSCTL_D
(TuneD with reapply_sysctl=1 re-applies /etc/sysctl.d and /run/sysctl.d after its profile) or YIELDS_TO_WRITES
(bpftune stops tuning a key once someone else writes it); None otherwise. :func:`conflicts` is the one place that
decides from these whether a wanted value would be fought. kube-proxy in IPVS mode also gets ``ipvs`` ({tcp, tcpfin,
udp}: the ``ipvsadm --set`` timeouts it configures, None for "left as is" or unreadable); only this record has them.

Every reader takes ``root`` (default "/") so the tests run it over recorded trees. It only reads (regular files
only, so a FIFO in a container's tree cannot block it), never raises on an unreadable or malformed file (the
key's ``source`` says so), and uses the standard library. Where an agent's behaviour changed between releases,
``source`` names the condition instead of guessing.
"""

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import (bpftune, containerd, docker, kube_proxy, networkd,
                                                                           networkmanager, tuned)
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.parsers import parse_int
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.records import (LOWERS, RAISES, SETS, YIELDS_TO_SYSCTL_D,
                                                                                   YIELDS_TO_WRITES)
from ansible_collections.linuxnet.tcp.plugins.module_utils._host import namespaces
from ansible_collections.linuxnet.tcp.plugins.module_utils._host.processes import commands
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError, canonical_key, values_equal

# net.ipv4.ip_forward and net.ipv4.conf.all.forwarding are one kernel variable (net/ipv4/devinet.c: the
# ip_forward entry points at ipv4_devconf's FORWARDING slot), so a writer of one is a writer of the other.
ALIASES = {
    "net.ipv4.ip_forward": ("net.ipv4.conf.all.forwarding",),
    "net.ipv4.conf.all.forwarding": ("net.ipv4.ip_forward",),
}

# The agents, in the order detect() reports them. A new agent: a file with detect(root, procs), added here.
DETECTORS = (kube_proxy.detect, docker.detect, containerd.detect, tuned.detect, bpftune.detect, networkd.detect,
             networkmanager.detect)


def detect(root="/"):
    """The known agents present on the target under ``root``, in a fixed order (see the module docstring)."""
    procs = commands(root)
    agents = []
    for detector in DETECTORS:
        agents.extend(detector(root, procs))
    return agents


def _netns_inode(root, pid):
    try:
        return namespaces.ns_inode(root, "/proc/%s/ns/net" % pid)
    except OSError:
        return None  # exited, not ours to see, or a recorded tree without ns links: in_this_netns() keeps the agent


def in_this_netns(agents, root="/"):
    """The agents that write the keys of the caller's network namespace.

    sysctl keys under net.* belong to a network namespace, and an agent writes those of its own: kube-proxy on a
    node (hostNetwork) does not touch a pod's keys. An agent that only has an enabled unit (pid None) runs in the
    initial namespace. Where a namespace cannot be told (a recorded tree without ns links), the agent is kept.
    """
    own = _netns_inode(root, "self")
    if own is None:
        return list(agents)
    init = _netns_inode(root, 1)
    out = []
    for agent in agents:
        theirs = _netns_inode(root, agent["pid"]) if agent.get("pid") else init
        if theirs is None or theirs == own:
            out.append(agent)
    return out


def _canonical(key):
    try:
        return canonical_key(key)
    except SysctlError:
        return None  # not a sysctl name: records.set_key() never stores one, so no agent writes it


def writers_for(keys, agents):
    """Who else writes each of ``keys``: {key: [{agent, value, op, yields, source, advice}]} for keys with a writer only.

    ``op`` and ``yields`` are those of the agent's key (see the module docstring); conflicts() takes a row as it is.
    ``keys`` is any iterable of sysctl names (a dict's keys work); the result is keyed by the names as given.
    A key also matches its kernel alias (net.ipv4.ip_forward and net.ipv4.conf.all.forwarding).
    """
    out = {}
    for key in keys:
        canon = _canonical(key)
        if canon is None:
            continue
        rows = []
        for agent in agents or ():
            owned = agent.get("keys") or {}
            for candidate in (canon,) + ALIASES.get(canon, ()):
                entry = owned.get(candidate)
                if entry is None:
                    continue
                source = entry.get("source") or ""
                if candidate != canon:
                    source += " (it writes %s, the same kernel setting)" % candidate
                rows.append({"agent": agent.get("agent"), "value": entry.get("value"), "op": entry.get("op") or SETS,
                             "yields": entry.get("yields"), "source": source,
                             "advice": entry.get("advice") or agent.get("advice") or ""})
                break
        if rows:
            out[key] = rows
    return out


def conflicts(write, requested, persisted=True):
    """Whether the agent of ``write`` (a key of detect() or a row of writers_for()) would rewrite ``requested``.

    ``persisted`` says the requested value is also in a sysctl.d file that TuneD re-applies (/etc/sysctl.d or
    /run/sysctl.d, where sysctl_profile's drop-in goes by default). An agent that yields (TuneD with
    reapply_sysctl=1 for a persisted value, bpftune) does not fight. A value the agent decides at runtime or that
    could not be read fights. Otherwise SETS fights any other value; RAISES (the agent writes its value only when
    the key is smaller) fights a smaller integer, LOWERS a larger one; what does not compare as one integer fights
    unless equal.
    """
    yields = write.get("yields")
    if yields == YIELDS_TO_WRITES or (yields == YIELDS_TO_SYSCTL_D and persisted):
        return False
    value = write.get("value")
    if value is None:
        return True
    op = write.get("op") or SETS
    bound = value[1:] if op in (RAISES, LOWERS) and value[:1] in ("<", ">") else value
    if values_equal(bound, str(requested)):
        return False
    if op == SETS:
        return True
    limit, want = parse_int(bound), parse_int(requested)
    if limit is None or want is None:
        return True
    return want < limit if op == RAISES else want > limit
