# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
name: tcp_fleet_summary
short_description: Aggregate per-host TCP facts and findings into one fleet view
version_added: 0.1.0
author:
  - linuxnet.tcp maintainers
description:
  - Takes a mapping of host name to that host's data and returns fleet totals per TCP state, the hosts with
    the most C(TIME_WAIT) and C(CLOSE_WAIT) sockets (with the top remote and the leaking process), the
    findings grouped by severity, and one row per host, worst host first.
  - A host's data is either a plain document C({tcp, sysctl, findings}) or a C(hostvars)
    entry, whose C(ansible_facts.tcp), C(ansible_facts.sysctl) and C(ansible_facts.tcp_findings) are read.
  - Hosts without TCP facts (unreachable, failed) are listed in C(hosts_without_facts) and left out of the
    totals.
  - Pure Python, no extra package needed.
positional: hosts, top, details
options:
  _input:
    description: Mapping of host name to its data, for example C(hostvars).
    type: dict
    required: true
  hosts:
    description: Host names to include, in this order. Defaults to every key of the input, sorted.
    type: list
    elements: str
  top:
    description: Number of entries in the C(time_wait_leaders) and C(close_wait_leaders) lists.
    type: int
    default: 10
  details:
    description: Add C(details), each host's C(findings), C(tcp) and C(sysctl) facts, for a complete machine-readable report.
    type: bool
    default: false
seealso:
  - plugin: linuxnet.tcp.tcp_diagnose
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Summarise the play's hosts on the controller
  ansible.builtin.set_fact:
    fleet: "{{ hostvars | linuxnet.tcp.tcp_fleet_summary(ansible_play_hosts) }}"
  run_once: true

- name: Show the hosts with the most TIME_WAIT sockets
  ansible.builtin.debug:
    msg: "{{ fleet.time_wait_leaders | map(attribute='host') | list }}"
  run_once: true

- name: Summarise documents saved earlier (one JSON file per host)
  ansible.builtin.debug:
    msg: "{{ {'web1': lookup('file', 'web1.json') | from_json, 'db1': lookup('file', 'db1.json') | from_json}
             | linuxnet.tcp.tcp_fleet_summary(top=5) }}"
"""

RETURN = r"""
_value:
  description: The fleet view.
  type: dict
  contains:
    hosts:
      description: Number of hosts with TCP facts.
      type: int
      sample: 2
    hosts_without_facts:
      description: Requested hosts that had no TCP facts.
      type: list
      elements: str
      sample: []
    states:
      description: Sockets per TCP state over all hosts, and C(total).
      type: dict
      sample: {ESTABLISHED: 30, TIME_WAIT: 9120, CLOSE_WAIT: 40, LISTEN: 6, total: 9210}
    findings:
      description: Number of findings per severity over all hosts.
      type: dict
      sample: {critical: 1, warning: 3, info: 2}
    findings_by_severity:
      description: Every finding, with its C(host) added, grouped under C(critical), C(warning) and C(info).
      type: dict
      sample: {critical: [], warning: [{host: web1, id: close_wait_leak, severity: warning, message: "...", remedy: "..."}], info: []}
    time_wait_leaders:
      description: Hosts with C(TIME_WAIT) sockets, most first, with C(total) and C(top_remote) (C(address), C(port), C(count)).
      type: list
      elements: dict
      sample: [{host: web1, total: 9000, top_remote: {address: 127.0.0.1, port: 3306, count: 9000}}]
    close_wait_leaders:
      description:
        - Hosts with C(CLOSE_WAIT) sockets, most first, with C(total), C(unowned), C(top_process)
          (C(pid), C(name), C(user), C(count)) and C(top_remote) of that process.
      type: list
      elements: dict
      sample: [{host: web1, total: 40, unowned: 0, top_process: {pid: 77, name: leaky-app, user: root, count: 40},
                top_remote: {address: 127.0.0.1, port: 9200, count: 40}}]
    per_host:
      description:
        - One row per host, worst first, with C(states), C(total), C(findings) (count per severity), C(worst)
          (most severe finding or V(null)), C(kernel) and C(backend).
      type: list
      elements: dict
      sample: [{host: web1, total: 9210, worst: warning, findings: {critical: 0, warning: 3, info: 1},
                kernel: 6.1.0-18-amd64, backend: netlink, states: {ESTABLISHED: 30, TIME_WAIT: 9120}}]
    details:
      description: Per host, its C(findings), C(tcp) facts and C(sysctl) facts.
      returned: when O(details=true)
      type: dict
      sample: {web1: {findings: [], tcp: {states: {total: 3}}, sysctl: {values: {}}}}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.tcp.plugins.plugin_utils._rules import RuleError, fleet_summary


def tcp_fleet_summary(hosts_data, hosts=None, top=10, details=False):
    """Fleet view of ``hosts_data`` (host name -> facts and findings)."""
    try:
        return fleet_summary(hosts_data, hosts, int(top), bool(details))
    except RuleError as exc:
        raise AnsibleFilterError(f"linuxnet.tcp.tcp_fleet_summary: {exc}") from None


class FilterModule:
    """The linuxnet.tcp fleet aggregation filter."""

    def filters(self):
        return {"tcp_fleet_summary": tcp_fleet_summary}
