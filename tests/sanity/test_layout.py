# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rules of docs/architecture.md that a reader cannot keep by eye, checked on the source itself.

Each test reads the files as text or syntax trees (nothing is imported), so a rule broken by a new file or a new
import fails here with the file and line, instead of being found in review.
"""
import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MU = os.path.join(ROOT, "plugins", "module_utils")
PREFIX = "ansible_collections.linuxnet.tcp.plugins."
UNIT_TESTS = os.path.join(ROOT, "tests", "unit", "plugins", "module_utils")

# What each package of module_utils may import from the others (a module name, or a package for all of it). The
# packages form layers: _common at the bottom, then _host, then the sysctl names and configuration (keys, catalog,
# conf), then _agents and _tcp, then the sysctl transaction and facts on top.
ALLOWED = {
    "_common": set(),
    "_target_python": set(),
    "_host": {"_common", "_host"},
    "_tcp": {"_common", "_host", "_tcp", "_sysctl.keys"},
    "_agents": {"_common", "_host", "_agents", "_sysctl.keys"},
    "_sysctl": {"_common", "_sysctl", "_agents.writers", "_tcp.sockets"},
}
# Within _sysctl, who may reach out of the package: the facts and the transaction's readings (profile), and the
# plan, which judges the writers it is given (writers.conflicts()).
OUTWARD = {"_agents.writers": {"_sysctl.facts", "_sysctl.profile", "_sysctl.plan"}, "_tcp.sockets": {"_sysctl.profile"}}
# The only files that change the host: /proc/sys (tree.py) and files (files.py).
WRITERS = {"_sysctl/tree.py", "_sysctl/files.py"}
WRITE_CALLS = {"rename", "replace", "unlink", "remove", "rmdir", "mkdir", "makedirs", "symlink", "link", "write",
               "ftruncate", "truncate", "chmod", "chown", "utime"}


def sources(top):
    for base, dirs, names in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                yield os.path.join(base, name)


def module_name(path):
    """``_sysctl.keys`` for plugins/module_utils/_sysctl/keys.py."""
    return os.path.relpath(path, MU)[:-3].replace(os.sep, ".")


def imports(path):
    """(line, module_utils module imported) for every import of the collection's module_utils in ``path``."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX + "module_utils"):
            base = node.module[len(PREFIX + "module_utils"):].lstrip(".")
            for alias in node.names:
                if not base:
                    yield node.lineno, alias.name
                elif base in ("_host", "_tcp", "_agents", "_sysctl"):
                    yield node.lineno, base + "." + alias.name
                else:
                    yield node.lineno, base
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            yield node.lineno, node.module[len(PREFIX):]


def test_packages_have_empty_init_files():
    for base, dirs, names in os.walk(MU):
        if base == MU or "__pycache__" in base:
            continue
        assert "__init__.py" in names, base
        assert os.path.getsize(os.path.join(base, "__init__.py")) == 0, base


def test_module_utils_imports_follow_the_layers():
    wrong = []
    for path in sources(MU):
        name = module_name(path)
        package = name.split(".")[0]
        for line, target in imports(path):
            allowed = ALLOWED[package]
            if not target.startswith("_"):  # plugin_utils, modules, filters, actions: never from target code
                wrong.append("%s:%d imports %s" % (name, line, target))
            elif target not in allowed and target.split(".")[0] not in allowed:
                wrong.append("%s:%d imports %s (%s may import %s)" % (name, line, target, package, sorted(allowed)))
            elif package == "_sysctl" and target in OUTWARD and name not in OUTWARD[target]:
                wrong.append("%s:%d imports %s (only %s may)" % (name, line, target, sorted(OUTWARD[target])))
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_no_import_cycle_between_modules():
    graph = dict((module_name(path), set(t for _line, t in imports(path) if t.startswith("_"))) for path in sources(MU))
    done, stack = set(), []

    def visit(node):
        if node in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(node):] + [node]))
        if node in done:
            return
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target in graph:
                visit(target)
        stack.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)


def test_modules_never_import_each_other():
    wrong = []
    for path in sources(os.path.join(ROOT, "plugins", "modules")):
        wrong += ["%s:%d imports %s" % (os.path.basename(path), line, target) for line, target in imports(path)
                  if target.startswith("modules")]
    assert not wrong, "\n".join(wrong)


def test_only_tree_and_files_change_the_host():
    wrong = []
    for path in sources(MU):
        rel = os.path.relpath(path, MU)
        if rel in WRITERS:
            continue
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("os", "shutil") \
                    and (func.attr in WRITE_CALLS or func.value.id == "shutil"):
                wrong.append("%s:%d %s.%s()" % (rel, node.lineno, func.value.id, func.attr))
            if isinstance(func, ast.Name) and func.id == "open" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) \
                    and re.search(r"[wax+]", str(node.args[1].value)):
                wrong.append("%s:%d open(..., %r)" % (rel, node.lineno, node.args[1].value))
    assert not wrong, "only %s write:\n%s" % (sorted(WRITERS), "\n".join(wrong))


def test_only_wire_knows_the_netlink_byte_layout():
    wrong = []
    for path in sources(os.path.join(MU, "_tcp")):
        if os.path.basename(path) == "wire.py":
            continue
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if re.search(r"\bstruct\.(Struct|pack|unpack|unpack_from|calcsize)\b", line):
                    wrong.append("%s:%d %s" % (os.path.relpath(path, MU), number, line.strip()))
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", [p for p in sources(MU) if not p.endswith("__init__.py")],
                         ids=lambda p: os.path.relpath(p, MU))
def test_unit_tests_mirror_module_utils(path):
    rel = os.path.relpath(path, MU)
    folder, name = os.path.split(rel)
    expected = os.path.join(UNIT_TESTS, folder, "test_" + name)
    assert os.path.isfile(expected), "%s has no unit tests at %s" % (rel, os.path.relpath(expected, ROOT))


def test_tests_never_edit_sys_path_or_import_other_test_modules():
    wrong = []
    allowed = {os.path.join("tests", "conftest.py"), os.path.join("molecule", "conftest.py")}
    for top in ("tests", "molecule", "benchmarks"):
        for path in sources(os.path.join(ROOT, top)):
            rel = os.path.relpath(path, ROOT)
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            if rel not in allowed and re.search(r"\bsys\.path\.(insert|append)\(", text):
                wrong.append("%s edits sys.path" % rel)
            for match in re.finditer(r"^\s*from ([\w.]+) import", text, re.M):
                if match.group(1).split(".")[-1].startswith("test_"):
                    wrong.append("%s imports the test module %s" % (rel, match.group(1)))
    assert not wrong, "\n".join(wrong)
