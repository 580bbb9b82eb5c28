"""Run every Molecule scenario under molecule/ (podman driver, local Debian 11/12/13 images).

Each scenario is one test: `molecule test -s NAME`, whose own sequence holds converge, idempotence,
check mode and the testinfra verification. The whole Molecule output is shown when one fails.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "molecule", "*", "molecule.yml")))


@pytest.mark.containers
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario):
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""), NO_COLOR="1", ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"))
    result = subprocess.run([os.path.join(bin_dir, "molecule"), "test", "-s", scenario], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800, check=False)
    assert result.returncode == 0, result.stdout[-30000:]
