# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rolling tune of playbooks/tune.yml: its batches, the counters' rates over a health window, the health rule
and where the roll stands after a batch (the summary users see).

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

The playbook measures and acts (tasks/tune_measure.yml, the tuning role); everything it decides from what it
measured is here, so that it can be tested without a playbook run: filters/tcp_tune_rates.py, tcp_tune_worse.py and
tcp_tune_roll.py hand it the hosts' variables.
"""
from __future__ import annotations

# A host's tcp_tune_host.status that is not a failure: judged healthy in the roll, or predicted in check mode.
_FINE = ("healthy", "checked")
STATE_DIR = "/var/lib/linuxnet-tcp"


class RollError(ValueError):
    """Input the roll cannot use (a serial value Ansible would refuse, a host without the first play's facts)."""


def batch_size(value, count):
    """Hosts in a batch for one ``serial`` value over ``count`` hosts, as ansible-core's ``pct_to_int``
    (lib/ansible/utils/helpers.py, the same in 2.16 to 2.21): "N%" is N % of the play's hosts rounded down, at
    least 1; anything else is ``int(value)``, and 0 or less means every host left."""
    try:
        if isinstance(value, str) and value.endswith("%"):
            return int((int(value.replace("%", "")) / 100.0) * count) or 1
        return int(value)
    except (TypeError, ValueError):
        raise RollError("tcp_tune_serial must be a number of hosts, a percentage (N%%) or a list of them, got %r"
                        % (value,)) from None


def batches(hosts, serial):
    """The play's hosts cut into batches as Ansible runs them: ansible-core's
    ``PlaybookExecutor._get_serialized_batches`` (lib/ansible/executor/playbook_executor.py, the same in 2.16 to
    2.21). ``serial`` is the play keyword's value: one value or a list of them, the last one repeated until every host
    has its batch; an empty list is one batch of every host. The play keyword makes a single value a list of one."""
    values = list(serial) if isinstance(serial, (list, tuple)) else [serial]
    values = values or [-1]
    left, out, index = list(hosts), [], 0
    while left:
        size = batch_size(values[index], len(hosts))
        if size <= 0:
            out.append(left)
            break
        out.append(left[:size])
        left = left[size:]
        index = min(index + 1, len(values) - 1)
    return out


def _number(value, kind, what):
    """``value`` as ``kind`` (int or float); null is 0 (a counter this kernel lacks reads null or is missing). Anything
    else that is not a number is an error: read as 0 it would hide a host that got worse."""
    if value is None:
        return kind(0)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise RollError("%s must be a number, got %r" % (what, value)) from None


def _setting(settings, name):
    """One of the playbook's converted variables (__tcp_tune.vars)."""
    try:
        return settings[name]
    except (KeyError, TypeError):
        raise RollError("the settings (the converted tcp_tune_* variables) lack %s" % name) from None


def rates(end, start, settings):
    """Events per second of each watched counter (tcp_tune_counters) over the window, {name: rate rounded to 3
    places}, in the order of the counters: (reading at the end - reading at the start) / tcp_tune_health_window
    seconds. A counter this kernel lacks reads 0 at both ends (its rate is 0)."""
    counters = _setting(settings, "tcp_tune_counters")
    window = _number(_setting(settings, "tcp_tune_health_window"), int, "tcp_tune_health_window")
    if window < 1:
        raise RollError("tcp_tune_health_window must be at least 1 second (got %s)" % window)
    end, start = end or {}, start or {}
    return {name: round((_number(end.get(name), int, "counter %s at the end of the window" % name)
                         - _number(start.get(name), int, "counter %s at the start of the window" % name)) / window, 3)
            for name in counters}


def worse(after, before, settings):
    """The health rule: the watched counters (tcp_tune_counters, in their order) whose rate after the change exceeds
    the rate before it x (1 + tcp_tune_tolerance) + tcp_tune_slack (events per second)."""
    after, before = after or {}, before or {}
    growth = 1 + _number(_setting(settings, "tcp_tune_tolerance"), float, "tcp_tune_tolerance")
    slack = _number(_setting(settings, "tcp_tune_slack"), float, "tcp_tune_slack")
    return [name for name in _setting(settings, "tcp_tune_counters")
            if _number(after.get(name), float, "rate of %s" % name) > _number(before.get(name), float, "rate of %s" % name) * growth + slack]


def _rates_text(host):
    """The watched counters that got worse on ``host`` with their rates: "ListenOverflows 0.0 -> 4.5 events/s ..."."""
    restored = host.get("restored")
    parts = []
    for name in host.get("worse") or []:
        text = "%s %s -> %s" % (name, host["before"][name], host["after"][name])
        parts.append(text + (" -> %s" % restored[name] if "restored" in host else ""))
    return ", ".join(parts) + " events/s (before -> tuned" + (" -> rolled back)" if "restored" in host else ")")


def _text(value):
    return str(value) if str(value) else '""'


def would_put_back(revert, result):
    """What a rollback would put back on a host in check mode, from the tuning role's tcp_tuning_revert (what this
    run changes) and tcp_tuning_result (the values it would write): "net.core.somaxconn 8192 -> 4096, remove
    /etc/sysctl.d/..."."""
    parts = []
    profile = revert.get("profile")
    if profile is not None:
        applied, restored = (result or {}).get("applied") or {}, (result or {}).get("restored") or {}
        for key, value in profile["runtime"].items():
            now = (applied[key] if key in applied else restored.get(key)) or {}
            parts.append("%s %s -> %s" % (key, _text(now.get("after", "?") if hasattr(now, "get") else "?"), _text(value)))
        for path, text in profile["files"].items():
            parts.append(("remove " if text is None else "put back ") + path)
        if profile["state"]["changed"]:
            parts.append(("remove " if profile["state"]["text"] is None else "put back ")
                         + "%s/sysctl-%s.json" % (STATE_DIR, profile["profile"]))
    timeouts = revert.get("ipvs_timeouts")
    if timeouts is not None:
        parts.append("IPVS timeouts %s %s %s" % (timeouts["tcp"], timeouts["tcpfin"], timeouts["udp"]))
    for item in revert.get("files") or []:
        parts.append(("remove " if item["before"] == "absent" else "put back ") + item["path"])
    for path in revert.get("directories") or []:
        parts.append("remove %s (if empty)" % path)
    return ", ".join(parts)


def _grouped(lines):
    """The revert summary's "verb: thing" lines grouped by verb: "restored a 1 -> 2, b 3 -> 4; removed /etc/x"."""
    things = {}
    for line in lines:
        verb, thing = line.split(": ", 1)
        things.setdefault(verb, []).append(thing)
    return "; ".join("%s %s" % (verb, ", ".join(items)) for verb, items in things.items())


def _undo(name, host, rollback):
    """What became of a worse or failed host's change: rolled back (and how it measured), or why not."""
    restore = "undo with ansible-playbook linuxnet.tcp.restore --limit %s" % name
    if "rolled_back" in host:
        text = "; " + _grouped(host["rolled_back"])
        if "restored_error" in host:
            return text + "; not measured after the rollback: %s" % host["restored_error"]
        if host.get("still_worse"):
            return text + "; still worse after the rollback (%s): the change may not be the cause" % ", ".join(host["still_worse"])
        return text
    if "rollback_error" in host:
        return '; the rollback failed at "%s": %s; it keeps what this run changed: %s' % (
            host.get("rollback_task"), host["rollback_error"], restore)
    if not host.get("changed"):
        return "; nothing to roll back: this run changed nothing on it"
    if not rollback:
        return "; left tuned (tcp_tune_rollback: false): " + restore
    return ""


def host_line(name, host, batch, rollback, reached, check=None):
    """One host's line of the summary. ``host`` is its tcp_tune_host (None: the roll never reached it), ``batch`` its
    batch number, ``rollback`` its tcp_tune_rollback, ``reached`` whether it is still in the play (not left out as
    unreachable), ``check`` its (tcp_tuning_revert, tcp_tuning_result) for a check-mode line."""
    at = "%s (batch %d)" % (name, batch)
    if host is None:
        return ("not reached: %s: the roll stopped before its batch" % at if reached
                else "left out: %s: it did not answer before the roll started" % name)
    status = host.get("status")
    if status == "started":
        return "lost: %s: unreachable during its batch; it may keep what this run changed" % at
    if status in _FINE and not host.get("changed"):
        return "nothing to change: " + at
    if status == "healthy" and not host.get("measured"):
        return ("tuned, not measured: %s: it changed although the check before the roll predicted no change (something "
                "else changed it meanwhile?)" % at)
    if status == "healthy":
        return "tuned and healthy: " + at
    if status == "checked":
        if rollback:
            return "check mode: %s: if it got worse, the rollback would put back %s" % (at, would_put_back(*check))
        return "check mode: %s: if it got worse, it would keep the change (tcp_tune_rollback: false)" % at
    what = ("got worse: " + _rates_text(host) if status == "worse"
            else 'failed at "%s": %s' % (host.get("task"), host.get("error")))
    if "rollback_error" in host:
        kind = "ROLLBACK FAILED"
    elif "rolled_back" in host:
        kind = "rolled back"
    else:
        kind = "worse, left tuned" if status == "worse" and host.get("changed") else status
    return "%s: %s: %s%s" % (kind, at, what, _undo(name, host, rollback))


def _failed(host):
    return (host or {}).get("status") not in _FINE


def roll(me, hosts, active, batch_now, info, rollback, settings, check_mode=False, check=None):
    """Where the roll stands after the batch of host ``me``, as tune.yml's summary task renders it.

    ``hosts``: the play's hosts (ansible_play_hosts_all); ``active``: those not failed or unreachable
    (ansible_play_hosts); ``batch_now``: the active hosts of this batch (ansible_play_batch); ``info``: each host's
    tcp_tune_host (None if the roll has not reached it); ``rollback``: each host's tcp_tune_rollback; ``settings``: the
    converted tcp_tune_* values (__tcp_tune.vars); ``check``: per host in check mode, (tcp_tuning_revert,
    tcp_tuning_result). Returns ends (this batch is the last one that runs), stops (its failures stop the roll),
    batch, batches, batch_hosts, by_host (one line per host) and lines (the summary: a header, one line per host,
    and one line for the hosts with nothing to change).
    """
    serial = _setting(settings, "tcp_tune_serial")
    cut = batches(hosts, serial)
    number_of = {name: number for number, part in enumerate(cut, 1) for name in part}
    number = number_of[me]
    batch = cut[number - 1]
    # Ansible's rules (PlaybookExecutor.run and the linear strategy's max_fail_percentage): the roll stops when the
    # failed hosts of a batch are more than max_fail_percentage % of it, or when every host of the batch failed or
    # was lost. Hosts left out before the roll count in the batch size but not as lost.
    max_fail = _number(_setting(settings, "tcp_tune_max_fail_percentage"), float, "tcp_tune_max_fail_percentage")
    failing = [name for name in batch if name in batch_now and _failed(info[name])]
    lost = [name for name in batch if name not in batch_now and info[name] is not None]
    stops = len(failing) / len(batch) > max_fail / 100 or len(failing) + len(lost) == len(batch)
    final = not any(name in active for part in cut[number:] for name in part)

    by_host = {name: host_line(name, info[name], number_of[name], rollback[name], name in active,
                               (check or {}).get(name)) for name in hosts}
    if check_mode:
        state = "check mode, nothing was changed"
    elif stops:
        state = "the roll stopped after batch %d of %d: %d of its %d host(s) failed" % (
            number, len(cut), len(failing) + len(lost), len(batch))
    else:
        reached = [host for host in info.values() if host is not None]
        failed = [host for host in reached if _failed(host)]
        state = "every batch done" + (", %d host(s) failed within max_fail_percentage" % len(failed) if failed else "")
        if not any(host.get("changed") for host in reached):
            state += ", nothing changed on any host (no health window needed)"
    on = sum(1 for name in hosts if rollback[name])
    header = "linuxnet.tcp.tune: %d host(s) in %d batch(es) (serial %s, max_fail_percentage %s, health window %s s, rollback %s): %s" % (
        len(hosts), len(cut), ", ".join(str(value) for value in (serial if isinstance(serial, (list, tuple)) else [serial])),
        "%d" % max_fail if max_fail == int(max_fail) else max_fail, _setting(settings, "tcp_tune_health_window"),
        "on" if on == len(hosts) else ("off" if on == 0 else "on for %d of %d hosts" % (on, len(hosts))), state)
    # One line per host, except the hosts with nothing to change, which share one.
    quiet = [name for name in hosts if by_host[name].startswith("nothing to change: ")]
    lines = [header] + [by_host[name] for name in hosts if name not in quiet]
    if quiet:
        lines.append("nothing to change (%d host(s)): %s" % (len(quiet), ", ".join(quiet)))
    return {"ends": stops or final, "stops": stops, "batch": number, "batches": len(cut), "batch_hosts": batch,
            "by_host": by_host, "lines": lines}
