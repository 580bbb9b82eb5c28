# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
name: tcp_tune_rates
short_description: Rates of the watched TCP counters over a health window of the rolling tune
version_added: 0.2.0
author:
  - linuxnet.tcp maintainers
description:
  - Events per second of each watched counter between two readings of C(ansible_facts.tcp.counters) (what
    M(linuxnet.tcp.tcp_facts) returns) taken one health window apart, rounded to 3 places. The C(linuxnet.tcp.tune)
    playbook measures each batch before and after its change with it.
  - A counter that a reading lacks counts as 0.
positional: start, settings
options:
  _input:
    description: The counters at the end of the window (C(ansible_facts.tcp.counters)).
    type: dict
    required: true
  start:
    description: The counters at the start of the window.
    type: dict
    required: true
  settings:
    description:
      - The playbook's converted variables; C(tcp_tune_counters) (the counters to rate, in this order) and
        C(tcp_tune_health_window) (the window in seconds, at least 1) are read.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Rates over the window
  ansible.builtin.set_fact:
    rates: "{{ ansible_facts.tcp.counters | linuxnet.tcp.tcp_tune_rates(start, {'tcp_tune_counters': ['RetransSegs'], 'tcp_tune_health_window': 10}) }}"
"""

RETURN = r"""
_value:
  description: Events per second of each counter of C(tcp_tune_counters).
  type: dict
  sample: {ListenOverflows: 4.5, RetransSegs: 0.2}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.tcp.plugins.plugin_utils._inputs import plain
from ansible_collections.linuxnet.tcp.plugins.plugin_utils._rolling import RollError, rates


def tcp_tune_rates(end, start, settings):
    try:
        return rates(plain(end), plain(start), plain(settings))
    except RollError as exc:
        raise AnsibleFilterError("linuxnet.tcp.tcp_tune_rates: %s" % exc) from None


class FilterModule:
    """The linuxnet.tcp rolling tune's rates filter."""

    def filters(self):
        return {"tcp_tune_rates": tcp_tune_rates}
