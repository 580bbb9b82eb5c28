"""Isolation for whole-module tests that share one pytest process with controller-side tests."""
import importlib

import pytest
from ansible.module_utils.common import warnings as module_warnings

try:
    module_utils_internal = importlib.import_module("ansible.module_utils._internal")
except ImportError:  # ansible-core 2.17 and older
    module_utils_internal = None


@pytest.fixture(autouse=True)
def target_side_module_runtime(monkeypatch):
    """Run each module as it runs on a target, with an empty warning registry.

    Importing controller code (the filter plugins' tests do) flips ansible-core's process-wide
    ``is_controller`` switch, after which ``module.warn()`` prints through the controller's Display
    instead of returning the warning in the module result. The registry itself de-duplicates across
    the whole process, so each test starts with a fresh one.
    """
    if hasattr(module_utils_internal, "is_controller"):  # ansible-core 2.19+; before, modules always return them
        monkeypatch.setattr(module_utils_internal, "is_controller", False)
    registry = type(module_warnings._global_warnings)  # a dict on ansible-core 2.19+, a list before
    monkeypatch.setattr(module_warnings, "_global_warnings", registry())
    monkeypatch.setattr(module_warnings, "_global_deprecations", registry())
