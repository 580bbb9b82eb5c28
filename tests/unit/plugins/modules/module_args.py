"""``patch_module_args`` on every ansible-core the collection supports (the compatibility matrix runs these tests on
2.16 to 2.21): ansible-core 2.19 added ``ansible.module_utils.testing`` for it; before, a module read its arguments
from ``basic._ANSIBLE_ARGS``, which is what this stand-in sets, the way ansible-core's own tests of that era did."""
import contextlib
import json
from unittest import mock

try:
    from ansible.module_utils.testing import patch_module_args  # noqa: F401  pylint: disable=unused-import
except ImportError:  # ansible-core 2.18 and older
    from ansible.module_utils import basic

    @contextlib.contextmanager
    def patch_module_args(args=None):
        encoded = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
        with mock.patch.object(basic, "_ANSIBLE_ARGS", encoded):
            yield
