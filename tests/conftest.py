"""Make the collection importable as ``ansible_collections.linuxnet.tcp`` for pytest.

The repository root is the collection root. ``.build/collections/ansible_collections/linuxnet/tcp``
is a symlink back to it, so unit tests import the real files through the collection namespace,
exactly as Ansible does on a target.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "linuxnet", "tcp")

if not os.path.lexists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(os.path.relpath(ROOT, os.path.dirname(LINK)), LINK)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", COLLECTIONS)
