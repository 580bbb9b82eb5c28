"""What ``ansible-test sanity`` needs on these machines, for tests/sanity/test_gates.py and the compatibility matrix
(tests/matrix/test_matrix.py): a copy of the collection to run in, and its pip bootstrap script seeded offline."""
import glob
import os
import re
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tracked_files():
    """Files git would submit: tracked plus untracked-but-not-ignored (so local work is checked too)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                         stdout=subprocess.PIPE).stdout.decode()
    return sorted(p for p in out.split("\0") if p and os.path.isfile(os.path.join(ROOT, p)))


def copy_collection(base):
    """A copy (not a symlink: ansible-test refuses those) at BASE/ansible_collections/linuxnet/tcp, a git repository
    (ansible-test lists a collection's files through git when it is one). Returns its path."""
    dest = os.path.join(base, "ansible_collections", "linuxnet", "tcp")
    shutil.rmtree(dest, ignore_errors=True)
    for rel in tracked_files():
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), target)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    return dest


def seed_pip_bootstrap(site_packages):
    """Seed ansible-test's pip bootstrap cache for the ansible-test installed in SITE_PACKAGES, since its download
    host is unreachable here: offline_get_pip.py, under the name of every pip version that ansible-test asks for."""
    (path,) = glob.glob(os.path.join(site_packages, "ansible_test", "_internal", "python_requirements.py"))
    with open(path, encoding="utf-8") as handle:
        versions = sorted(set(re.findall(r"pip='([0-9.]+)'", handle.read())))
    assert versions, "no pip version found in " + path
    for version in versions:
        cache = os.path.expanduser("~/.ansible/test/cache/get_pip_%s.py" % version.replace(".", "_"))
        if not os.path.exists(cache):
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            shutil.copy(os.path.join(ROOT, "tests", "sanity", "offline_get_pip.py"), cache)
