"""The option tables of the docs say what the modules and roles accept, and the docs' links lead somewhere.

The reference is what ``ansible-doc`` shows: each module's ``DOCUMENTATION`` (the YAML string literal of
``plugins/modules/*.py``, read from the syntax tree as ansible-doc reads it, without importing the module) and
each role's ``meta/argument_specs.yml``, entry point by entry point.

An option table in ``README.md`` or ``docs/*.md`` is marked by the HTML comment on the line before it, which
says whose options it lists:

    <!-- options: module sysctl_profile -->
    <!-- options: role tuning main check -->     (one table for entry points that take the same variables)

and has the columns ``option`` (or ``variable``), ``type``, ``default`` and a description, in that order. The test
fails naming every option missing from its table, every row the module or role does not have, every type and
every default that differs, and every module or role entry point that has no table at all. A default cell is
either a value in backticks (YAML: `` `[]` ``, `` `60` ``, `` `"{{ x }}/y"` ``; a ``{{ ... }}`` in the spec's
default matches any text there), ``required`` (the spec says ``required: true``), ``required for ...`` (required
only with some other value: the spec has neither a default nor ``required``) or ``none`` (no default), any of
them followed by a comment.

The other tests check every relative link of the same documents and the roles' READMEs (the file must exist and
an ``#anchor`` must be a heading of that file, spelt as GitHub makes anchors from headings), that no internal issue
number is left in a user's document, and that the compatibility table of the README equals docs/compatibility.md's.
"""
from __future__ import annotations

import ast
import glob
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
MARKER = re.compile(r"^<!--\s*options:\s*(module|role)\s+([\w.]+)((?:\s+\w+)*)\s*-->\s*$")
# Fragments whose content is attributes only (no options): the options of a module are then its DOCUMENTATION's.
ATTRIBUTE_FRAGMENTS = {"ansible.builtin.action_common_attributes", "ansible.builtin.action_common_attributes.facts",
                       "ansible.builtin.action_common_attributes.flow"}
FENCE = re.compile(r"^(```|~~~)")


def module_docs():
    """{module name: options} from DOCUMENTATION, as ansible-doc reads it (the literal, not an import)."""
    found = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))):
        name = os.path.basename(path)[:-3]
        if name.startswith("_"):
            continue
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        literal = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
                   and any(getattr(t, "id", None) == "DOCUMENTATION" for t in node.targets)]
        assert len(literal) == 1, "%s: no single DOCUMENTATION string" % path
        doc = yaml.safe_load(literal[0])
        fragments = set(doc.get("extends_documentation_fragment") or [])
        assert fragments <= ATTRIBUTE_FRAGMENTS, (
            "%s uses documentation fragments %s whose options this test does not read: teach it to merge them"
            % (path, sorted(fragments - ATTRIBUTE_FRAGMENTS)))
        found[name] = doc.get("options") or {}
    return found


def role_specs():
    """{(role, entry point): options} from the roles' meta/argument_specs.yml."""
    found = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml"))):
        role = os.path.basename(os.path.dirname(os.path.dirname(path)))
        with open(path, encoding="utf-8") as handle:
            specs = yaml.safe_load(handle)["argument_specs"]
        for entry, spec in specs.items():
            found[(role, entry)] = spec.get("options") or {}
    return found


def _outside_fences(text):
    """(line number, line) of the lines that are not inside a fenced code block."""
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line.strip()):
            inside = not inside
            continue
        if not inside:
            yield number, line


def _cells(line):
    """The cells of a Markdown table row; a backslash-escaped pipe stays in its cell."""
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def marked_tables():
    """[(where, kind, name, entry points, header, rows)] of every marked table of the docs."""
    tables = []
    for rel in DOCS:
        with open(os.path.join(ROOT, rel), encoding="utf-8") as handle:
            lines = list(_outside_fences(handle.read()))
        for index, (number, line) in enumerate(lines):
            match = MARKER.match(line.strip())
            if not match:
                continue
            kind, name, entries = match.group(1), match.group(2), match.group(3).split()
            rows = []
            for _n, row in lines[index + 1:]:
                if not row.strip().startswith("|"):
                    break
                rows.append(_cells(row))
            where = "%s:%d" % (rel, number)
            assert len(rows) >= 2, "%s: the options marker is not followed by a table" % where
            tables.append((where, kind, name, entries or ["main"], [c.lower() for c in rows[0]], rows[2:]))
    return tables


def _unquote(cell):
    return cell.strip().strip("`").strip()


def _template_pattern(default):
    """A regex matching the default with every ``{{ ... }}`` left open (what a user sees depends on it)."""
    parts = re.split(r"\{\{.*?\}\}", default)
    return re.compile("^" + ".+".join(re.escape(part) for part in parts) + "$", re.S)


def default_problem(cell, spec):
    """Why a default cell does not say the spec's default, or None."""
    words = cell.lower()
    default, required = spec.get("default"), bool(spec.get("required"))
    if words == "required" or words.startswith("required "):
        if words == "required" or words.startswith("required,") or words.startswith("required ("):
            return None if required else "the table says required, the spec does not"
        # "required for ...": required only with some other option's value
        return None if not required and default is None else "the table says required for some case, the spec has %r" % (
            "required" if required else default)
    if words == "none" or words.startswith("none ") or words.startswith("none,") or words.startswith("none:"):
        if required:
            return "the table says no default, the spec says required"
        return None if default is None else "the table says no default, the spec has %r" % (default,)
    literal = re.match(r"^`([^`]*)`", cell)
    if not literal:
        return "the default cell must start with a value in backticks, required, required for ... or none; got %r" % cell
    text = literal.group(1)
    if isinstance(default, str) and "{{" in default:
        return None if text == default or _template_pattern(default).match(text) else "table %r, spec %r" % (text, default)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        return "%r is not YAML: %s" % (text, error)
    if required:
        return "the table has the default %r, the spec says required" % (value,)
    if spec.get("type") == "float" and isinstance(value, (int, float)) and isinstance(default, (int, float)):
        return None if float(value) == float(default) else "table %r, spec %r" % (value, default)
    if spec.get("type") in ("str", "path") and value is not None and default is not None:
        value = str(value)
    return None if value == default else "table %r, spec %r" % (value, default)


def table_problems(where, header, rows, options):
    """Every disagreement between one table and the options it lists."""
    problems = []
    if header[:3] not in (["option", "type", "default"], ["variable", "type", "default"]):
        return ["%s: the columns must start with option (or variable), type, default; got %s" % (where, header)]
    listed = {}
    for row in rows:
        name = _unquote(row[0])
        if name in listed:
            problems.append("%s: %s is listed twice" % (where, name))
        listed[name] = row
    for name in sorted(set(options) - set(listed)):
        problems.append("%s: option %s is missing from the table" % (where, name))
    for name in sorted(set(listed) - set(options)):
        problems.append("%s: the table lists %s, which the spec does not have" % (where, name))
    for name in sorted(set(listed) & set(options)):
        spec, row = options[name], listed[name]
        table_type, spec_type = _unquote(row[1]), spec.get("type", "str")
        if spec.get("elements"):
            spec_type = "%s of %s" % (spec_type, spec["elements"])
        if table_type != spec_type:
            problems.append("%s: %s has type %r in the table, %r in the spec" % (where, name, table_type, spec_type))
        problem = default_problem(row[2], spec)
        if problem:
            problems.append("%s: default of %s: %s" % (where, name, problem))
    return problems


def test_option_tables_match_the_specs():
    modules, roles = module_docs(), role_specs()
    problems, covered = [], set()
    for where, kind, name, entries, header, rows in marked_tables():
        if kind == "module":
            if name not in modules:
                problems.append("%s: no module %s" % (where, name))
                continue
            covered.add(("module", name))
            problems += table_problems(where, header, rows, modules[name])
            continue
        for entry in entries:
            if (name, entry) not in roles:
                problems.append("%s: role %s has no entry point %s" % (where, name, entry))
                continue
            covered.add(("role", name, entry))
            problems += table_problems("%s (entry point %s)" % (where, entry), header, rows, roles[(name, entry)])
    wanted = {("module", name) for name in modules} | {("role",) + key for key in roles}
    for missing in sorted(wanted - covered):
        problems.append("no option table in README.md or docs/*.md for %s" % " ".join(missing))
    assert not problems, "\n".join(problems)


def github_anchor(heading, seen):
    """The anchor GitHub gives a heading: lower case, markup and punctuation dropped, spaces to hyphens, and a
    -1, -2 ... suffix for repeats."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    slug = re.sub(r"[^\w\- ]", "", text.strip().lower().replace("`", "")).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else "%s-%d" % (slug, count)


def anchors(path):
    seen, found = {}, set()
    with open(path, encoding="utf-8") as handle:
        for _number, line in _outside_fences(handle.read()):
            heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if heading:
                found.add(github_anchor(heading.group(1), seen))
    return found


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


@pytest.mark.parametrize("rel", DOCS + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "roles", "*", "README.md"))))
def test_links_lead_somewhere(rel):
    path = os.path.join(ROOT, rel)
    broken = []
    with open(path, encoding="utf-8") as handle:
        lines = list(_outside_fences(handle.read()))
    for number, line in lines:
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto: ...: not checked offline
            file_part, _hash, anchor = target.partition("#")
            target_path = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not os.path.exists(target_path):
                broken.append("%s:%d: %s: no file %s" % (rel, number, target, os.path.relpath(target_path, ROOT)))
            elif anchor and target_path.endswith(".md") and anchor not in anchors(target_path):
                broken.append("%s:%d: %s: no heading with the anchor #%s" % (rel, number, target, anchor))
    assert not broken, "\n".join(broken)


def test_no_internal_issue_numbers_in_user_docs():
    """Users cannot look up the project's internal issue numbers: the docs say what changed instead."""
    found = []
    for rel in DOCS:
        if rel == os.path.join("docs", "architecture.md"):
            continue  # the maintainers' map
        with open(os.path.join(ROOT, rel), encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if re.search(r"\bissues? \d+|\bthis issue\b", line, re.I):
                    found.append("%s:%d: %s" % (rel, number, line.strip()))
    assert not found, "\n".join(found)


def _matrix_table(rel):
    """The rows of the compatibility matrix's table (tests/matrix/matrix.py table) in one document."""
    with open(os.path.join(ROOT, rel), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    start = [i for i, line in enumerate(lines) if line.startswith("| ansible-core | controller Python |")]
    assert len(start) == 1, "%s: no single compatibility table" % rel
    rows = []
    for line in lines[start[0]:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_the_compatibility_table_is_the_same_in_the_readme_and_its_page():
    """README.md shows the matrix's last run as docs/compatibility.md does: a new run is pasted into both."""
    assert _matrix_table("README.md") == _matrix_table(os.path.join("docs", "compatibility.md"))
