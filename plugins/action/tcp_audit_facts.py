# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action of linuxnet.tcp.tcp_audit_facts (documented in plugins/modules/tcp_audit_facts.py).

Why an action: the audit's per-host cost at fleet scale is Ansible's per-task cost (variables, a worker process,
callbacks), not the modules. One task that runs both fact modules and evaluates the rules replaces the gather,
gather, check and diagnose tasks of the role.
"""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.linuxnet.tcp.plugins.plugin_utils._rules import RuleError, diagnose

# The small options go through Ansible's validator. The rules and overrides are checked by the rule engine itself
# (every key, with messages naming the rule): the validator deep-copies its input, which for twenty rules costs
# more than the diagnosis, on every host.
ARGUMENT_SPEC = {
    "gather": {"type": "bool", "default": True},
    "top": {"type": "int", "default": 10},
    "processes": {"type": "bool", "default": True},
    "namespaces": {"type": "str", "default": "current", "choices": ["current", "all"]},
    "sysctl_keys": {"type": "list", "elements": "str"},
}
RULE_ARGS = ("rules", "overrides")
# `-i localhost,` (make demo) makes localhost an ordinary inventory host, so Ansible would discover an interpreter
# there (the first python3.N on PATH, whatever it is) instead of using its own Python as it does for the implicit
# localhost. There the controller's Python is used, unless the inventory names an interpreter, and it is returned
# as the fact interpreter discovery would have set (discovered_interpreter_python), so the role's later tasks on
# that host (local facts, textfile) use it too.
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC) | frozenset(RULE_ARGS)

    def _gather(self, task_vars, args):
        """{tcp, sysctl} from the two fact modules, run on one connection and one remote temporary directory."""
        task_vars = task_vars or {}
        facts = {}
        if (task_vars.get("inventory_hostname") in LOCAL_NAMES and "ansible_python_interpreter" not in task_vars
                and task_vars.get("ansible_playbook_python")
                and "discovered_interpreter_python" not in (task_vars.get("ansible_facts") or {})):
            facts["discovered_interpreter_python"] = task_vars["ansible_playbook_python"]
            task_vars = dict(task_vars, ansible_python_interpreter=task_vars["ansible_playbook_python"])
        calls = (
            ("linuxnet.tcp.tcp_facts", {"top": args["top"], "processes": args["processes"], "namespaces": args["namespaces"]}),
            ("linuxnet.tcp.sysctl_facts", {"keys": args["sysctl_keys"]} if args["sysctl_keys"] is not None else {}),
        )
        try:
            for module, module_args in calls:
                result = self._execute_module(module_name=module, module_args=module_args, task_vars=task_vars,
                                              wrap_async=False)
                if result.get("failed"):
                    raise AnsibleActionFail("%s failed: %s" % (module, result.get("msg", "no message")), result=result)
                facts.update(result.get("ansible_facts") or {})
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return facts

    def _arguments(self):
        small = {key: value for key, value in self._task.args.items() if key not in RULE_ARGS}
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(small)
        if validation.error_messages:
            raise AnsibleActionFail("; ".join(validation.error_messages))
        args = dict(validation.validated_parameters)
        if "rules" not in self._task.args:
            raise AnsibleActionFail("missing required arguments: rules")
        args["rules"] = self._task.args["rules"]
        args["overrides"] = self._task.args.get("overrides") or {}
        return args

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # not used
        args = self._arguments()
        if args["top"] < 0:
            raise AnsibleActionFail("top must be 0 or a positive integer, got %d" % args["top"])
        if args["gather"]:
            facts = self._gather(task_vars, args)
        else:
            known = (task_vars or {}).get("ansible_facts") or {}
            missing = [name for name in ("tcp", "sysctl") if not known.get(name)]
            if missing:
                raise AnsibleActionFail(
                    "gather is false, so ansible_facts.%s must come from an earlier linuxnet.tcp.tcp_facts and "
                    "linuxnet.tcp.sysctl_facts run (or from the fact cache); this host has no ansible_facts.%s"
                    % (" and ansible_facts.".join(missing), " or ansible_facts.".join(missing)))
            facts = {"tcp": known["tcp"], "sysctl": known["sysctl"]}
        try:
            findings = diagnose(facts, args["rules"], args["overrides"])
        except RuleError as exc:
            raise AnsibleActionFail("linuxnet.tcp.tcp_audit_facts: %s" % exc) from None
        returned = dict(facts) if args["gather"] else {}
        returned["tcp_findings"] = findings
        result.update(changed=False, ansible_facts=returned)
        return result
