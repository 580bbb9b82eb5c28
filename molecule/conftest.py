"""Make this checkout importable as ``ansible_collections.linuxnet.tcp`` in the Molecule verifiers.

Molecule's testinfra verifier runs ``pytest .../molecule/<scenario>/tests/test_<scenario>.py`` from the scenario's
directory, with the repository's pytest.ini, so pytest loads this file before the tests, as it loads tests/conftest.py
for the rest of the suite. The verifiers then import what they share through the collection, as every other test
does: the container snapshot (molecule/default/tests/snapshot.py) and the screenshot helpers
(tests/integration/_chromium.py). The link .build/collections/ansible_collections/linuxnet/tcp is the one the
scenarios' plays run from (ANSIBLE_COLLECTIONS_PATH); `make link`, a prerequisite of `make molecule`, makes it.
"""
import os
import sys

import pytest

COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".build", "collections")

if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "linuxnet", "tcp")):
    pytest.exit("%s/ansible_collections/linuxnet/tcp is missing: run `make link` (or `make molecule`)" % COLLECTIONS, returncode=4)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
