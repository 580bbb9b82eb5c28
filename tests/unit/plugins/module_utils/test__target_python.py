"""The supported-interpreter check every module runs first (its refusal on a real Python 2.7 through
ansible-core 2.16 is run live by tests/matrix/test_matrix.py)."""
import sys

from ansible_collections.linuxnet.tcp.plugins.module_utils import _target_python


def test_supported_interpreters_pass():
    for version in ((3, 6, 15), (3, 8, 0), (3, 13, 0), (3, 14, 0)):
        assert _target_python.problem(version, "/usr/bin/python3") is None
    assert _target_python.problem() is None  # the interpreter running this test, and the import did not exit


def test_python2_gets_a_message_naming_interpreter_and_versions():
    message = _target_python.problem((2, 7, 18, "final", 0), "/usr/bin/python")
    assert message.startswith("linuxnet.tcp modules need Python 3.6 or later on the target (tested: 3.6 to 3.13); "
                              "/usr/bin/python is Python 2.7.18. Point ansible_python_interpreter at a Python 3")
    assert _target_python.problem((3, 5, 2), None).count(sys.executable) == 1
