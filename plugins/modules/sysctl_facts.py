#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
---
module: sysctl_facts
short_description: Gather runtime and persisted sysctl values, drift and overrides
version_added: 0.1.0
description:
  - Reads sysctl values directly from C(/proc/sys) (no C(sysctl) binary) and, optionally, the persisted
    configuration from C(/etc/sysctl.d), C(/run/sysctl.d), C(/usr/local/lib/sysctl.d), C(/usr/lib/sysctl.d) and
    C(/etc/sysctl.conf), resolved in the order systemd-sysctl and C(sysctl --system) use.
  - Explains keys that are missing here (removed, module not loaded, global key inside a container network
    namespace, and so on) and reports runtime values that differ from what boot would apply.
  - Never writes anything.
  - Only regular files are read in the sysctl.d directories - a FIFO, socket or device named C(*.conf) is skipped with a
    warning, never opened. A glob line that expands beyond bounds (more than 1024 alternatives, or longer than 1024
    characters) is skipped with a warning, as is a O(keys) pattern beyond them refused.
author:
  - linuxnet.tcp maintainers (@linuxnet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
    details: The module only reads, so check mode runs it normally.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: [linux]
  facts:
    support: full
options:
  keys:
    description:
      - Key names or glob patterns (per path component, for example V(net.ipv4.tcp_*) or
        V(net/ipv4/conf/*/forwarding)). Dots and slashes are separators as in sysctl.d(5).
      - Default is the catalogue's TCP set, the C(net.ipv4) TCP and port keys and the C(net.core) socket keys.
    type: list
    elements: str
  persisted:
    description:
      - Also read the sysctl configuration files and report RV(ansible_facts.sysctl.persisted),
        RV(ansible_facts.sysctl.drift) and RV(ansible_facts.sysctl.overrides).
    type: bool
    default: true
seealso:
  - module: linuxnet.tcp.sysctl_profile
"""

EXAMPLES = r"""
- name: Gather the TCP sysctl set
  linuxnet.tcp.sysctl_facts:

- name: Gather conntrack keys and show drift against the boot configuration
  linuxnet.tcp.sysctl_facts:
    keys:
      - net.netfilter.nf_conntrack_*
      - net.ipv4.tcp_tw_recycle

- name: Report keys whose runtime value differs from what boot applies
  ansible.builtin.debug:
    msg: "{{ ansible_facts.sysctl.drift }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts added under C(ansible_facts.sysctl).
  returned: always
  type: dict
  contains:
    sysctl:
      description: Sysctl facts.
      type: dict
      returned: always
      contains:
        runtime:
          description:
            - Runtime value per key (what C(/proc/sys) shows now), whitespace normalised to single spaces.
            - Read it as C(ansible_facts.sysctl.runtime) in Jinja and C(sysctl.runtime) in JMESPath (the audit
              rules).
          type: dict
          returned: always
          sample: {"net.ipv4.tcp_fin_timeout": "60", "net.ipv4.ip_local_port_range": "32768 60999"}
        missing:
          description:
            - Requested keys (and catalogue keys matching a pattern) that cannot be read here, with
              V(classification) (V(removed), V(module_not_loaded), V(global_in_child_netns), V(read_only),
              V(unknown_key)), V(reason) and, for removed keys, V(replacement).
          type: dict
          returned: always
          sample: {"net.ipv4.tcp_max_orphans": {"classification": "global_in_child_netns", "reason": "global key: set this on the host"}}
        persisted:
          description:
            - Value boot applies per requested key (systemd-sysctl order) and the file that wins.
            - IPv4 interface keys follow the order of boot's writes as the kernel takes them. A write of
              C(net.ipv4.conf.default.X) reaches every interface whose X was never written, except C(lo), which has an
              address before systemd-sysctl runs; a value already there is not written, so such an interface stays open
              to a later C(default) write; systemd's udev rule applies an interface's own lines again when it appears.
              A value that comes from C(default) has C(via) naming the C(default) key. Keys boot leaves as they are
              (C(lo) with only C(default) lines) are not listed.
          type: dict
          returned: always
          sample: {"net.core.somaxconn": {"value": "8192", "file": "/etc/sysctl.d/90-linuxnet-web.conf"}}
        drift:
          description: Keys whose runtime value differs from what boot would apply.
          type: dict
          returned: always
          sample: {"net.core.somaxconn": {"runtime": "4096", "persisted": "8192", "file": "/etc/sysctl.d/90-linuxnet-web.conf"}}
        overrides:
          description:
            - Keys set in more than one file, every assignment in application order (the last one wins);
              C(/etc/sysctl.conf) comes last as with C(sysctl --system).
          type: dict
          returned: always
          sample: {"net.ipv4.tcp_keepalive_time": [{"file": "/etc/sysctl.d/10-c.conf", "value": "200"},
                                                   {"file": "/usr/lib/sysctl.d/60-b.conf", "value": "100"}]}
        boot:
          description:
            - Whether what boot applies takes effect at all (empty with O(persisted=false)). For every key of
              RV(ansible_facts.sysctl.persisted), C(applies) and the C(reason) when it does not.
            - A key that needs a kernel module (C(nf_conntrack), C(ip_vs), C(br_netfilter)) applies only when the module
              is there before systemd-sysctl runs; C(module_loaded_by) names what loads it (built into the kernel,
              a modules-load.d file or the kernel command line, directly or as a dependency, or a udev rule that runs
              systemd-sysctl when the module appears). Otherwise the key starts from the kernel default when the module
              is loaded later, and C(applies) is V(false).
          type: dict
          returned: always
          sample: {"net.netfilter.nf_conntrack_max": {"value": "262144", "file": "/etc/sysctl.d/90-linuxnet-proxy.conf",
                   "applies": false, "module": "nf_conntrack", "module_loaded_by": null,
                   "reason": "needs kernel module nf_conntrack, which nothing loads before systemd-sysctl runs ..."}}
        module_options:
          description:
            - The modprobe.d C(options) of every module (empty with O(persisted=false)), with the C(live) value of a loaded
              module (from C(/sys/module)). C(needs_module_reload) is V(true) when the module runs with another value,
              which the file's value replaces only when the module is loaded again (or at the next boot).
          type: list
          elements: dict
          returned: always
          sample: [{"module": "nf_conntrack", "param": "hashsize", "value": "262144",
                    "file": "/etc/modprobe.d/90-linuxnet-proxy.conf", "live": "65536", "needs_module_reload": true}]
        agents:
          description:
            - Other agents found on the target that write sysctl keys at runtime - kube-proxy, dockerd, containerd (its CNI
              bridge), TuneD, bpftune, systemd-networkd, NetworkManager - with the process (C(pid), V(null) when only its
              unit is enabled), the C(evidence) (command line or unit and configuration) and general C(advice).
          type: list
          elements: dict
          returned: always
          sample: [{"agent": "kube-proxy", "pid": 2790, "evidence": "/usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf",
                    "advice": "kube-proxy writes these keys when it starts; change them in its configuration."}]
        writers:
          description:
            - For every reported key that one of RV(ansible_facts.sysctl.agents) writes, who, with which value (V(null) when
              the agent decides at runtime), from where, and where to change it instead.
            - C(op) says how the agent writes it, C(=) any other value, C(>=) only a smaller one (it raises the key to at
              least C(value)), C(<=) only a larger one; C(yields) says when it gives way, V(sysctl.d) (the sysctl.d
              value wins, TuneD with C(reapply_sysctl=1)), V(writes) (it stops once someone else sets the key, bpftune),
              or V(null).
            - A runtime value that differs from RV(ansible_facts.sysctl.persisted) and matches a writer's value is that agent's
              doing, not a drift the sysctl files can fix.
          type: dict
          returned: always
          sample: {"net.netfilter.nf_conntrack_max": [{"agent": "kube-proxy", "value": "131072", "op": "=", "yields": null,
                   "source": "kube-proxy sets it at start from conntrack.maxPerCore (32768) x 4 CPUs in /var/lib/kube-proxy/config.conf",
                   "advice": "Set conntrack.maxPerCore in kube-proxy's configuration instead."}]}
        ipvs:
          description:
            - IPVS connection timeouts of this network namespace in seconds (C(tcp), C(tcpfin), C(udp)), read with
              C(ipvsadm -L --timeout), or V(null) when C(ip_vs) is not loaded here (or C(ipvsadm) is missing, with a warning).
          type: dict
          returned: always
          sample: {"tcp": 900, "tcpfin": 120, "udp": 300}
        kernel:
          description:
            - Kernel release, whether this is the initial network namespace, whether the C(/proc/sys) mount and the
              C(/proc/sys/net) mount (container runtimes may mount it separately) are writable.
          type: dict
          returned: always
          sample: {"release": "6.18.44", "initial_netns": true, "proc_sys_writable": true, "proc_sys_net_writable": true}
"""

import errno

from ansible.module_utils.basic import AnsibleModule

# First of the collection's imports: on an unsupported Python (2.7) it ends the module with a clear failure.
from ansible_collections.linuxnet.tcp.plugins.module_utils import _target_python  # noqa: F401  pylint: disable=unused-import
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import ipvs as _ipvs
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import conf as _sysctl_conf
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.facts import gather_facts
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError


def ipvs_timeouts(module):
    """IPVS connection timeouts of this network namespace, or None when ip_vs is not loaded here."""
    if not _ipvs.available():
        return None
    try:
        return _ipvs.Ipvsadm(module).get()
    except _ipvs.IpvsError as exc:
        module.warn("ip_vs is loaded but its timeouts cannot be read: %s" % exc)
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            keys=dict(type="list", elements="str", no_log=False),
            persisted=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    try:
        facts = gather_facts("/", module.params["keys"], module.params["persisted"])
        warnings = _sysctl_conf.config_warnings("/") if module.params["persisted"] else []
    except SysctlError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg="reading %s failed: %s (%s)" % (exc.filename, errno.errorcode.get(exc.errno, exc.errno), exc.strerror))
    for warning in warnings:
        module.warn(warning)
    facts["ipvs"] = ipvs_timeouts(module)
    module.exit_json(changed=False, ansible_facts={"sysctl": facts})


if __name__ == "__main__":
    main()
