# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
name: tcp_tune_roll
short_description: Where the rolling tune stands after a batch - its batches, whether it ends, the summary
version_added: 0.2.0
author:
  - linuxnet.tcp maintainers
description:
  - The C(linuxnet.tcp.tune) playbook renders it once per batch (and once in check mode) from every host's
    C(tcp_tune_host), the part of the roll each host keeps. It cuts the play's hosts into batches as Ansible does
    for the play keyword C(serial) (a number, a percentage or a list of them), decides by Ansible's rules whether
    this batch stops the roll (more than C(tcp_tune_max_fail_percentage) % of it failed, or all of it) or is the last
    one, and writes one line per host and the summary.
  - Reads from each host's C(hostvars) entry C(tcp_tune_host), C(__tcp_tune.vars.tcp_tune_rollback) and, in check
    mode, C(tcp_tuning_revert) and C(tcp_tuning_result); from the current host's C(__tcp_tune.vars) the roll's
    C(tcp_tune_serial), C(tcp_tune_max_fail_percentage) and C(tcp_tune_health_window).
positional: host, hosts, active, batch, check_mode
options:
  _input:
    description: C(hostvars), or a mapping of host name to those variables.
    type: raw
    required: true
  host:
    description: The host that renders the summary (C(inventory_hostname)); its batch is the one judged.
    type: str
    required: true
  hosts:
    description: Every host of the play (C(ansible_play_hosts_all)).
    type: list
    elements: str
    required: true
  active:
    description: The play's hosts that have not failed (C(ansible_play_hosts)).
    type: list
    elements: str
    required: true
  batch:
    description: The hosts of the current batch that have not failed (C(ansible_play_batch)).
    type: list
    elements: str
    required: true
  check_mode:
    description: A check-mode run (C(ansible_check_mode)), which changes nothing.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Where the roll stands after this batch
  ansible.builtin.set_fact:
    roll: >-
      {{ hostvars | linuxnet.tcp.tcp_tune_roll(inventory_hostname, ansible_play_hosts_all, ansible_play_hosts,
                                                ansible_play_batch, ansible_check_mode) }}
  run_once: true
"""

RETURN = r"""
_value:
  description: Where the roll stands after the batch of O(host).
  type: dict
  contains:
    ends:
      description: This batch is the last one that runs (the final batch, or one whose failures stop the roll).
      type: bool
    stops:
      description: The failures of this batch stop the roll.
      type: bool
    batch:
      description: The number of this batch, from 1.
      type: int
    batches:
      description: The number of batches.
      type: int
    batch_hosts:
      description: The hosts of this batch, as Ansible cut them.
      type: list
      elements: str
    by_host:
      description: One line per host of the play, by host name.
      type: dict
    lines:
      description: The summary, a header and one line per host (the hosts with nothing to change share one).
      type: list
      elements: str
  sample:
    ends: true
    stops: true
    batch: 1
    batches: 2
    batch_hosts: [web1]
    by_host:
      web1: "rolled back: web1 (batch 1): got worse: ListenOverflows 0.0 -> 4.5 -> 0.0 events/s (before -> tuned -> rolled
        back); restored net.core.somaxconn 8 -> 4096"
      web2: "not reached: web2 (batch 2): the roll stopped before its batch"
    lines:
      - "linuxnet.tcp.tune: 2 host(s) in 2 batch(es) (serial 1, max_fail_percentage 0, health window 10 s, rollback on):
        the roll stopped after batch 1 of 2: 1 of its 1 host(s) failed"
      - "rolled back: web1 (batch 1): got worse: ListenOverflows 0.0 -> 4.5 -> 0.0 events/s (before -> tuned -> rolled
        back); restored net.core.somaxconn 8 -> 4096"
      - "not reached: web2 (batch 2): the roll stopped before its batch"
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.tcp.plugins.plugin_utils._inputs import plain
from ansible_collections.linuxnet.tcp.plugins.plugin_utils._rolling import RollError, roll


def _get(entry, name):
    """One variable of a hostvars entry (which templates it on access) or of a plain mapping; None when unset."""
    return plain(entry.get(name)) if name in entry else None


def tcp_tune_roll(hostvars, host, hosts, active, batch, check_mode=False):
    try:
        hosts, active, batch = [str(name) for name in hosts], set(map(str, active)), set(map(str, batch))
        if host not in hosts:
            raise RollError("%s is not a host of the play" % host)
        info, rollback, check, settings = {}, {}, {}, {}
        for name in hosts:
            entry = hostvars[name]
            info[name] = _get(entry, "tcp_tune_host")
            tune = _get(entry, "__tcp_tune")
            if not isinstance(tune, dict) or not isinstance(tune.get("vars"), dict):
                raise RollError("%s has no __tcp_tune.vars: the first play of linuxnet.tcp.tune sets it" % name)
            rollback[name] = tune["vars"].get("tcp_tune_rollback")
            if name == host:
                settings = tune["vars"]
            if (info[name] or {}).get("status") == "checked":
                check[name] = (_get(entry, "tcp_tuning_revert") or {}, _get(entry, "tcp_tuning_result") or {})
        return roll(host, hosts, active, batch, info, rollback, settings, bool(check_mode), check)
    except RollError as exc:
        raise AnsibleFilterError("linuxnet.tcp.tcp_tune_roll: %s" % exc) from None
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError("linuxnet.tcp.tcp_tune_roll: %s: %s" % (type(exc).__name__, exc)) from None


class FilterModule:
    """The linuxnet.tcp rolling tune's state filter."""

    def filters(self):
        return {"tcp_tune_roll": tcp_tune_roll}
