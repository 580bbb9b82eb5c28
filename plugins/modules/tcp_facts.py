#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: tcp_facts
short_description: Gather TCP connection-state facts from the kernel socket table
version_added: 0.1.0
description:
  - Counts every TCP socket per state and family, and explains where they go. The result shows the top
    remote endpoints in C(TIME_WAIT), the processes leaking C(CLOSE_WAIT) sockets, the busiest peers and
    local ports, the listeners with their accept queue and backlog, and how full the ephemeral port range is
    towards the busiest destination. It also returns the kernel counters for these problems.
  - Reads the table through netlink C(sock_diag), the interface C(ss) uses. The kernel filters by state,
    and the messages are parsed in place. When netlink is refused (gVisor, WSL1, seccomp, kernels without
    C(inet_diag)), the module reads C(/proc/net/tcp) and C(/proc/net/tcp6) instead. Both give the same
    facts, except the listener backlog limit, which only netlink reports.
  - A socket in C(CLOSE_WAIT) means the peer has closed and the local application has not called
    C(close) on it yet. A growing C(CLOSE_WAIT) count is an application bug (a leak), not a kernel tuning
    problem. O(processes) names the process that holds these sockets.
  - The facts are a snapshot. The kernel dumps the table in batches without a global lock, so under heavy
    churn a socket can be missed or seen twice, as with C(ss) and C(netstat).
  - Works without root. Only the owners of other users' sockets are then hidden, and the
    C(owners) entry of RV(ansible_facts.tcp.collection) says so.
author:
  - linuxnet.tcp maintainers (@linuxnet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
options:
  backend:
    description:
      - How the socket table is read.
      - V(auto) tries netlink and falls back to V(proc) when netlink is refused.
      - V(netlink) fails when netlink is refused.
    type: str
    choices: [auto, netlink, proc]
    default: auto
  states:
    description:
      - TCP states to collect in detail for the peer, port, C(TIME_WAIT), C(CLOSE_WAIT) and listener views, from
        V(ESTABLISHED), V(SYN_SENT), V(SYN_RECV), V(FIN_WAIT1), V(FIN_WAIT2), V(TIME_WAIT), V(CLOSE), V(CLOSE_WAIT),
        V(LAST_ACK), V(LISTEN) and V(CLOSING) (case does not matter, and the C(ss) spellings such as V(time-wait) are
        accepted too).
      - Not set (the default, shown as V(null)) means every state in detail.
      - The counts of every state are always returned, whatever this list contains.
      - An empty list returns counts, counters and the port range only. This is the fastest call. In the key=value
        form of C(ansible -a) write C(states=[]) or C(states=none) for it.
      - In key=value form a list is C(states=TIME_WAIT,CLOSE_WAIT) or C(states=[TIME_WAIT,CLOSE_WAIT]).
      - C(LISTEN) sockets are always read, because they tell inbound sockets from outbound ones. The
        RV(ansible_facts.tcp.listeners) list is filled only when C(LISTEN) is in this list.
    type: list
    elements: str
  top:
    description:
      - Number of entries in each top-N list (C(time_wait), C(close_wait), C(peers), C(local_ports)).
      - V(0) returns these lists empty. The counts stay.
    type: int
    default: 10
  processes:
    description:
      - Find the processes that hold C(CLOSE_WAIT) sockets and listeners, by matching socket inodes in
        C(/proc/PID/fd).
      - C(CLOSE_WAIT) sockets and listeners with a non-empty accept queue are always looked for. Idle
        listeners are looked for only in processes read anyway, or while the scan stays within 10000
        descriptors in total. On very large hosts their owner can then be V(null).
      - Processes with fewer descriptors are read first, and the scan stops as soon as every wanted socket
        has an owner. C(TIME_WAIT) and C(SYN_RECV) sockets never have an owner.
    type: bool
    default: true
  netns:
    description:
      - Path of a network namespace to inspect instead of the module's own, such as V(/run/netns/NAME) or
        V(/proc/PID/ns/net) of a container's process.
      - The module enters the namespace to read the socket table, the counters and the port range, then
        returns to its own namespace in every case. This needs C(CAP_SYS_ADMIN).
      - Owners are still found, because socket inodes in C(/proc/PID/fd) are the same from every namespace.
    type: path
  namespaces:
    description:
      - V(current) reads the module's own network namespace (or O(netns)), as always.
      - V(all) also reads every other network namespace on the host, the ones of containers and pods, and returns
        a compact document per namespace in RV(ansible_facts.tcp.namespaces), each attributed to who owns it, sorted
        by trouble. The host's own namespace stays at the top level. Needs root to enter other namespaces.
      - Namespaces are found by inode from the C(/proc/PID/ns/net) link of every process and the C(ip netns) files
        under C(/run/netns) (and C(/var/run/netns)). Each is entered for its dumps and counters only, and the module
        always returns to its own namespace.
      - Attribution reads only what the host has, no container runtime's client - the processes in the namespace
        (pid, comm, user), the cgroup of its first process parsed into a runtime and a container id for podman,
        docker, containerd and CRI-O (with the Kubernetes pod UID), systemd-nspawn and LXC, the container's name
        where the runtime keeps it on disk (podman's C(containers.json), docker's C(config.v2.json), the Kubernetes
        pod directory C(/var/log/pods/NAMESPACE_POD_UID)), and the C(ip netns) name. Anything else shows as its first
        process. Rootless podman's per-user storage and runtimes with other layouts give no name.
    type: str
    choices: [current, all]
    default: current
  namespaces_limit:
    description:
      - With O(namespaces=all), read at most this many namespaces; the others are counted in
        RV(ansible_facts.tcp.namespaces_scan) as C(left_out).
    type: int
    default: 200
  namespaces_budget:
    description:
      - With O(namespaces=all), stop reading further namespaces after this many seconds; what was not read is
        counted as C(left_out) and C(timed_out) is V(true).
    type: float
    default: 30
  summary:
    description:
      - Return a compact document for fleet-wide fact caching. Every key stays. Top lists are capped at
        5 entries (or O(top) if smaller), and each C(CLOSE_WAIT) process keeps only its top remote.
        Per-state dicts in C(peers) and C(local_ports) list only non-zero states, and C(listeners) keeps
        the fullest accept queues only.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: The module only reads; check mode returns the same facts.
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: [linux]
    support: full
notes:
  - Sockets of other network namespaces (containers, pods) are not in the host's table; use O(namespaces=all) for all
    of them, or O(netns) for one.
  - C(sockstat) in RV(ansible_facts.tcp.counters) mixes per-namespace values (C(inuse), C(tw)) and host-wide
    ones (C(orphan), C(alloc), C(mem) in pages).
  - C(CurrEstab) counts C(CLOSE_WAIT) sockets as well on recent kernels, so it can exceed
    C(ESTABLISHED) in RV(ansible_facts.tcp.states).
seealso:
  - name: sock_diag(7)
    description: The netlink interface used to read the socket table.
    link: https://man7.org/linux/man-pages/man7/sock_diag.7.html
  - name: proc_net_tcp
    description: Kernel documentation of the /proc/net/tcp fallback format.
    link: https://docs.kernel.org/networking/proc_net_tcp.html
"""

EXAMPLES = r"""
- name: Gather TCP facts
  linuxnet.tcp.tcp_facts:

- name: Show where the TIME_WAIT sockets go
  ansible.builtin.debug:
    var: ansible_facts.tcp.time_wait.by_remote

- name: Counts only, as fast as possible (no detail, no process scan)
  linuxnet.tcp.tcp_facts:
    states: []
    processes: false

# The same from a shell: ansible all -m linuxnet.tcp.tcp_facts -a "states=[] processes=false"
# (states=none says the same; states=TIME_WAIT,CLOSE_WAIT or states=[TIME_WAIT,CLOSE_WAIT] for a list)

- name: Find which process leaks CLOSE_WAIT sockets
  linuxnet.tcp.tcp_facts:
    states: [CLOSE_WAIT]
    top: 5

- name: Inspect a container's network namespace from the host
  linuxnet.tcp.tcp_facts:
    netns: /run/netns/app1

- name: Every container's and pod's namespace on a node, the most troubled first
  linuxnet.tcp.tcp_facts:
    namespaces: all
  become: true

- name: Which container holds the most TIME_WAIT sockets
  ansible.builtin.debug:
    msg: "{{ ansible_facts.tcp.namespaces | sort(attribute='time_wait.total', reverse=true) | map(attribute='label') | first }}"

- name: Small document for fact caching across a fleet
  linuxnet.tcp.tcp_facts:
    summary: true
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    tcp:
      description: TCP connection-state facts. Every key is always present, zero, empty or null when nothing applies.
      returned: always
      type: dict
      contains:
        states:
          description:
            - Socket count per state, plus C(total) and C(by_family) (C(ipv4), C(ipv6) totals).
            - Sockets whose peer is IPv4-mapped IPv6 (V(::ffff:a.b.c.d)) count as C(ipv4).
            - C(SYN_RECV) includes the kernel's request sockets (C(NEW_SYN_RECV)).
            - An orphaned C(FIN_WAIT2) socket is a timewait socket, and the kernel reports it as C(FIN_WAIT2).
          type: dict
          returned: always
          sample: {ESTABLISHED: 12, SYN_SENT: 0, SYN_RECV: 0, FIN_WAIT1: 0, FIN_WAIT2: 0, TIME_WAIT: 30000, CLOSE: 0,
                   CLOSE_WAIT: 3, LAST_ACK: 0, LISTEN: 4, CLOSING: 0, total: 30019, by_family: {ipv4: 30015, ipv6: 4}}
        time_wait:
          description:
            - C(total), the top remote endpoints C(by_remote) (C(address), C(port), C(count)) and the top local
              ports C(by_local_port) (C(port), C(count)).
            - A C(port) of V(null) in C(by_remote) groups inbound sockets, whose local port is a listening port. The
              remote ports of these sockets are the clients' ephemeral ports.
            - C(server_side) counts the sockets whose local port is a listening port (this host closed connections it
              had accepted; they hold no port), with C(total), C(by_local_port) (C(address) of the listener, C(port),
              C(count)) and C(by_client) (C(address), C(count)). C(client_side) counts every other TIME_WAIT socket
              (this host opened the connection and closed it first; each holds its local port towards its
              destination), with C(total) and C(by_remote) (C(address), C(port), C(count)). Both are V(null) when
              TIME_WAIT sockets were counted but not read (O(states) without V(TIME_WAIT)).
          type: dict
          returned: always
          sample: {total: 30000, by_remote: [{address: 10.0.0.5, port: 3306, count: 29000}], by_local_port: [{port: 41234, count: 1}],
                   server_side: {total: 1000, by_local_port: [{address: 0.0.0.0, port: 80, count: 1000}],
                                 by_client: [{address: 10.0.0.9, count: 1000}]},
                   client_side: {total: 29000, by_remote: [{address: 10.0.0.5, port: 3306, count: 29000}]}}
        close_wait:
          description:
            - C(total), C(by_process) (C(pid), C(name), C(user), C(count), C(remotes)) and C(unowned), the number of
              sockets whose owner was not found (not requested, not visible without root, or another PID namespace).
            - Each entry of C(remotes) has C(address), C(port), C(local_port) and C(count). An outbound socket keeps
              its remote C(port), and C(local_port) is V(null). An inbound socket, whose local port is a listening
              port, has C(port) V(null) (the remote port is a client's ephemeral port) and the listening port in
              C(local_port); inbound sockets are grouped by address and C(local_port).
            - C(by_program) adds the processes up per program - the same executable (C(exe), from C(/proc/PID/exe)) and
              C(name), in the same cgroup (C(cgroup), the v2 path), for the same C(user) - so that the workers of a prefork server
              (php-fpm, gunicorn, Apache, uWSGI) count as one. Each has C(name), C(exe), C(cgroup), C(user), C(count),
              C(processes), C(pids) (at most 20) and C(remotes). C(exe) is V(null) where it cannot be read (another
              user's process without root).
          type: dict
          returned: always
          sample: {total: 5, unowned: 0, by_process: [{pid: 812, name: java, user: app, count: 5,
                   remotes: [{address: 10.0.0.7, port: 8080, local_port: null, count: 3},
                             {address: 10.0.0.9, port: null, local_port: 443, count: 2}]}],
                   by_program: [{name: java, exe: /usr/lib/jvm/java-17-openjdk-amd64/bin/java, cgroup: /system.slice/app.service,
                                 user: app, count: 5, processes: 1, pids: [812],
                                 remotes: [{address: 10.0.0.7, port: 8080, local_port: null, count: 3}]}]}
        peers:
          description: Top remote addresses with C(total) and per-state counts in C(states). Listeners are not counted.
          type: list
          elements: dict
          returned: always
          sample: [{address: 10.0.0.5, total: 29010, states: {ESTABLISHED: 10, TIME_WAIT: 29000}}]
        local_ports:
          description: Top local ports with C(total) and per-state counts in C(states).
          type: list
          elements: dict
          returned: always
          sample: [{port: 443, total: 120, states: {ESTABLISHED: 118, LISTEN: 2}}]
        listeners:
          description:
            - Listening sockets, fullest accept queue first. C(queue) is the current accept queue length,
              C(backlog) its limit (V(null) with the proc backend), already capped by C(net.core.somaxconn).
              C(pid), C(name) and C(user) name the owner, or are V(null) when the owner was not found.
            - C(syn_recv) is the number of connection requests in SYN_RECV on the listener's port. C(syn_limit) is how
              many the kernel keeps before it answers with SYN cookies or drops (C(backlog) + 1), and C(syn_bound) the
              setting that sets it - V(backlog), V(somaxconn) (the backlog asked for was capped), or
              V(tcp_max_syn_backlog) when SYN cookies are off and three quarters of it is the smaller bound
              (tcp_conn_request() in net/ipv4/tcp_input.c).
            - For a listener with a queue or with requests in SYN_RECV, C(holders) lists the processes holding it (from
              the first one found, its parent, children and siblings; at most 8), the one that should accept first, with
              C(pid), C(name), C(user), C(state) (V(running), V(sleeping), V(stopped), ...), C(ppid) and C(waits) -
              V(accept) (blocked in accept() on it), V(epoll) (an epoll set watches it) or V(none) (holds it without
              waiting on it, such as a master that forked workers). C(holders_total) counts them. C(pid), C(name) and
              C(user) of the row are those of the first holder.
          type: list
          elements: dict
          returned: always
          sample: [{address: 0.0.0.0, port: 80, queue: 17, backlog: 16, pid: 902, name: nginx, user: www-data, syn_recv: 0,
                    syn_limit: 17, syn_bound: backlog, holders_total: 2,
                    holders: [{pid: 902, name: nginx, user: www-data, state: stopped, waits: epoll, ppid: 901},
                              {pid: 901, name: nginx, user: root, state: sleeping, waits: none, ppid: 1}]}]
        ephemeral_ports:
          description:
            - C(range) from C(net.ipv4.ip_local_port_range), its C(size), the C(busiest) destination (the most local
              ports held) and the C(crowded) one (the most sockets), each with C(address), C(port), C(in_use) (local
              ports held towards it), C(utilisation) (C(in_use) / C(size), from 0 to 1; a local port outside the
              range, bound explicitly, is not counted, and sockets towards one destination from one local address
              hold distinct ports), C(sockets), C(connections) (not in TIME_WAIT), C(time_wait), C(time_wait_held)
              and C(time_wait_reusable).
            - A TIME_WAIT socket holds its port unless the kernel would hand it to a new connect() (tcp_twsk_unique()
              in net/ipv4/tcp_ipv4.c) - C(tcp_timestamps) on, C(tcp_tw_reuse) 1 (or 2 with a loopback address at
              either end), and older than C(tcp_tw_reuse_delay) (Linux 6.15+; 1 s before). Its age comes from the time
              left on its timer (sock_diag C(idiag_expires), or C(tm->when) in /proc). C(reuse) gives the settings read
              in the namespace (C(tcp_tw_reuse), C(tcp_tw_reuse_delay_ms), C(tcp_timestamps)) and C(judged), false
              when they could not be read (then every TIME_WAIT socket counts as holding its port).
          type: dict
          returned: always
          sample: {range: [40000, 40999], size: 1000,
                   reuse: {tcp_tw_reuse: 1, tcp_tw_reuse_delay_ms: 1000, tcp_timestamps: 1, judged: true},
                   busiest: {address: 10.0.0.5, port: 3306, in_use: 651, utilisation: 0.651, sockets: 1000, connections: 1,
                             time_wait: 999, time_wait_held: 650, time_wait_reusable: 349},
                   crowded: {address: 10.0.0.5, port: 3306, in_use: 651, utilisation: 0.651, sockets: 1000, connections: 1,
                             time_wait: 999, time_wait_held: 650, time_wait_reusable: 349}}
        rates:
          description:
            - Per-second rates of C(TWRecycled), C(ActiveOpens), C(PassiveOpens), C(AttemptFails), C(SyncookiesSent),
              C(TCPReqQFullDrop), C(TCPReqQFullDoCookies), C(ListenOverflows) and C(ListenDrops) over C(window_s)
              seconds (at least 1), measured only when they tell what is happening now - TIME_WAIT sockets and
              connections take half the ephemeral range towards one destination, or a listener has requests in
              SYN_RECV (the module then waits up to a second). V(null) otherwise, and with O(summary).
          type: dict
          returned: always
          sample: {window_s: 1.001, TWRecycled: 650.2, ActiveOpens: 650.2, PassiveOpens: 0.0, AttemptFails: 0.0,
                   SyncookiesSent: 0.0, TCPReqQFullDrop: 0.0, TCPReqQFullDoCookies: 0.0, ListenOverflows: 0.0,
                   ListenDrops: 0.0}
        counters:
          description:
            - Kernel counters from C(/proc/net/netstat) (C(TcpExt)) and C(/proc/net/snmp) (C(Tcp)), V(null) when the
              kernel lacks one, and C(sockstat) (C(inuse) for IPv4 plus IPv6, C(orphan), C(tw), C(alloc), C(mem) in pages).
          type: dict
          returned: always
          sample: {ListenOverflows: 0, ListenDrops: 0, TCPTimeWaitOverflow: 0, TW: 120034, CurrEstab: 15,
                   sockstat: {inuse: 19, orphan: 0, tw: 30000, alloc: 25, mem: 3}}
        conntrack:
          description: C(count), C(max) and C(utilisation) of nf_conntrack, or V(null) values when it is not loaded.
          type: dict
          returned: always
          sample: {count: 1200, max: 262144, utilisation: 0.0046}
        namespaces:
          description:
            - With O(namespaces=all), one document per other network namespace, the most troubled first (ephemeral-port
              use, full accept queues, CLOSE_WAIT, TIME_WAIT; C(trouble) is that sort key). Empty otherwise.
            - Each has C(inode), C(path) (how it was entered), C(netns_name), C(owner) (C(processes) with pid, comm and
              user, C(process_count), C(runtime), C(container_id), C(container_name), C(pod_uid), C(pod_name),
              C(pod_namespace), C(cgroup)), a C(label) for people, and the namespace's own C(states), C(time_wait),
              C(close_wait), C(listeners) (those with a queue), C(ephemeral_ports), C(counters) (TcpExt, Tcp and
              C(sockstat) of that namespace, as at the top level) and C(sysctl.runtime) (its C(tcp_tw_reuse), C(tcp_timestamps), port range, ...).
              Top lists hold 3 entries.
          type: list
          elements: dict
          returned: always
          sample: [{"inode": 4026532538, "path": "/run/netns/netns-28476392", "netns_name": "netns-28476392",
                    "label": "podman shop-api", "owner": {"runtime": "podman", "container_id": "86bef0b4fed8...",
                    "container_name": "shop-api", "pod_uid": null, "processes": [{"pid": 29723, "comm": "java", "user": "root"}]},
                    "states": {"TIME_WAIT": 14210, "CLOSE_WAIT": 0, "total": 14233},
                    "time_wait": {"total": 14210, "by_remote": [{"address": "10.0.3.7", "port": 5432, "count": 14190}]}}]
        namespaces_scan:
          description:
            - With O(namespaces=all), what the scan saw - C(found) namespaces, C(reported), C(left_out) (over
              O(namespaces_limit) or past O(namespaces_budget), with C(timed_out)), C(vanished) (gone during the scan),
              C(stale) (C(ip netns) names whose namespace is gone - an empty file under C(/run/netns), skipped; C(ip
              netns delete NAME) removes it), C(not_permitted) (namespaces or processes this user may not read or enter)
              and C(not_permitted_paths) (the first 10 of them, a C(/proc/PID/ns/net) link or a namespace file, so that
              a root run that counts one says which), C(processes) looked at, C(privileged), C(visibility) and
              C(duration_ms). V(null) otherwise.
          type: dict
          returned: always
          sample: {found: 51, reported: 51, left_out: 0, vanished: 0, stale: 0, not_permitted: 1,
                   not_permitted_paths: [/proc/4711/ns/net], timed_out: false, processes: 412, privileged: true,
                   visibility: every namespace, duration_ms: 1830.4, limit: 200}
        collection:
          description:
            - How the facts were collected. C(backend) (V(netlink) or V(proc)), C(fallback_reason) (why
              netlink was not used, or V(null)), C(duration_ms), C(kernel), C(initial_netns), C(netns),
              C(privileged), C(summary).
            - C(owners) gives the C(visibility) of the process scan, whether it found every wanted owner
              (C(complete)), and its cost.
          type: dict
          returned: always
          sample: {backend: netlink, fallback_reason: null, duration_ms: 41.2, kernel: 6.1.0-18-amd64, initial_netns: true,
                   netns: null, privileged: true, summary: false,
                   owners: {visibility: all processes, complete: true, processes_scanned: 12, processes_denied: 0, fds_read: 310}}
"""

from ansible.module_utils.basic import AnsibleModule

# First of the collection's imports: on an unsupported Python (2.7) it ends the module with a clear failure.
from ansible_collections.linuxnet.tcp.plugins.module_utils import _target_python  # noqa: F401  pylint: disable=unused-import
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.counters import KstatsError
from ansible_collections.linuxnet.tcp.plugins.module_utils._host.netns import NetnsError
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.sockets import STATE_NUMBERS, CollectError
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.all_namespaces import gather_all
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.collect import gather

# The ss(8) names of the states that differ from the kernel's (after upper-casing and '-' to '_').
SS_NAMES = {"FIN_WAIT_1": "FIN_WAIT1", "FIN_WAIT_2": "FIN_WAIT2", "SYN_RECEIVED": "SYN_RECV", "LISTENING": "LISTEN"}


def parse_states(value):
    """The states option as users write it, or the names that are not states.

    Ansible splits a key=value string at commas only, so ``states=[TIME_WAIT,CLOSE_WAIT]`` arrives as
    ``["[TIME_WAIT", "CLOSE_WAIT]"]`` and ``states=[]`` as ``["[]"]``: brackets, quotes and blanks around the names
    are dropped. Nothing left, or the single word ``none``, is the empty list (counts only).
    Returns (states or None, unknown names).
    """
    if value is None:
        return None, []
    names = []
    for item in value:
        for word in str(item).translate({ord(c): " " for c in "[]\"',"}).split():
            word = word.upper().replace("-", "_")
            names.append(SS_NAMES.get(word, word))
    if names == ["NONE"]:
        names = []
    return names, [name for name in names if name not in STATE_NUMBERS]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backend=dict(type="str", default="auto", choices=["auto", "netlink", "proc"]),
            states=dict(type="list", elements="str"),
            top=dict(type="int", default=10),
            processes=dict(type="bool", default=True),
            netns=dict(type="path"),
            summary=dict(type="bool", default=False),
            namespaces=dict(type="str", default="current", choices=["current", "all"]),
            namespaces_limit=dict(type="int", default=200),
            namespaces_budget=dict(type="float", default=30.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    states, unknown = parse_states(params["states"])
    if unknown:
        module.fail_json(msg="states: %s %s not a TCP state; states are %s; write states=[] or states=none for counts only"
                             % (", ".join(unknown), "is" if len(unknown) == 1 else "are",
                                ", ".join(sorted(STATE_NUMBERS, key=STATE_NUMBERS.get))))
    if params["top"] < 0:
        module.fail_json(msg="top must be 0 or a positive integer, got %d" % params["top"])
    if params["netns"] and params["namespaces"] == "all":
        module.fail_json(msg="netns and namespaces=all exclude each other: namespaces=all reads every namespace already")
    if params["namespaces_limit"] < 1 or params["namespaces_budget"] <= 0:
        module.fail_json(msg="namespaces_limit must be 1 or more and namespaces_budget more than 0 seconds, got %s and %s"
                             % (params["namespaces_limit"], params["namespaces_budget"]))
    try:
        facts = gather(backend=params["backend"], states=states, top=params["top"],
                       processes=params["processes"], netns=params["netns"], summary=params["summary"])
        facts["namespaces"], facts["namespaces_scan"] = [], None
        if params["namespaces"] == "all":
            facts["namespaces"], facts["namespaces_scan"] = gather_all(
                backend=params["backend"], processes=params["processes"], limit=params["namespaces_limit"],
                budget=params["namespaces_budget"])
    except (CollectError, KstatsError, NetnsError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ansible_facts={"tcp": facts})


if __name__ == "__main__":
    main()
