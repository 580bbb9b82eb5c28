#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


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
  - Every run writes ahead - the state file, holding the original of every value the run may change, is on disk
    (written atomically and synced) before the first runtime value or file changes, and it loses an original only
    once that value is back. A run killed at any instant, or a host that crashes or loses power, leaves every original on disk,
    and the next run (V(present) or V(absent)) finds the interrupted run's journal, takes the profile on from there
    and reports it in RV(recovered).
  - One run at a time per host - a run holds an exclusive lock (C(/var/lib/linuxnet-tcp/sysctl.lock), C(flock)) from
    its plan to its last write, so two runs that share keys (two playbooks, AWX and a person) take turns. See
    O(lock_timeout).
  - A failed write (a full or read-only file system) fails the task after everything written was rolled back, with a
    message naming the path, the error (C(ENOSPC), C(EROFS)) and what was rolled back, and the path and the error
    name in C(error_path) and C(errno).
  - Kernel modules the keys need (O(modules)) are loaded now in the initial network namespace and at every boot
    through the profile's C(modules-load.d) file, so a profile of conntrack or IPVS keys applies in one run and
    survives a reboot.
  - On a read-only C(/proc/sys) (an unprivileged container) nothing is written at all, neither the runtime nor any
    file, because systemd-sysctl skips such a C(/proc/sys) at boot too; every key is reported in RV(skipped_keys).
author:
  - linuxnet.tcp maintainers (@linuxnet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Check mode predicts the exact runtime changes and file content. A value the catalogue accepts but
      the kernel rejects (for example an unavailable congestion-control algorithm) is only found by writing.
      Check mode does not load O(modules); keys that need a module a real run would load are reported as
      V(module_not_loaded) with a note, and the run reports V(changed). Check mode writes nothing, not even the lock file;
      while a real run is under way it waits for it (a shared lock, up to O(lock_timeout)) so it never plans from a
      transaction half done, and it holds a real run up only for as long as it plans.
  diff_mode:
    support: full
    details: The runtime values (C(key = value) lines for changed keys) and every file the run writes or removes
      (the drop-in, the C(modules-load.d) and C(modprobe.d) files).
  platform:
    support: full
    platforms: [linux]
options:
  name:
    description:
      - Profile name. The drop-in file name and the state file name derive from it.
      - 1 to 64 characters of letters, digits, V(_), V(-) and V(.), starting with a letter or digit, without V(..).
        Nothing else, not even a trailing newline.
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
      - A key that an earlier run of this profile changed and that O(settings) no longer name is restored to the
        runtime value saved before that run, unless another sysctl file now sets it; see RV(restored).
    type: dict
  state:
    description:
      - V(present) applies and persists O(settings).
      - V(absent) removes the drop-in, the C(modules-load.d) and C(modprobe.d) files of the profile, and restores
        the runtime values saved when the profile first changed them,
        except keys that another sysctl file now sets (reported in RV(not_restored)).
      - V(reverted) puts back exactly what one earlier run of this profile changed, from the RV(revert) result of
        that run given as O(revert). That is the runtime values it wrote, the files it wrote or removed and the state file.
        A rolling deployment uses it to undo a batch that got worse.
    type: str
    choices: [present, absent, reverted]
    default: present
  revert:
    description:
      - With O(state=reverted), the RV(revert) result of the run to undo, as registered.
      - Only the files of this profile (O(name)) are accepted, and only texts that this collection wrote.
    type: dict
  persist:
    description:
      - Write (or with O(state=absent) remove) the drop-in file and the profile's C(modules-load.d) and
        C(modprobe.d) files.
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
      - A normalised path (no V(..), V(//) or trailing V(/.)) without control characters (newline, NUL, ...), whose file
        name does not start with V(.) (boot never reads hidden files, and this collection's temporary files are named so).
      - A file outside the sysctl.d directories is not applied at boot; the module warns about it.
    type: path
  unsupported:
    description:
      - What to do with keys this kernel cannot take here (classifications other than V(ok)), and with keys another
        agent on the host rewrites with another value (classification V(owned_by_agent), see O(force_owned_keys)).
      - V(skip) skips them and reports each in RV(skipped_keys) with the reason.
      - V(fail) fails before any change, listing them.
    type: str
    choices: [skip, fail]
    default: skip
  modules:
    description:
      - Kernel modules the O(settings) need, for example V(nf_conntrack) for C(net.netfilter.*) keys and V(ip_vs)
        for C(net.ipv4.vs.*) keys.
      - With O(persist=true) they are listed in C(/etc/modules-load.d/90-linuxnet-<name>.conf), so
        systemd-modules-load loads them before systemd-sysctl applies the drop-in at boot. The file is removed
        when the list is empty.
      - With O(load_modules=true) and O(apply=true), missing modules are loaded now with C(modprobe) before the
        keys are classified, so their keys apply in this run. Only in the initial network namespace, because
        inside a container the host owns kernel modules. A module is never unloaded, not even by O(state=absent).
    type: list
    elements: str
    default: []
  module_options:
    description:
      - Parameters of kernel modules, as a mapping of module name to a mapping of parameter to value, written
        as C(options) lines to C(/etc/modprobe.d/90-linuxnet-<name>.conf) with O(persist=true). They take
        effect the next time the module is loaded, for example C(hashsize=262144) for V(nf_conntrack) (see the examples).
      - Values are integers or single tokens of letters, digits and the characters C(_.,:/+-).
    type: dict
    default: {}
  load_modules:
    description:
      - Load the missing O(modules) now with C(modprobe) (initial network namespace only).
    type: bool
    default: true
  reserve_listener_ports:
    description:
      - When O(settings) set C(net.ipv4.ip_local_port_range), add the ports of local TCP listeners inside the
        new range to C(net.ipv4.ip_local_reserved_ports), so an outbound connection can never take the port of
        a service that restarts. Ports reserved now are kept, unless O(settings) give
        C(net.ipv4.ip_local_reserved_ports) a plain value, which then gets the listeners added. The key is managed
        (and persisted) from then on; the ports are returned in RV(reserved_for_listeners).
      - Without it, a range over a local listener is refused, see O(allow_unsafe).
      - A value written V(>= 8080,9100-9110) for C(net.ipv4.ip_local_reserved_ports) adds ports the same way
        without this option.
    type: bool
    default: false
  force_owned_keys:
    description:
      - Keys to apply even though another agent on the host rewrites them with another value at runtime. By default such
        a key is skipped with classification V(owned_by_agent) and a reason naming the agent, where it takes the value
        from and where to change it instead (for example kube-proxy's C(--conntrack-tcp-timeout-established) or
        C(conntrack.maxPerCore), dockerd's C(ip-forward), a TuneD profile's C([sysctl]) section), because the agent would
        write its own value again at its next start and the two would take turns.
      - Agents detected from the target alone, see RV(linuxnet.tcp.sysctl_facts#module:ansible_facts.sysctl.writers).
      - Both key spellings are accepted. A forced key is applied with a warning. There is no warning for a listed key
        that was not in fact forced (the agent sets the same value, or the key is skipped or refused for another reason).
    type: list
    elements: str
    default: []
  lock_timeout:
    description:
      - Seconds to wait for the host lock while another run of this module holds it (see the description). When they
        pass, the task fails before any change, naming the lock file and the pid of the run that holds it.
      - V(0) does not wait.
    type: int
    default: 60
  allow_unsafe:
    description:
      - Apply known-harmful settings anyway (with a warning). By default they are refused and reported in
        RV(refused) with a suggestion; the rest of the profile is still applied.
      - The rules are the collection's safety table (C(plugins/module_utils/_sysctl/safety.py), which the
        C(linuxnet.tcp.tuning) role applies too), judged on the values the run would write, after legacy names are
        mapped and C(>=)/C(<=) resolved; at most one refusal per key.
      - V(net.ipv4.tcp_tw_recycle) other than 0; V(net.ipv4.tcp_timestamps=0) while V(net.ipv4.tcp_tw_reuse) is on;
        lowering a capacity limit below the running value (V(net.ipv4.tcp_max_tw_buckets), V(net.ipv4.tcp_max_orphans),
        V(net.core.somaxconn), V(net.core.rmem_max), V(net.core.wmem_max), V(net.netfilter.nf_conntrack_max));
        V(net.ipv4.tcp_fin_timeout) below 10; V(net.ipv4.tcp_syn_retries) below 3; V(net.ipv4.tcp_synack_retries)
        below 2; V(net.netfilter.nf_conntrack_tcp_timeout_established) below 3600;
        V(net.netfilter.nf_conntrack_tcp_timeout_close_wait) below 60; V(net.ipv4.ip_local_port_range) starting below
        V(net.ipv4.ip_unprivileged_port_start), covering the port of a local TCP listener that is not in
        V(net.ipv4.ip_local_reserved_ports) (only when the range changes), or with both ends even or both odd.
    type: bool
    default: false
notes:
  - Check mode and diff mode are fully supported. A second identical run reports no change and writes nothing.
  - The state directory C(/var/lib/linuxnet-tcp) exists only while a run holds the lock or a profile has saved
    originals. A killed run can leave the lock file and temporary files (C(.<file>.<random>.lntcp-tmp)) in the directories
    it writes to; the next run takes the lock over and removes them (the temporary files are listed in RV(recovered)).
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

- name: Conntrack timeouts on a NAT gateway, with nf_conntrack loaded now and at boot
  linuxnet.tcp.sysctl_profile:
    name: nat
    modules: [nf_conntrack]
    module_options:
      nf_conntrack: {hashsize: 262144}
    settings:
      net.netfilter.nf_conntrack_max: ">= 262144"
      net.netfilter.nf_conntrack_tcp_timeout_established: 86400

- name: Widen the ephemeral range and keep local listeners out of it
  linuxnet.tcp.sysctl_profile:
    name: web
    reserve_listener_ports: true
    settings:
      net.ipv4.ip_local_port_range: "10240 65535"
      net.ipv4.ip_local_reserved_ports: ">= 8080,9100-9110"

- name: Per-interface keys of a VLAN interface eth0.100 (a dot in the name is written '/' in dotted keys)
  linuxnet.tcp.sysctl_profile:
    name: vlan
    settings:
      net.ipv4.conf.eth0/100.rp_filter: 1
      net/ipv4/conf/eth0.100/accept_redirects: 0   # the same rule in the slashed spelling

- name: Remove the profile and restore the saved runtime values
  linuxnet.tcp.sysctl_profile:
    name: web
    state: absent

- name: Apply a change and keep what it replaced
  linuxnet.tcp.sysctl_profile:
    name: web
    settings:
      net.core.somaxconn: 8192
  register: web_change

- name: Undo exactly that change (for example when a health check failed)
  linuxnet.tcp.sysctl_profile:
    name: web
    state: reverted
    revert: "{{ web_change.revert }}"
  when: web_change.revert is not none
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
    - Keys not applied because of what the kernel is here, or because another agent owns them. (Not named C(skipped),
      which Ansible reserves to mark a whole task as skipped.) V(classification) is one of V(removed),
      V(module_not_loaded), V(global_in_child_netns), V(read_only), V(proc_sys_read_only), V(unknown_key), or
      V(owned_by_agent) for a key another agent on the host rewrites with another value (the reason names the agent and
      where to change its value; see O(force_owned_keys)).
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
  description: Path of the drop-in, or V(null) when O(persist=false), O(state=absent) or C(/proc/sys) is read-only.
  returned: always
  type: str
  sample: /etc/sysctl.d/90-linuxnet-web.conf
modules_file:
  description: Path of the profile's C(modules-load.d) file, or V(null) when there is none.
  returned: always
  type: str
  sample: /etc/modules-load.d/90-linuxnet-proxy.conf
modprobe_file:
  description: Path of the profile's C(modprobe.d) file, or V(null) when there is none.
  returned: always
  type: str
  sample: /etc/modprobe.d/90-linuxnet-proxy.conf
modules_loaded:
  description: Kernel modules this run loaded with C(modprobe) (in check mode, the ones a real run would load).
  returned: always
  type: list
  elements: str
  sample: [nf_conntrack]
reserved_for_listeners:
  description: Ports of local TCP listeners inside the new ephemeral range that O(reserve_listener_ports) keeps
    reserved in C(net.ipv4.ip_local_reserved_ports).
  returned: always
  type: list
  elements: int
  sample: [20080]
kernel:
  description: Where the profile ran, as in RV(linuxnet.tcp.sysctl_facts#module:ansible_facts.sysctl.kernel).
  returned: always
  type: dict
  contains:
    release:
      description: Kernel release.
      type: str
      sample: 6.1.0-28-amd64
    initial_netns:
      description: Whether this is the initial network namespace (a host, not a container).
      type: bool
      sample: true
    proc_sys_writable:
      description: Whether C(/proc/sys) is mounted read-write.
      type: bool
      sample: true
    proc_sys_net_writable:
      description: Whether C(/proc/sys/net) is mounted read-write.
      type: bool
      sample: true
overridden_at_boot:
  description:
    - Keys of this profile whose boot-time value comes from another file (a later file name, or a file of the
      same name in C(/etc/sysctl.d) shadowing ours), in systemd-sysctl order.
    - V(value) is V(null) when that file has a C(-key) exclusion line, which replaces our assignment so that boot
      does not set the key at all.
  returned: always
  type: list
  elements: dict
  sample: [{"key": "net.core.somaxconn", "file": "/etc/sysctl.d/99-sysctl.conf", "value": "1024"}]
pending_reboot:
  description:
    - Keys persisted with a value the runtime does not have after this run, so the next boot sets them - every changed
      key with O(apply=false), and keys of a module in O(modules) that this run does not load (O(load_modules=false)),
      which boot loads through the profile's C(modules-load.d) file before systemd-sysctl runs. Such keys are persisted
      only when given a plain value (C(>= N) needs the running value) and are not in RV(skipped_keys).
  returned: always
  type: list
  elements: dict
  sample: [{"key": "net.netfilter.nf_conntrack_max", "value": "262144",
            "reason": "nf_conntrack is not loaded now; the profile's modules-load.d file loads it at the next boot, ..."}]
lost_at_boot:
  description:
    - Keys applied now that boot would not set again, because the kernel module they belong to is not there when
      systemd-sysctl runs (not built in, not in any C(modules-load.d) file, this profile's included, and no udev rule runs
      systemd-sysctl for it). List the module in O(modules). Keys another file overrides are in RV(overridden_at_boot).
  returned: always
  type: list
  elements: dict
  sample: [{"key": "net.netfilter.nf_conntrack_tcp_timeout_established",
            "reason": "needs kernel module nf_conntrack, which nothing loads before systemd-sysctl runs ..."}]
needs_module_reload:
  description:
    - Parameters of O(module_options) that the loaded module does not have (read from C(/sys/module/M/parameters)).
      The C(modprobe.d) file gives them to the module when it is loaded again, at the latest at the next boot.
  returned: always
  type: list
  elements: dict
  sample: [{"module": "nf_conntrack", "param": "hashsize", "value": "262144", "live": "65536"}]
restored:
  description:
    - Keys put back to their saved runtime value, with the value before and after the run.
    - With O(state=present), keys dropped from O(settings) since an earlier run of this profile changed them.
    - With O(state=absent), every key the profile had changed; with O(state=reverted), the keys the reverted run wrote.
    - In check mode, the keys a real run would restore.
  returned: always
  type: dict
  sample: {"net.ipv4.tcp_keepalive_time": {"before": "600", "after": "7200"}}
revert:
  description:
    - What this run changed, in the form O(revert) takes to undo it with O(state=reverted) - the runtime values
      before the run (C(runtime)), the text of each file before the run or V(null) where it did not exist
      (C(files)), the state file before the run (C(state)), and the directories the run created for its files
      (C(directories), deepest first), which a revert removes when nothing else is in them.
    - V(null) when the run changed nothing. After an interrupted run (RV(recovered)) it undoes this run only, not the
      interrupted one.
  returned: always
  type: dict
  sample: {"profile": "web", "runtime": {"net.core.somaxconn": "4096"},
           "files": {"/etc/sysctl.d/90-linuxnet-web.conf": null}, "state": {"changed": true, "text": null},
           "directories": ["/var/lib/linuxnet-tcp"]}
recovered:
  description:
    - What this run found of an earlier run of the profile that was interrupted (killed, or the host crashed) and
      cleaned up, or V(null) when there was nothing. The interrupted run's journal kept every original, so this run
      simply converges - O(state=present) to its settings (for the same settings, that completes the interrupted run),
      O(state=absent) restores every original - and its own changes are in the other results as usual.
    - In check mode, what a real run would find.
  returned: always
  type: dict
  contains:
    action:
      description: The O(state) of the interrupted run, or V(null) when only temporary files were found.
      type: str
      sample: present
    pid:
      description: Its process id.
      type: int
      sample: 4242
    started:
      description: When it wrote its journal (UTC).
      type: str
      sample: "2025-06-01T10:02:03Z"
    runtime_written:
      description: The runtime values it had written already, with the value before and its target.
      type: dict
      sample: {"net.ipv4.tcp_keepalive_time": {"before": "7200", "after": "600"}}
    files_written:
      description: The files it had written (or removed) already.
      type: list
      elements: str
      sample: [/etc/sysctl.d/90-linuxnet-web.conf]
    temporary_files:
      description: Temporary files of a killed run (this collection's naming) that this run removed.
      type: list
      elements: str
      sample: [/etc/sysctl.d/.90-linuxnet-web.conf.k2j4x9_a.lntcp-tmp]
  sample: {"action": "present", "pid": 4242, "started": "2025-06-01T10:02:03Z",
           "runtime_written": {"net.ipv4.tcp_keepalive_time": {"before": "7200", "after": "600"}},
           "files_written": [], "temporary_files": []}
not_restored:
  description: Saved keys left alone because another sysctl file now sets them (O(state=absent), or a key dropped from O(settings)).
  returned: always
  type: list
  elements: dict
  sample: [{"key": "net.ipv4.tcp_keepalive_time", "file": "/usr/lib/sysctl.d/60-vendor.conf", "value": "600"}]
"""

import errno

from ansible.module_utils.basic import AnsibleModule

# First of the collection's imports: on an unsupported Python (2.7) it ends the module with a clear failure.
from ansible_collections.linuxnet.tcp.plugins.module_utils import _target_python  # noqa: F401  pylint: disable=unused-import
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.files import LockTimeout
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.profile import agent_writers, profile_absent, profile_present, profile_reverted
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.tree import ApplyError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            settings=dict(type="dict"),
            state=dict(type="str", default="present", choices=["present", "absent", "reverted"]),
            revert=dict(type="dict"),
            persist=dict(type="bool", default=True),
            apply=dict(type="bool", default=True),
            file=dict(type="path"),
            unsupported=dict(type="str", default="skip", choices=["skip", "fail"]),
            allow_unsafe=dict(type="bool", default=False),
            modules=dict(type="list", elements="str", default=[]),
            module_options=dict(type="dict", default={}),
            load_modules=dict(type="bool", default=True),
            reserve_listener_ports=dict(type="bool", default=False),
            force_owned_keys=dict(type="list", elements="str", default=[], no_log=False),
            lock_timeout=dict(type="int", default=60),
        ),
        required_if=[("state", "present", ("settings",)), ("state", "reverted", ("revert",))],
        supports_check_mode=True,
    )
    p = module.params
    modprobe_bin = module.get_bin_path("modprobe", opt_dirs=["/usr/sbin", "/sbin"])

    def modprobe(args):
        return module.run_command([modprobe_bin] + list(args), environ_update={"LC_ALL": "C"})

    try:
        if p["state"] == "present":
            # Other programs' configuration is read here, before the run takes its lock: the transaction only
            # compares its targets with what was found.
            writers = agent_writers("/", p["settings"])
            result = profile_present("/", p["name"], p["settings"], persist=p["persist"], apply=p["apply"], file=p["file"],
                                     unsupported=p["unsupported"], allow_unsafe=p["allow_unsafe"], check_mode=module.check_mode,
                                     modules=p["modules"], module_options=p["module_options"], load=p["load_modules"],
                                     reserve_listener_ports=p["reserve_listener_ports"], modprobe=modprobe if modprobe_bin else None,
                                     force_owned_keys=p["force_owned_keys"], lock_timeout=p["lock_timeout"], writers=writers)
        elif p["state"] == "absent":
            result = profile_absent("/", p["name"], persist=p["persist"], apply=p["apply"], file=p["file"],
                                    check_mode=module.check_mode, lock_timeout=p["lock_timeout"])
        else:
            result = profile_reverted("/", p["name"], p["revert"], file=p["file"], check_mode=module.check_mode,
                                      lock_timeout=p["lock_timeout"])
    except LockTimeout as exc:
        module.fail_json(msg="nothing changed: %s" % exc, lock=exc.path, lock_holder_pid=exc.pid)
    except SysctlError as exc:
        module.fail_json(msg="nothing changed: %s" % exc)
    except ApplyError as exc:
        # A CommitError (an OS error while writing) also names the path and the errno. Not as 'path', to which
        # AnsibleModule adds that file's attributes.
        module.fail_json(msg=str(exc), key=exc.key, classification=exc.classification, rollback_failures=exc.rollback_failures,
                         error_path=getattr(exc, "path", None), errno=getattr(exc, "errno", None))
    except OSError as exc:
        # Not reached by the library's own reads and writes (they raise the errors above); kept so that nothing
        # unforeseen ever ends in a traceback.
        module.fail_json(msg="%s: %s (%s)" % (exc.filename, errno.errorcode.get(exc.errno, exc.errno), exc.strerror),
                         error_path=exc.filename, errno=errno.errorcode.get(exc.errno))
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
