# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
name: tcp_fleet_summary
short_description: Build the fleet audit report from per-host facts and findings, or merge several reports
version_added: 0.1.0
author:
  - linuxnet.tcp maintainers
description:
  - Takes a mapping of host name to that host's data and returns the report document the
    P(linuxnet.tcp.audit#role) role writes as C(report.json), less the timestamp. It has one summary per host, ranked
    by trouble, and the fleet view computed from those summaries alone. The view holds totals per TCP state, the
    findings grouped by rule (hosts affected, worst hosts first, the remedy once), a breakdown by inventory group,
    the hosts with the most C(TIME_WAIT) and C(CLOSE_WAIT) sockets, and the rows of the sockets chart.
  - A host's data is either a plain document C({tcp, sysctl, findings, groups}) or a C(hostvars) entry, whose
    C(ansible_facts.tcp), C(ansible_facts.sysctl), C(ansible_facts.tcp_findings) and C(group_names) are read.
    Hosts without TCP facts (unreachable, failed) are listed in C(fleet.hosts_without_facts) and left out of the
    totals.
  - Given a list of report documents (or paths of C(report.json) files) instead, it merges them, for example the
    reports of the slices of an AWX sliced job. The merged report is the report one run over all their hosts
    would have written. A host found in several reports is taken from the report generated last.
  - Hosts are ranked by their most severe finding, then by their number of critical, warning and info findings,
    then by their sockets that are neither C(ESTABLISHED) nor C(LISTEN). Names sort naturally (C(web2) before
    C(web10)).
  - With O(compare_with), the report also says which findings are new, resolved or have grown since that earlier
    report, per host and per rule. A finding is the same when its rule and its subject match (the sysctl key, the
    listener or destination, or the process name and user); it has grown when its size (sockets, ports in use,
    queue length) rose by at least O(growth).
  - Pure Python, no extra package needed.
positional: hosts, top, details
options:
  _input:
    description:
      - Mapping of host name to its data, for example C(hostvars).
      - Or a list of report documents or C(report.json) paths to merge (schema C(linuxnet.tcp.audit/2)).
    type: raw
    required: true
  hosts:
    description:
      - Host names to include, in this order. Defaults to every key of the input.
      - Names without data, or without TCP facts, are listed in C(fleet.hosts_without_facts).
      - Not used when merging.
    type: list
    elements: str
  top:
    description:
      - Number of entries in the C(time_wait_leaders) and C(close_wait_leaders) lists; the rest are summed up
        in C(time_wait_rest) and C(close_wait_rest).
      - When merging, defaults to the value the first report was made with.
    type: int
    default: 10
  details:
    description:
      - Add C(details), each host's full C(tcp) and C(sysctl) facts.
      - When merging, the details of the reports that have them are kept.
    type: bool
    default: false
  report_top:
    description:
      - Rows of the sockets chart (the rest is one aggregated row) and worst hosts listed per rule.
      - When merging, defaults to the value the first report was made with.
    type: int
    default: 20
  compare_with:
    description:
      - An earlier report, as a document or the path of its C(report.json). Schema C(linuxnet.tcp.audit/1)
        reports are read too.
      - A path that does not exist gives a C(comparison) with C(available=false) and a C(note); a file that is
        not a report is an error.
    type: raw
  growth:
    description:
      - How much bigger a finding must be to count as grown, as a fraction (V(0.2) is 20 %).
      - When merging, defaults to the value the first report was made with.
    type: float
    default: 0.2
  diagnose:
    description:
      - Evaluate the diagnosis rules on each host's facts here, instead of reading its findings, in the same pass
        over the hosts. For facts gathered earlier (a fact cache), this replaces a task per host.
      - C(rules) is the rule list (as O(linuxnet.tcp.tcp_diagnose#filter:rules) of P(linuxnet.tcp.tcp_diagnose#filter)),
        C(overrides) the changes per rule id, and C(overrides_var) the name of a variable that, when a host's data
        has it (for C(hostvars), its inventory or extra variables), replaces C(overrides) for that host.
      - Not used when merging.
    type: dict
  settings:
    description:
      - Mapping of variable name to its default. For each, the report's C(settings) lists the hosts per value the
        variable has in their data (for C(hostvars), their inventory or extra variables), the default for hosts
        without it, read in the same pass over the hosts. Values are JSON text (V(true), V("")).
      - A value is converted to the type of its default, so that V("true") from C(-e name=true) or an INI inventory
        counts as V(true) for a boolean (as C(| bool) reads it), and a number as text for a string.
      - The P(linuxnet.tcp.audit#role) role uses it to find the hosts whose local facts, textfile or fail gate are
        on. Not used when merging.
    type: dict
  rules:
    description:
      - The effective rules (from P(linuxnet.tcp.tcp_diagnose#filter) with C(check_only=true)), stored in the
        report and used to order rules of equal severity and reach.
      - When merging, defaults to the rules of the first report.
    type: list
    elements: dict
seealso:
  - plugin: linuxnet.tcp.tcp_diagnose
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Summarise the play's hosts on the controller
  ansible.builtin.set_fact:
    report: "{{ hostvars | linuxnet.tcp.tcp_fleet_summary(ansible_play_hosts) }}"
  run_once: true

- name: Show the hosts with the most TIME_WAIT sockets
  ansible.builtin.debug:
    msg: "{{ report.fleet.time_wait_leaders | map(attribute='host') | list }}"
  run_once: true

- name: Show which hosts have each rule's findings
  ansible.builtin.debug:
    msg: "{{ report.fleet.by_rule | items2dict(key_name='id', value_name='affected') }}"
  run_once: true

- name: Merge the reports of two slices and compare with last week's merged report
  ansible.builtin.set_fact:
    merged: >-
      {{ ['slices/1/report.json', 'slices/2/report.json']
         | linuxnet.tcp.tcp_fleet_summary(compare_with='archive/week-41/report.json') }}
  run_once: true
"""

RETURN = r"""
_value:
  description: The report document, as C(report.json) holds it without C(generated), C(ansible_version) and C(fail_on).
  type: dict
  contains:
    schema:
      description: V(linuxnet.tcp.audit/2).
      type: str
      sample: linuxnet.tcp.audit/2
    options:
      description: C(top), C(report_top) and C(growth) the report was made with.
      type: dict
      sample: {top: 10, report_top: 20, growth: 0.2}
    hosts:
      description:
        - One summary per host with TCP facts, most trouble first, with C(host), C(groups), C(kernel),
          C(backend), C(states), C(total), C(trouble) (sockets neither C(ESTABLISHED) nor C(LISTEN)), C(worst),
          C(counts) (findings per severity), C(findings), C(time_wait) (C(total), C(top_remote)) and
          C(close_wait) (C(total), C(unowned), C(top_process), C(top_remote)), and with C(namespaces=all) facts
          C(namespaces), C(namespaces_scanned) and C(namespace_states) (sockets per state summed over its container
          namespaces).
        - Each finding has C(id), C(severity), C(title), C(message), C(remedy), C(item), C(subject) and
          C(magnitude); each remote endpoint has a C(text) that reads C(10.0.0.5:3306) for an outbound
          connection and C(from 10.0.0.7 to local port 8080) for an inbound one.
      type: list
      elements: dict
      sample: [{host: web1, groups: [web], worst: warning, counts: {critical: 0, warning: 1, info: 0}, total: 9210,
                findings: [{id: close_wait_leak, severity: warning, subject: leaky-app (root), magnitude: 40}]}]
    fleet:
      description:
        - C(hosts) (number of hosts with facts), C(hosts_without_facts), C(states) (totals and C(total) of the
          hosts' own network namespaces), C(sockets) (the same plus every container namespace read, what the
          headline counts, with C(hosts) and C(containers) totals), C(findings) (per severity), C(hosts_by_worst)
          (hosts per worst severity, and C(none)).
        - C(by_rule), one entry per rule with findings, most severe and widespread first, with C(severity) (the
          most severe of its findings, since overrides per host can differ), C(hosts), C(affected) (every host, worst
          first), C(worst) (the first O(report_top) findings with C(host), C(subject), C(magnitude) and
          C(message); a host with several findings of the rule has several), C(worst_hosts) (the first
          O(report_top) hosts of C(affected), each once, with C(magnitude), its biggest, and C(findings), how many
          it has), and the C(message) and C(remedy) of the worst case.
        - C(groups), per inventory group C(hosts), C(hosts_by_worst), C(sockets), C(TIME_WAIT), C(CLOSE_WAIT) and
          its three most common C(rules).
        - C(time_wait_leaders) and C(close_wait_leaders) (O(top) hosts each), C(time_wait_rest) and
          C(close_wait_rest) (C(hosts), C(total) of the others), C(chart) (C(rows) of the O(report_top) hosts
          with the most sockets, C(rest) summed up).
        - C(containers), the container network namespaces (tcp_facts C(namespaces=all)), with C(hosts_scanned),
          C(namespaces_scanned), C(states) (their sockets per state and C(total)), C(with_findings) (and C(with_findings_rest)), C(time_wait_leaders) and
          C(close_wait_leaders) (O(top) namespaces each), and C(leaders), both lists with each namespace once (a
          namespace is its host and its inode, since inode numbers repeat across hosts).
      type: dict
      sample: {hosts: 2, hosts_without_facts: [], states: {TIME_WAIT: 9120, total: 9210},
               findings: {critical: 1, warning: 3, info: 2}, hosts_by_worst: {critical: 1, warning: 0, info: 0, none: 1}}
    comparison:
      description:
        - V(null) without O(compare_with); otherwise C(available) and, when the earlier report was read,
          C(previous) (C(generated), C(hosts), C(source)), C(hosts_added), C(hosts_removed), C(counts),
          C(new), C(resolved), C(grown) (each finding with C(host), C(id), C(subject), C(magnitude); grown
          ones with C(before)), C(by_rule) and C(by_host).
      type: dict
      sample: {available: true, counts: {new: 1, resolved: 0, grown: 1}, new: [{host: web1, id: close_wait_leak}]}
    rules:
      description: The rules given with O(rules), or those of the first merged report.
      type: list
      elements: dict
      returned: when rules are known
      sample: [{id: close_wait_leak, severity: warning, params: {min_count: 10}}]
    details:
      description: Per host, its full C(tcp) and C(sysctl) facts.
      returned: when O(details=true)
      type: dict
      sample: {web1: {tcp: {states: {total: 3}}, sysctl: {values: {}}}}
    settings:
      description: With O(settings), per variable, per value (as JSON text), the hosts that have it.
      returned: when O(settings) is given
      type: dict
      sample: {tcp_audit_fail_on: {'"never"': [web1, web2], '"critical"': [db1]}}
    merged_from:
      description: When merging, each report's C(source) (its path, or V(null)), C(generated) and C(hosts).
      returned: when merging
      type: list
      elements: dict
      sample: [{source: slices/1/report.json, generated: "2026-10-12T08:00:00Z", hosts: 500}]
    fail_on:
      description: When merging, the C(fail_on) of the first report.
      returned: when merging
      type: str
      sample: never
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.tcp.plugins.plugin_utils._fleet import build_report, merge_reports, summarise_hosts
from ansible_collections.linuxnet.tcp.plugins.plugin_utils._rules import RuleError, plain


def _pick(value, merged, key, default):
    if value is not None:
        return value
    return merged.get(key, default) if merged else default


def tcp_fleet_summary(data, hosts=None, top=None, details=False, report_top=None, compare_with=None, growth=None,
                      rules=None, diagnose=None, settings=None):
    """The report document of ``data`` (host name -> facts and findings), or the merge of a list of reports."""
    try:
        if isinstance(data, (list, tuple)):
            merged = merge_reports(list(data))
            options = merged["options"]
            doc = build_report(merged["hosts"], merged["missing"], int(_pick(top, options, "top", 10)),
                               int(_pick(report_top, options, "report_top", 20)), compare_with,
                               float(_pick(growth, options, "growth", 0.2)),
                               plain(rules) if rules is not None else merged["rules"],
                               merged["details"], merged["sources"])
            doc["fail_on"] = merged["fail_on"]
            return doc
        summaries, missing, detail, by_value = summarise_hosts(
            data, hosts, bool(details), plain(diagnose) if diagnose is not None else None,
            plain(settings) if settings is not None else None)
        return build_report(summaries, missing, int(10 if top is None else top),
                            int(20 if report_top is None else report_top), compare_with,
                            float(0.2 if growth is None else growth), plain(rules) if rules is not None else None,
                            detail, settings=by_value)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("linuxnet.tcp.tcp_fleet_summary: bad option value: %s" % exc) from None
    except RuleError as exc:
        raise AnsibleFilterError(f"linuxnet.tcp.tcp_fleet_summary: {exc}") from None


class FilterModule:
    """The linuxnet.tcp fleet report filter."""

    def filters(self):
        return {"tcp_fleet_summary": tcp_fleet_summary}
