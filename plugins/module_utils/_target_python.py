# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The target Pythons the modules support, checked when a module starts (PRIVATE to the collection).

ansible-core 2.16 still runs modules with Python 2.7, and the rest of module_utils is Python 3 only: without
this check a 2.7 target fails with a SyntaxError traceback from whichever file it imports first. Each module
imports this file before any other of the collection's, so an unsupported interpreter gets one clear failure
instead (``fail_json``, before the module reads its options: nothing is changed), as ansible-core's own
``basic.py`` refuses an interpreter older than it supports.

Importing it is the check. So it must itself parse and run on Python 2: no f-strings, nothing else Python 3 only.
"""
import sys

from ansible.module_utils.basic import AnsibleModule, _load_params

MINIMUM = (3, 6)
TESTED = "3.6 to 3.13"


def problem(version_info=None, executable=None):
    """The failure message for an interpreter too old for the collection, or None when it is supported."""
    version_info = tuple(version_info or sys.version_info)
    if version_info[:2] >= MINIMUM:
        return None
    return ("linuxnet.tcp modules need Python %d.%d or later on the target (tested: %s); %s is Python %s. "
            "Point ansible_python_interpreter at a Python 3 of the host, for example /usr/libexec/platform-python "
            "on RHEL 8 or /usr/bin/python3 elsewhere."
            % (MINIMUM[0], MINIMUM[1], TESTED, executable or sys.executable or "the interpreter",
               ".".join(str(part) for part in version_info[:3])))


_PROBLEM = problem()
if _PROBLEM:
    # Whatever options the task gave are accepted as they are: the answer is this message, not an option error.
    _GIVEN = dict((name, {"type": "raw"}) for name in _load_params() if not name.startswith("_ansible_"))
    AnsibleModule(argument_spec=_GIVEN, supports_check_mode=True).fail_json(msg=_PROBLEM)
