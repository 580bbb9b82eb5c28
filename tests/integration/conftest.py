# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures shared by the integration tests (pytest loads this file; nothing imports it)."""
from __future__ import annotations

import pytest

from sysctl_lab import Lab


@pytest.fixture
def lab(tmp_path):
    """A sysctl lab (sysctl_lab.Lab): a throwaway network namespace and scratch sysctl directories, always deleted.

    A test module with a ``lab`` fixture of its own (test_diagnosis_real_software.py) overrides this one."""
    instance = Lab(tmp_path)
    try:
        yield instance
    finally:
        instance.close()
