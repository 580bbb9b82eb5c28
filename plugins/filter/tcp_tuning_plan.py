# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
name: tcp_tuning_plan
short_description: Check the tuning role's variables and merge its profiles, on the controller
version_added: 0.2.0
author:
  - linuxnet.tcp maintainers
description:
  - The first step of the M(linuxnet.tcp.sysctl_profile) call of the C(linuxnet.tcp.tuning) role, and of the first play of
    C(linuxnet.tcp.tune), which checks every host's input before any host changes.
  - Converts each C(tcp_tuning_*) variable as the role's argument spec says (a string where a list is wanted is a
    comma-separated list, C([web, proxy]) and a mapping in braces typed on a command line are read as YAML), and checks
    what the argument spec cannot - profile names and the shape of custom profiles, the sysctl keys and values the user
    wrote (with the engine's own rules), the reserved ports. Each error names the variable, what it must be and the
    value it has; an unknown variable name or profile name comes with the closest known one.
  - Merges the profiles (each after the ones it extends), the IPVS settings, the conntrack sizing, the reserved ports
    and C(tcp_tuning_settings) (a null value drops a key), then applies the role's guards - the rules of the
    collection's safety table that the role judges on the merged values as written (legacy names included), before
    M(linuxnet.tcp.sysctl_profile) judges every rule of the table again on what it would write.
  - Keys the collection's catalogue does not know are listed in RV(_value.ask_host); the role reads them on the host
    and calls the filter again with O(host_keys), which then names a key neither knows, with a suggestion.
positional: spec, policy
options:
  _input:
    description: The C(tcp_tuning_*) variables as the host sees them, by name.
    type: dict
    required: true
  spec:
    description: The C(options) of the role's C(main) entry point in C(meta/argument_specs.yml).
    type: dict
    required: true
  policy:
    description:
      - The role's data - C(profiles) (the built-in profiles) and C(conntrack) (C(min), C(per_cpu), C(mem_factor)).
    type: dict
    required: true
  host:
    description: C(vcpus) and C(memtotal_mb) of the host, for the conntrack sizing (V(null) until gathered).
    type: dict
  host_keys:
    description: C(names), the sysctl names read on the host for RV(_value.ask_host), and C(kernel), its release.
    type: dict
"""

EXAMPLES = r"""
- name: Check and merge (what roles/tuning/tasks/check.yml does)
  ansible.builtin.set_fact:
    __plan: >-
      {{ dict(names | zip(query('ansible.builtin.vars', *names)))
         | linuxnet.tcp.tcp_tuning_plan(spec, {'profiles': profiles, 'conntrack': sizing}) }}

- name: Stop on bad input
  ansible.builtin.assert:
    that: __plan.errors | length == 0
    fail_msg: "{{ __plan.errors | join('; ') }}"
"""

RETURN = r"""
_value:
  description: The checked input and the merged profile.
  type: dict
  contains:
    errors:
      description: One message per bad variable; empty when the role may run.
      type: list
      elements: str
      sample: ["tcp_tuning_reserved_ports[0] must be a port from 1 to 65535 or a range \"low-high\" of them, got \"80-abc\" (a string)"]
    warnings:
      description: Input that runs but does less than it seems (reserved ports outside the range, a null that drops nothing).
      type: list
      elements: str
    vars:
      description: Every variable of the spec, converted, with its default when not given.
      type: dict
    chain:
      description: The profiles in merge order.
      type: list
      elements: str
      sample: [baseline, web]
    apply:
      description: The settings for M(linuxnet.tcp.sysctl_profile), without the keys the guards refused.
      type: dict
    wanted:
      description: The merged settings before the guards.
      type: dict
    guard_refused:
      description:
        - C(key) (as written), C(value), C(reason), C(suggestion) of each value a guard refused, unless
          C(tcp_tuning_allow_unsafe).
      type: list
      elements: dict
    modules:
      description: Kernel modules the profiles need.
      type: list
      elements: str
    conntrack_sizing:
      description: Whether a profile sizes conntrack from cores and memory.
      type: bool
    needs_host_facts:
      description: The sizing needs O(host) and it was not given.
      type: bool
    conntrack_max:
      description: The computed C(nf_conntrack_max), or V(null).
      type: int
    ipvs_timeouts:
      description: The IPVS timeouts to set (with C(tcp_tuning_ipvs)), or V(null).
      type: dict
    ask_host:
      description: Key names and patterns to read on the host (M(linuxnet.tcp.sysctl_facts) O(linuxnet.tcp.sysctl_facts#module:keys)).
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.tcp.plugins.plugin_utils._tuning import plan


def tcp_tuning_plan(given, spec, policy, host=None, host_keys=None):
    try:
        return plan(given, spec, policy, host=host, host_keys=host_keys)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("linuxnet.tcp.tcp_tuning_plan: %s" % exc) from None


class FilterModule:
    """The linuxnet.tcp tuning input filter."""

    def filters(self):
        return {"tcp_tuning_plan": tcp_tuning_plan}
