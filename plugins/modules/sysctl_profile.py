#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sysctl_profile
short_description: Apply a set of sysctl settings as one kernel-aware, transactional profile
version_added: 0.1.0
description:
  - Applies a whole set of sysctl keys in one module run. Every key is validated, mapped from legacy names and
    classified against the running kernel before anything is written.
  - Runtime values are written directly under C(/proc/sys) as one transaction. Each write is read back. If a
    write fails, every key already written is restored, so the runtime is left as it was found.
  - Only values the kernel accepted are persisted, in one owned drop-in file,
    C(/etc/sysctl.d/90-linuxnet-<name>.conf) by default, written atomically. C(/etc/sysctl.conf) is never edited.
    Keys that need a kernel module are written with a leading C(-) so boot never fails on them.
  - Keys the kernel lacks (removed, module not loaded, global keys inside a container network namespace,
    read-only keys, read-only C(/proc/sys)) are skipped and reported in RV(skipped_keys) with the reason, or fail the run
    before any change with O(unsupported=fail).
  - Known-harmful values are refused unless O(allow_unsafe=true), see O(allow_unsafe).
  - The runtime values found before the first change are saved in C(/var/lib/linuxnet-tcp/sysctl-<name>.json)
    so O(state=absent) can restore them.
author:
  - linuxnet.tcp maintainers (@linuxnet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Check mode predicts the exact runtime changes and file content. A value the catalogue accepts but
      the kernel rejects (for example an unavailable congestion-control algorithm) is only found by writing.
  diff_mode:
    support: full
    details: Two diffs, the runtime values (C(key = value) lines for changed keys) and the drop-in file.
  platform:
    support: full
    platforms: [linux]
options:
  name:
    description:
      - Profile name. The drop-in file name and the state file name derive from it.
      - 1 to 64 characters of letters, digits, V(_), V(-) and V(.), starting with a letter or digit.
    type: str
    required: true
  settings:
    description:
      - Mapping of sysctl keys to values. Keys use dots or slashes as in sysctl.d(5), so
        V(net/ipv4/conf/eth0.100/forwarding) names an interface with a dot.
      - Values are strings or integers. Vectors such as V(4096 131072 16777216) are compared
        whitespace-insensitively and integers numerically.
      - A value written V(>= N) raises only, V(<= N) lowers only, compared against the running value
        (element-wise for vectors). The resolved value is what is applied and persisted.
      - Legacy names are mapped to the modern name, for example V(net.ipv4.ip_conntrack_max) to
        V(net.netfilter.nf_conntrack_max), and reported in RV(renamed).
      - Booleans, floats, lists, empty values and values containing a newline, NUL, V(=), V(#) or V(;) are refused.
      - Required when O(state=present).
    type: dict
  state:
    description:
      - V(present) applies and persists O(settings).
      - V(absent) removes the drop-in and restores the runtime values saved when the profile first changed them,
        except keys that another sysctl file now sets (reported in RV(not_restored)).
    type: str
    choices: [present, absent]
    default: present
  persist:
    description:
      - Write (or with O(state=absent) remove) the drop-in file.
    type: bool
    default: true
  apply:
    description:
      - Change runtime values under C(/proc/sys) (or with O(state=absent) restore them).
    type: bool
    default: true
  file:
    description:
      - Absolute path of the drop-in, overriding C(/etc/sysctl.d/90-linuxnet-<name>.conf). Must end in C(.conf).
        C(/etc/sysctl.conf) is refused.
      - A file outside the sysctl.d directories is not applied at boot; the module warns about it.
    type: path
  unsupported:
    description:
      - What to do with keys this kernel cannot take here (classifications other than V(ok)).
      - V(skip) skips them and reports each in RV(skipped_keys) with the reason.
      - V(fail) fails before any change, listing them.
    type: str
    choices: [skip, fail]
    default: skip
  allow_unsafe:
    description:
      - Apply known-harmful settings anyway (with a warning). By default they are refused and reported in
        RV(refused) with a suggestion; the rest of the profile is still applied.
      - The rules are V(net.ipv4.tcp_tw_recycle=1); V(net.ipv4.tcp_timestamps=0) while V(net.ipv4.tcp_tw_reuse) is on;
        lowering a capacity limit below the running value (V(net.ipv4.tcp_max_tw_buckets), V(net.ipv4.tcp_max_orphans),
        V(net.core.somaxconn), V(net.core.rmem_max), V(net.core.wmem_max), V(net.netfilter.nf_conntrack_max));
        V(net.ipv4.tcp_fin_timeout) below 10; V(net.ipv4.tcp_syn_retries) below 3; V(net.ipv4.ip_local_port_range)
        starting below V(net.ipv4.ip_unprivileged_port_start) or covering the port of a local TCP listener that is
        not in V(net.ipv4.ip_local_reserved_ports).
    type: bool
    default: false
notes:
  - Check mode and diff mode are fully supported. A second identical run reports no change and writes nothing.
  - Inside a container network namespace, global keys such as V(net.core.rmem_max) are skipped with
    classification V(global_in_child_netns); set them on the host.
  - Refused keys do not fail the task; they are reported in RV(refused) and as warnings.
seealso:
  - module: linuxnet.tcp.sysctl_facts
  - module: ansible.posix.sysctl
  - name: sysctl.d(5)
    description: Configuration file format and precedence used by systemd-sysctl.
    link: https://www.freedesktop.org/software/systemd/man/latest/sysctl.d.html
"""

EXAMPLES = r"""
- name: Apply a web tier profile, raising capacity limits only
  linuxnet.tcp.sysctl_profile:
    name: web
    settings:
      net.core.somaxconn: ">= 4096"
      net.ipv4.tcp_max_tw_buckets: ">= 262144"
      net.ipv4.ip_local_port_range: "10240 65535"
      net.ipv4.tcp_tw_reuse: 1
      net.ipv4.tcp_slow_start_after_idle: 0

- name: Legacy settings are mapped, skipped or refused instead of failing
  linuxnet.tcp.sysctl_profile:
    name: legacy
    settings:
      net.ipv4.tcp_tw_recycle: 1          # skipped: removed in 4.12
      net.ipv4.ip_conntrack_max: 262144   # mapped to net.netfilter.nf_conntrack_max
      net.ipv4.tcp_fin_timeout: 2         # refused with a suggestion
  register: legacy

- name: Runtime only, nothing persisted
  linuxnet.tcp.sysctl_profile:
    name: experiment
    persist: false
    settings:
      net.ipv4.tcp_notsent_lowat: 16384

- name: Fail instead of skipping keys this kernel lacks
  linuxnet.tcp.sysctl_profile:
    name: strict
    unsupported: fail
    settings:
      net.netfilter.nf_conntrack_tcp_timeout_established: 86400

- name: Remove the profile and restore the saved runtime values
  linuxnet.tcp.sysctl_profile:
    name: web
    state: absent
"""

RETURN = r"""
applied:
  description:
    - Keys the profile manages that the kernel accepts here, with the runtime value before and after the run
      (after equals before when nothing changed or O(apply=false)).
    - With O(state=absent), the keys restored.
    - Legacy names appear under their modern name.
  returned: always
  type: dict
  sample: {"net.core.somaxconn": {"before": "4096", "after": "4096"}, "net.ipv4.tcp_tw_reuse": {"before": "2", "after": "1"}}
skipped_keys:
  description:
    - Keys not applied because of what the kernel is here. (Not named C(skipped), which Ansible reserves to mark a
      whole task as skipped.) V(classification) is one of V(removed),
      V(module_not_loaded), V(global_in_child_netns), V(read_only), V(proc_sys_read_only), V(unknown_key).
    - V(replacement) is present for removed keys and says what to use instead.
  returned: always
  type: list
  elements: dict
  sample: [{"key": "net.ipv4.tcp_tw_recycle", "classification": "removed",
            "reason": "removed in Linux 4.12 (commit 4396e46187ca); it broke clients behind NAT",
            "replacement": "drop it; on hosts making many short outbound connections use net.ipv4.tcp_tw_reuse = 1"}]
refused:
  description: Known-harmful settings that were not applied or persisted, with the reason and a suggestion.
  returned: always
  type: list
  elements: dict
  sample: [{"key": "net.ipv4.tcp_fin_timeout", "value": "2",
            "reason": "tcp_fin_timeout below 10 s resets peers whose FIN arrives late and does not shorten TIME_WAIT (fixed 60 s)",
            "suggestion": "leave the default 60, or use 30 only when orphaned FIN_WAIT_2 sockets pile up"}]
renamed:
  description: Legacy key names mapped to their modern name (V(key) as given, V(to) as applied).
  returned: always
  type: list
  elements: dict
  sample: [{"key": "net.ipv4.ip_conntrack_max", "to": "net.netfilter.nf_conntrack_max"}]
persisted_file:
  description: Path of the drop-in, or V(null) when O(persist=false) or O(state=absent).
  returned: always
  type: str
  sample: /etc/sysctl.d/90-linuxnet-web.conf
overridden_at_boot:
  description:
    - Keys of this profile whose boot-time value comes from another file (a later file name, or a file of the
      same name in C(/etc/sysctl.d) shadowing ours), in systemd-sysctl order.
  returned: always
  type: list
  elements: dict
  sample: [{"key": "net.core.somaxconn", "file": "/etc/sysctl.d/99-sysctl.conf", "value": "1024"}]
not_restored:
  description: With O(state=absent), saved keys left alone because another sysctl file now sets them.
  returned: always
  type: list
  elements: dict
  sample: [{"key": "net.ipv4.tcp_keepalive_time", "file": "/usr/lib/sysctl.d/60-vendor.conf", "value": "600"}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import ApplyError, SysctlError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl_d import profile_absent, profile_present


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            settings=dict(type="dict"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            persist=dict(type="bool", default=True),
            apply=dict(type="bool", default=True),
            file=dict(type="path"),
            unsupported=dict(type="str", default="skip", choices=["skip", "fail"]),
            allow_unsafe=dict(type="bool", default=False),
        ),
        required_if=[("state", "present", ("settings",))],
        supports_check_mode=True,
    )
    p = module.params
    try:
        if p["state"] == "present":
            result = profile_present("/", p["name"], p["settings"], persist=p["persist"], apply=p["apply"], file=p["file"],
                                     unsupported=p["unsupported"], allow_unsafe=p["allow_unsafe"], check_mode=module.check_mode)
        else:
            result = profile_absent("/", p["name"], persist=p["persist"], apply=p["apply"], file=p["file"],
                                    check_mode=module.check_mode)
    except SysctlError as exc:
        module.fail_json(msg="nothing changed: %s" % exc)
    except ApplyError as exc:
        module.fail_json(msg=str(exc), key=exc.key, classification=exc.classification, rollback_failures=exc.rollback_failures)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
