# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
name: tcp_tune_worse
short_description: The rolling tune's health rule - the watched counters that grow faster than before
version_added: 0.2.0
author:
  - linuxnet.tcp maintainers
description:
  - The counters whose rate after a change exceeds their rate before it by more than the tolerance and the slack,
    rate after > rate before x (1 + C(tcp_tune_tolerance)) + C(tcp_tune_slack), in events per second. The
    C(linuxnet.tcp.tune) playbook judges a host worse when this list is not empty, and rolls it back.
  - A rate missing from either side counts as 0.
positional: before, settings
options:
  _input:
    description: Rates after the change (what P(linuxnet.tcp.tcp_tune_rates#filter) returns).
    type: dict
    required: true
  before:
    description: Rates before the change.
    type: dict
    required: true
  settings:
    description:
      - The playbook's converted variables; C(tcp_tune_counters) (the counters judged, in this order),
        C(tcp_tune_tolerance) and C(tcp_tune_slack) are read.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: The counters that got worse
  ansible.builtin.set_fact:
    worse: "{{ rates.after | linuxnet.tcp.tcp_tune_worse(rates.before, __tcp_tune.vars) }}"
"""

RETURN = r"""
_value:
  description: The names of the counters that got worse, in the order of C(tcp_tune_counters); empty when healthy.
  type: list
  elements: str
  sample: [ListenOverflows]
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.tcp.plugins.plugin_utils._inputs import plain
from ansible_collections.linuxnet.tcp.plugins.plugin_utils._rolling import RollError, worse


def tcp_tune_worse(after, before, settings):
    try:
        return worse(plain(after), plain(before), plain(settings))
    except RollError as exc:
        raise AnsibleFilterError("linuxnet.tcp.tcp_tune_worse: %s" % exc) from None


class FilterModule:
    """The linuxnet.tcp rolling tune's health rule."""

    def filters(self):
        return {"tcp_tune_worse": tcp_tune_worse}
