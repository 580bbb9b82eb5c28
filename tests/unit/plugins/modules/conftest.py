"""Isolation for whole-module tests that share one pytest process with controller-side tests."""
from __future__ import annotations

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.common import warnings as module_warnings


@pytest.fixture(autouse=True)
def target_side_module_runtime(monkeypatch):
    """Run each module as it runs on a target, with an empty warning registry.

    Importing controller code (the filter plugins' tests do) flips ansible-core's process-wide
    ``is_controller`` switch, after which ``module.warn()`` prints through the controller's Display
    instead of returning the warning in the module result. The registry itself de-duplicates across
    the whole process, so each test starts with a fresh one.
    """
    monkeypatch.setattr(module_utils_internal, "is_controller", False)
    monkeypatch.setattr(module_warnings, "_global_warnings", {})
    monkeypatch.setattr(module_warnings, "_global_deprecations", {})
