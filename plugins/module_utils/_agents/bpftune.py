# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bpftune: the keys its tuners retune while it runs (PRIVATE to the collection).

oracle/bpftune: each tuner declares its sysctls in a bpftunable_desc table and rewrites them while it
runs (src/tcp_buffer_tuner.c: tcp_wmem, tcp_rmem, tcp_mem; net_buffer_tuner.c: netdev_max_backlog,
flow_limit_cpu_bitmap, netdev_budget, netdev_budget_usecs; ip_frag_tuner.c: ipfrag_high_thresh,
ip6frag_high_thresh; udp_buffer_tuner.c: udp_mem, rmem_max, rmem_default; route_table_tuner.c:
net.ipv6.route.max_size; tcp_conn_tuner.c: tcp_allowed_congestion_control; gaming_tuner.c, newer
releases: core rmem/wmem, netdev budget and backlog, udp_mem, busy_read/busy_poll, udp_early_demux).
No tuner touches somaxconn or conntrack. docs/bpftune-sysctl.rst: the sysctl tuner disables the tuner
that owns a key once an administrator sets that key, so its keys yield to writes (YIELDS_TO_WRITES).
Tuners are shared objects in bpftune's libdir; -a/--allow restricts the set.
"""

import os

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import target
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.records import YIELDS_TO_WRITES, new_agent, set_key

BPFTUNE_TUNERS = {
    "tcp_buffer_tuner": ("net.ipv4.tcp_wmem", "net.ipv4.tcp_rmem", "net.ipv4.tcp_mem"),
    "net_buffer_tuner": ("net.core.netdev_max_backlog", "net.core.flow_limit_cpu_bitmap", "net.core.netdev_budget",
                         "net.core.netdev_budget_usecs"),
    "ip_frag_tuner": ("net.ipv4.ipfrag_high_thresh", "net.ipv6.ip6frag_high_thresh"),
    "udp_buffer_tuner": ("net.ipv4.udp_mem", "net.core.rmem_max", "net.core.rmem_default"),
    "route_table_tuner": ("net.ipv6.route.max_size",),
    "tcp_conn_tuner": ("net.ipv4.tcp_allowed_congestion_control",),
    "gaming_tuner": ("net.core.rmem_default", "net.core.rmem_max", "net.core.wmem_default", "net.core.wmem_max",
                     "net.core.netdev_max_backlog", "net.core.netdev_budget", "net.core.netdev_budget_usecs",
                     "net.ipv4.udp_mem", "net.core.busy_read", "net.core.busy_poll", "net.ipv4.udp_early_demux"),
}
BPFTUNE_LIBDIRS = ("/usr/lib64/bpftune", "/usr/lib/bpftune", "/usr/local/lib64/bpftune", "/usr/local/lib/bpftune",
                   "/usr/lib/x86_64-linux-gnu/bpftune", "/usr/lib/aarch64-linux-gnu/bpftune")


def _options(argv):
    """Tuners allowed with -a/--allow (none: all) and tuner directories from -l/--libdir (LIBDIR/bpftune)."""
    allowed, libdirs, index = [], [], 1
    while index < len(argv):
        name, sep, value = argv[index].partition("=")
        index += 1
        if name not in ("-a", "--allow", "-l", "--libdir"):
            continue
        if not sep:
            if index >= len(argv):
                break
            value, index = argv[index], index + 1
        if name in ("-a", "--allow"):
            allowed.append(os.path.basename(value).split(".")[0])
        else:
            libdirs.append(os.path.join(value, "bpftune"))
    return allowed, libdirs


def detect(root, procs):
    """One record per running bpftune, with the keys of the tuners it loads (values decided at runtime)."""
    agents = []
    for proc in target.find(procs, "bpftune"):
        allowed, libdirs = _options(proc["argv"])
        libdirs += list(BPFTUNE_LIBDIRS)
        installed = sorted({n.split(".")[0] for d in libdirs for n in target.listdir(root, d) if n.endswith(".so")})
        tuners = [t for t in BPFTUNE_TUNERS if (not installed or t in installed) and (not allowed or t in allowed)]
        basis = ("allowed with -a" if allowed else "installed in its libdir" if installed
                 else "libdir not found: every known tuner assumed")
        agent = new_agent("bpftune", proc["pid"], target.cmdline(proc),
                          "bpftune retunes these while it runs; its sysctl tuner disables the owning tuner once you set "
                          "the key yourself (bpftune-sysctl(8)); to keep it away for good, start bpftune with -a for the "
                          "tuners you want, or stop it.")
        for tuner in tuners:
            for key in BPFTUNE_TUNERS[tuner]:
                set_key(agent, key, None, "bpftune %s adjusts it at runtime (tuners %s)" % (tuner, basis), yields=YIELDS_TO_WRITES)
        agents.append(agent)
    return agents
