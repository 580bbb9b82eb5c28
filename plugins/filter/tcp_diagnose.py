# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
name: tcp_diagnose
short_description: Evaluate JMESPath diagnosis rules over one host's TCP and sysctl facts
version_added: 0.1.0
author:
  - linuxnet.tcp maintainers
description:
  - Runs each rule's JMESPath O(rules[].query) over the host document C({tcp, sysctl}), built from
    the facts of M(linuxnet.tcp.tcp_facts) and M(linuxnet.tcp.sysctl_facts), and returns the findings,
    critical first, then warning, then info.
  - "A query result that is V(false), V(null), an empty string, an empty list or an empty object means no
    finding (JMESPath truthiness; numbers, even V(0), are true). A list gives one finding per element,
    anything else one finding. The idiom C(CONDITION && {name: expr}) returns an object only when the
    condition holds."
  - C($name) in a query is replaced by the JSON of the value of key C(name) in O(rules[].params) before
    compiling, so a threshold is written C(`$min_total`) (a JSON literal between backticks).
  - C({expr}) in O(rules[].message) and O(rules[].remedy) is a JMESPath expression over C({tcp, sysctl, params,
    item}), where C(item) is the element that matched (a scalar match becomes an object with a C(value) key). C({expr:spec})
    applies a Python format spec, for example C({item.utilisation:.0%}). V(null) renders as C(-).
  - Five functions are added to JMESPath. C(divide(a, b\)) returns C(a / b), or V(null) when either is
    V(null) or C(b) is zero. C(subtract(a, b\)) returns C(a - b), or V(null) when either is V(null).
    C(to_entries(object\)) returns C([{key, value}, ...]) sorted by key, for dicts keyed by sysctl name such
    as C(sysctl.drift). C(join_entries(left, right\)) returns C([{key, left, right}, ...]) for the keys present in
    both objects, sorted by key, for example the drifting keys that another agent writes,
    C(join_entries(sysctl.drift, sysctl.writers\)). C(entries_without(left, right\)) is C(to_entries(left\))
    without the keys present in C(right), for example the drift no agent explains.
  - Every rule is validated and compiled before any is evaluated. A malformed rule, an unknown override or a
    query that does not compile raises an error naming the rule id and the JMESPath error.
  - Needs the C(jmespath) Python package on the controller.
positional: rules, overrides
options:
  _input:
    description: The host document, a mapping with C(tcp) and C(sysctl) keys (either may be missing).
    type: dict
    required: true
  rules:
    description: The rules, in evaluation order. Ids must be unique.
    type: list
    elements: dict
    required: true
    suboptions:
      id:
        description: Unique identifier, lowercase letters, digits and underscores.
        type: str
        required: true
      severity:
        description: How serious a finding is.
        type: str
        choices: [info, warning, critical]
        required: true
      query:
        description: JMESPath expression over C({tcp, sysctl}); C($param) placeholders are substituted first.
        type: str
        required: true
      message:
        description: What was found, with C({expr}) placeholders.
        type: str
        required: true
      remedy:
        description: What to do about it, with C({expr}) placeholders.
        type: str
        default: ""
      title:
        description: Short human title; defaults to the id with spaces.
        type: str
      params:
        description: Thresholds and other values the query refers to as C($name).
        type: dict
        default: {}
      enabled:
        description: Set V(false) to skip the rule.
        type: bool
        default: true
  overrides:
    description:
      - Changes per rule id, for example V(time_wait_storm_client) mapped to C(params) C(min_total) V(20000), or
        V(tcp_timestamps_disabled) mapped to C(enabled) V(false). C(params) are merged into the rule's params, other keys
        replace the rule's value. An override for an unknown rule id is an error.
    type: dict
    default: {}
  check_only:
    description:
      - Validate and compile the rules, apply O(overrides), and return the effective rule list instead of
        findings. The input is not used. Roles call this once at the start of a play.
    type: bool
    default: false
seealso:
  - plugin: linuxnet.tcp.tcp_fleet_summary
    plugin_type: filter
  - name: JMESPath specification
    description: The query language of the rules.
    link: https://jmespath.org/specification.html
"""

EXAMPLES = r"""
- name: Diagnose this host with the audit role's built-in rules plus one of our own
  ansible.builtin.set_fact:
    findings: >-
      {{ {'tcp': ansible_facts.tcp, 'sysctl': ansible_facts.sysctl}
         | linuxnet.tcp.tcp_diagnose(my_rules, {'close_wait_leak': {'params': {'min_count': 50}}}) }}
  vars:
    my_rules:
      - id: close_wait_leak
        severity: warning
        params: {min_count: 10}
        query: "tcp.close_wait.by_process[?count >= `$min_count`]"
        message: "{item.name} (pid {item.pid}) holds {item.count} sockets in CLOSE_WAIT"
        remedy: "An application bug: the peer closed and {item.name} never called close()."
      - id: many_established_to_one_peer
        severity: info
        params: {min: 1000}
        query: "tcp.peers[?states.ESTABLISHED >= `$min`].{address: address, established: states.ESTABLISHED}"
        message: "{item.established} connections established with {item.address}"

- name: Fail early when a rule does not compile
  ansible.builtin.set_fact:
    effective_rules: "{{ {} | linuxnet.tcp.tcp_diagnose(my_rules, check_only=true) }}"
"""

RETURN = r"""
_value:
  description:
    - The findings, most severe first, in rule order within a severity.
    - With O(check_only), the effective rules (overrides applied, disabled rules included) instead.
  type: list
  elements: dict
  contains:
    id:
      description: The rule id.
      type: str
      sample: close_wait_leak
    severity:
      description: V(critical), V(warning) or V(info).
      type: str
      sample: warning
    title:
      description: The rule's title.
      type: str
      sample: CLOSE_WAIT leak
    message:
      description: The rendered message.
      type: str
      sample: leaky-app (pid 4242, user root) holds 40 sockets in CLOSE_WAIT, mostly towards 127.0.0.1:9200
    remedy:
      description: The rendered remedy.
      type: str
      sample: An application bug, no sysctl fixes it. Make leaky-app close() sockets the peer has closed.
    item:
      description: The matched element, for machines (what the placeholders read).
      type: raw
      sample: {pid: 4242, name: leaky-app, user: root, count: 40, remotes: [{address: 127.0.0.1, port: 9200, count: 40}]}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.tcp.plugins.plugin_utils._rules import RuleError, compile_rules, diagnose, effective_rules


def tcp_diagnose(doc, rules, overrides=None, check_only=False):
    """Findings of ``rules`` over the host document ``doc``, or the effective rules with ``check_only``."""
    try:
        if check_only:
            compile_rules(rules, overrides)
            return effective_rules(rules, overrides)
        return diagnose(doc, rules, overrides)
    except RuleError as exc:
        raise AnsibleFilterError(f"linuxnet.tcp.tcp_diagnose: {exc}") from None


class FilterModule:
    """The linuxnet.tcp diagnosis filter."""

    def filters(self):
        return {"tcp_diagnose": tcp_diagnose}
