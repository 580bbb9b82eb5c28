# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TuneD: the [sysctl] units of its active profile and of the profiles it includes (PRIVATE to the collection).

redhat-performance/tuned: tuned/consts.py (ACTIVE_PROFILE_FILE /etc/tuned/active_profile, a space
separated list; POST_LOADED_PROFILE_FILE; profile_dirs default [/usr/lib/tuned, /etc/tuned], later wins
(profiles/locator.py searches them reversed; tuned 2.23+ also uses .../profiles/); tuned/profiles/loader.py
(include= split on , or ;, includes loaded before the profile, a file loaded once); profiles/merger.py
(units merged in order, replace=1 drops the older unit's options); plugins/plugin_sysctl.py (keys of a
[sysctl] unit or of any unit with type=sysctl; ">"/"<" prefixed values are "at least"/"at most").
tuned-main.conf reapply_sysctl (default 1) re-applies /run/sysctl.d, /etc/sysctl.d (plugin_sysctl.py
SYSCTL_CONFIG_DIRS) and /etc/sysctl.conf after the profile, so there a sysctl.d value wins over the
profile's when tuned starts: such keys yield to sysctl.d (YIELDS_TO_SYSCTL_D).
"""

import os
import re

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import target
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.parsers import ini, parse_bool
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.records import LOWERS, RAISES, SETS, YIELDS_TO_SYSCTL_D, new_agent, set_key
from ansible_collections.linuxnet.tcp.plugins.module_utils._common import read_text

TUNED_DIRS = ("/usr/lib/tuned", "/usr/lib/tuned/profiles", "/etc/tuned", "/etc/tuned/profiles")
_TUNED_UNIT_OPTIONS = frozenset(("type", "replace", "enabled", "devices", "devices_udev_regex", "script_pre",
                                 "script_post", "priority", "drop", "uname_regex", "cpuinfo_regex", "instance_priority"))


def _profiles(root):
    names = (read_text(root, "/etc/tuned/active_profile") or "").split()
    names += (read_text(root, "/etc/tuned/post_loaded_profile") or "").split()
    return [n for n in names if re.match(r"^[a-zA-Z0-9_.-]+$", n)]


def _dirs(root):
    main = ini(read_text(root, "/etc/tuned/tuned-main.conf")).get("", {})
    dirs = [d.strip() for d in re.split(r"[,;]", main.get("profile_dirs", "")) if d.strip()]
    return (dirs or list(TUNED_DIRS)), parse_bool(main.get("reapply_sysctl", "1")) is not False


def _subjects(root):
    """What uname_regex and cpuinfo_regex are matched against, read on first use and then kept (one detect() run)."""
    cache = {}

    def subject(option):
        if option not in cache:
            if option == "uname_regex":
                cache[option] = " ".join(filter(None, ((read_text(root, "/proc/sys/kernel/%s" % f) or "").strip()
                                                       for f in ("ostype", "hostname", "osrelease", "version", "arch"))))
            else:
                cache[option] = read_text(root, "/proc/cpuinfo")
        return cache[option]
    return subject


def _unit_applies(unit, subject):
    """Evaluate uname_regex/cpuinfo_regex where the tree allows; None when it cannot tell. ``subject`` is _subjects()."""
    verdict = True
    for option in ("uname_regex", "cpuinfo_regex"):
        pattern = unit.get(option)
        if pattern is None:
            continue
        subject_text = subject(option)
        if "${" in pattern or not subject_text:
            verdict = None
            continue
        try:
            if not re.search(pattern, subject_text):
                return False
        except re.error:
            verdict = None  # a pattern Python's re does not take: the unit may apply, said in the key's source
    return verdict


def detect(root, procs):
    """TuneD's record when tuned runs or is enabled and a profile is active: the keys of its merged [sysctl] units."""
    found = target.instances(root, procs, ("tuned",), "tuned.service")
    names = _profiles(root)
    if not found or not names:
        return []
    dirs, reapply = _dirs(root)
    loaded, files = [], []

    def load(name, depth):
        path = text = None
        for directory in reversed(dirs):
            candidate = "%s/%s/tuned.conf" % (directory.rstrip("/"), os.path.basename(name))
            if candidate in files:
                continue
            text = read_text(root, candidate)
            if text is not None:
                path = candidate
                break
        if path is None or depth > 20:
            return
        files.append(path)
        config = ini(text, inline_comments=True)
        include = config.get("main", {}).get("include")
        if include:
            for parent in re.split(r"\s*[,;]\s*", include.strip()):
                if parent and "${" not in parent:
                    load(parent, depth + 1)
        loaded.append((name, path, config))

    for name in names:
        load(name, 0)
    merged = {}  # unit name -> {"type", "options": {key: (value, path)}, "unit": raw}
    for _name, path, config in loaded:
        for unit, options in config.items():
            if unit in ("", "main", "variables"):
                continue
            if unit not in merged or parse_bool(options.get("replace")):
                merged[unit] = {"type": unit, "options": {}, "unit": {}}
            slot = merged[unit]
            slot["type"] = options.get("type") or slot["type"]  # a unit's type defaults to its name
            slot["unit"].update(options)
            for dropped in re.split(r"[,\s]+", options.get("drop", "")):
                slot["options"].pop(dropped, None)
            for key, value in options.items():
                if key not in _TUNED_UNIT_OPTIONS:
                    slot["options"][key] = (value, path)
    active = " ".join(names)
    advice = ("TuneD applies its profile when tuned starts; put the value in the [sysctl] section of your own profile "
              "(for example /etc/tuned/<name>/tuned.conf with include=%s, then tuned-adm profile <name>)" % names[0])
    evidence = "%s; active profile %s (/etc/tuned/active_profile)" % (target.evidence(found[0], "tuned.service"), active)
    agent = new_agent("tuned", found[0]["pid"], evidence, advice + ".")
    subject = _subjects(root)
    for unit, slot in merged.items():
        if slot["type"] != "sysctl" or parse_bool(slot["unit"].get("enabled")) is False:
            continue
        applies = _unit_applies(slot["unit"], subject)
        if applies is False:
            continue
        for key, (value, path) in slot["options"].items():
            note = "TuneD profile %s sets it in [%s] of %s" % (active, unit, path)
            if applies is None:
                note += " (the unit has a uname/cpuinfo condition not evaluated here)"
            value = _unquote(value)
            # plugins/base.py _process_assignment_modifiers(): ">N" writes N only above the current value, "<N" only
            # below it (an integer comparison; anything else is written as it stands).
            conditional = re.match(r"^([<>])\s*-?[0-9]+\s*$", value)
            op = {">": RAISES, "<": LOWERS}[conditional.group(1)] if conditional else SETS
            if reapply:
                note += ("; reapply_sysctl=1 re-applies /etc/sysctl.d and /run/sysctl.d afterwards, so a value there "
                         "wins at tuned start")
            set_key(agent, key, value, note, advice + ", or drop %s from %s" % (key, path), op=op,
                    yields=YIELDS_TO_SYSCTL_D if reapply else None)
    return [agent]


def _unquote(value):
    value = (value or "").strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return " ".join(value.split())
