# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
name: tcp_check_vars
short_description: Check and convert a playbook's variables against an argument spec, naming the variable
version_added: 0.2.0
author:
  - linuxnet.tcp maintainers
description:
  - What C(ansible.builtin.validate_argument_spec) checks, plus the converted values, which Ansible does not hand
    back - a play then uses the converted values, so C(-e tcp_tune_counters=RetransSegs) is a list of one counter, not
    a string. Flow-style YAML typed on a command line (C([a, b]), a mapping in braces) is read for list and dict options.
  - Each error names the variable, what it must be and the value it has. A name in the input that the spec does not
    have is an error too, with the closest name of the spec.
positional: spec
options:
  _input:
    description: The variables by name, as the host sees them (missing or V(null) ones get the spec's default).
    type: dict
    required: true
  spec:
    description: Options in the argument spec format (C(type), C(elements), C(choices), C(default), C(options)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: The playbook's variables, converted (errors stop the play)
  ansible.builtin.set_fact:
    __checked: "{{ dict(names | zip(query('ansible.builtin.vars', *names))) | linuxnet.tcp.tcp_check_vars(spec) }}"
  vars:
    names: "{{ query('ansible.builtin.varnames', '^tcp_tune_') }}"
"""

RETURN = r"""
_value:
  description: C(vars) (every option of the spec, converted or its default) and C(errors) (one message per bad variable).
  type: dict
  sample: {vars: {tcp_tune_counters: [RetransSegs]}, errors: ["tcp_tune_rollback must be a boolean (true or false), got \"maybe\" (a string)"]}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.tcp.plugins.plugin_utils._inputs import check_variables


def tcp_check_vars(given, spec):
    try:
        values, errors = check_variables(spec, given)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("linuxnet.tcp.tcp_check_vars: %s" % exc) from None
    return {"vars": values, "errors": errors}


class FilterModule:
    """The linuxnet.tcp variable check filter."""

    def filters(self):
        return {"tcp_check_vars": tcp_check_vars}
