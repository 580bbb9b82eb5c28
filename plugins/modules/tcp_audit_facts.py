#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file only documents the action plugin of the same name (plugins/action/tcp_audit_facts.py).

DOCUMENTATION = r"""
module: tcp_audit_facts
short_description: Gather TCP and sysctl facts and diagnose them, in one task per host
version_added: 0.1.0
description:
  - The per-host step of the P(linuxnet.tcp.audit#role) role. With O(gather=true) it runs
    M(linuxnet.tcp.tcp_facts) and M(linuxnet.tcp.sysctl_facts) on the host, back to back on the same connection and
    remote temporary directory, then evaluates the diagnosis rules on the controller with the same code as the
    P(linuxnet.tcp.tcp_diagnose#filter) filter.
  - With O(gather=false) nothing runs on the host. The facts gathered earlier (C(ansible_facts.tcp) and
    C(ansible_facts.sysctl), for example from the fact cache) are diagnosed, and the task fails with a message
    naming O(gather) when they are missing.
  - The findings are returned as C(ansible_facts.tcp_findings), most severe first. Like any facts returned by a
    task they are kept in the fact cache when one is configured.
  - Needs the C(jmespath) Python package on the controller.
  - On a host named C(localhost), C(127.0.0.1) or C(::1) that has no C(ansible_python_interpreter) and no
    interpreter discovered yet, the fact modules run with the Python that runs Ansible, as they would on Ansible's
    implicit localhost (for C(-i localhost,)), and that Python is returned as the discovered interpreter, so later
    tasks on the host use it as well.
author:
  - linuxnet.tcp maintainers (@linuxnet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - ansible.builtin.action_common_attributes.flow
options:
  gather:
    description:
      - Run M(linuxnet.tcp.tcp_facts) and M(linuxnet.tcp.sysctl_facts) on the host.
      - V(false) diagnoses the C(ansible_facts.tcp) and C(ansible_facts.sysctl) the host already has.
    type: bool
    default: true
  top:
    description: The O(linuxnet.tcp.tcp_facts#module:top) option of M(linuxnet.tcp.tcp_facts).
    type: int
    default: 10
  processes:
    description: The O(linuxnet.tcp.tcp_facts#module:processes) option of M(linuxnet.tcp.tcp_facts).
    type: bool
    default: true
  namespaces:
    description:
      - The O(linuxnet.tcp.tcp_facts#module:namespaces) option of M(linuxnet.tcp.tcp_facts). With V(all), the rules about
        the socket table also run on every container's and pod's network namespace, and such a finding says whose
        namespace it is (its message starts with C(In <owner>:), and C(namespace) names the runtime, container, pod).
    type: str
    choices: [current, all]
    default: current
  sysctl_keys:
    description:
      - The O(linuxnet.tcp.sysctl_facts#module:keys) option of M(linuxnet.tcp.sysctl_facts).
      - Omitted, M(linuxnet.tcp.sysctl_facts) reads its own default set of keys.
    type: list
    elements: str
  rules:
    description:
      - The diagnosis rules, in the format of the O(linuxnet.tcp.tcp_diagnose#filter:rules) option of
        P(linuxnet.tcp.tcp_diagnose#filter).
    type: list
    elements: dict
    required: true
  overrides:
    description: Changes per rule id, as the O(linuxnet.tcp.tcp_diagnose#filter:overrides) option of P(linuxnet.tcp.tcp_diagnose#filter).
    type: dict
    default: {}
attributes:
  action:
    support: full
    details: The diagnosis runs on the controller; only the two fact modules run on the host.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Nothing is written anywhere; check mode returns the same facts and findings.
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: [linux]
    support: full
seealso:
  - module: linuxnet.tcp.tcp_facts
  - module: linuxnet.tcp.sysctl_facts
  - plugin: linuxnet.tcp.tcp_diagnose
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Gather, diagnose with one rule of our own, and print what was found
  linuxnet.tcp.tcp_audit_facts:
    rules:
      - id: close_wait_leak
        severity: warning
        params: {min_count: 10}
        query: "tcp.close_wait.by_process[?count >= `$min_count`]"
        message: "{item.name} (pid {item.pid}) holds {item.count} sockets in CLOSE_WAIT"

- name: Diagnose the facts a previous job left in the fact cache, without touching the host
  linuxnet.tcp.tcp_audit_facts:
    gather: false
    rules: "{{ my_rules }}"
    overrides: {close_wait_leak: {params: {min_count: 50}}}
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    tcp:
      description: The facts of M(linuxnet.tcp.tcp_facts).
      returned: when O(gather=true)
      type: dict
      sample: {states: {ESTABLISHED: 10, TIME_WAIT: 9000, total: 9118}}
    sysctl:
      description: The facts of M(linuxnet.tcp.sysctl_facts).
      returned: when O(gather=true)
      type: dict
      sample: {runtime: {net.ipv4.tcp_tw_reuse: "0"}}
    discovered_interpreter_python:
      description: The Python that runs Ansible, for the later tasks on this host (see the description).
      returned: on a localhost without an interpreter, when O(gather=true)
      type: str
      sample: /usr/bin/python3
    tcp_findings:
      description:
        - The findings, most severe first, each with C(id), C(severity), C(title), C(message), C(remedy) and C(item),
          as P(linuxnet.tcp.tcp_diagnose#filter) returns them.
      returned: always
      type: list
      elements: dict
      sample: [{id: close_wait_leak, severity: warning, title: CLOSE_WAIT leak,
                message: leaky-app (pid 4242, user root) holds 40 sockets in CLOSE_WAIT, remedy: "..."}]
"""
