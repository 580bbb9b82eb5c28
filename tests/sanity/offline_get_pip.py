"""Offline stand-in for the ``get-pip.py`` bootstrap script that ansible-test downloads.

ansible-test bootstraps pip into each of its virtual environments with a script it fetches from
ci-files.testing.ansible.com, a host these build machines cannot reach. Its own error message says
the script may be saved to ``~/.ansible/test/cache/get_pip_<version>.py`` instead; this file is what
the sanity gate saves there. It does what get-pip does, from sources that are reachable: the pip
wheel bundled with CPython (``ensurepip``), then ``pip install`` of the exact pins ansible-test asks
for (``pip==<version>``) from the package index.
"""
from __future__ import annotations

import ensurepip
import os
import subprocess
import sys

# get-pip.py's own flags; pip itself does not know them.
GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")


def main():
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    # ensurepip points PIP_CONFIG_FILE at /dev/null for its own run; the real install that follows
    # must see the machine's pip configuration (index, CA bundle) again.
    saved = dict(os.environ)
    ensurepip.bootstrap(upgrade=True)
    # A separate process, so that pip may replace itself.
    return subprocess.call([sys.executable, "-m", "pip", "install", "--upgrade", "--force-reinstall"] + args, env=saved)


if __name__ == "__main__":
    sys.exit(main())
