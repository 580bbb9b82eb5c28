#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
---
module: ipvs_timeouts
short_description: Set the IPVS connection timeouts of an LVS director (ipvsadm --set)
version_added: 0.1.0
description:
  - Reads the IPVS timeouts with C(ipvsadm -L --timeout) and sets them with C(ipvsadm --set TCP TCPFIN UDP) when they
    differ, then reads them back.
  - The timeouts belong to the network namespace the module runs in, not to a virtual service.
  - They are not persistent. The C(linuxnet.tcp.tuning) role installs a oneshot systemd unit that sets them again at
    boot; keepalived users can put them in its configuration instead.
  - Keep O(tcp) above the longest idle time of client connections (keep-alive), or idle connections lose their entry
    and are reset or sent to another real server.
author:
  - linuxnet.tcp maintainers (@linuxnet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the timeouts and reports whether they would change, without setting anything.
  diff_mode:
    support: full
    details: Returns the timeouts before and after as C(tcp tcpfin udp) lines.
  platform:
    support: full
    platforms: [linux]
    details: Linux with the C(ip_vs) kernel module.
requirements:
  - C(ipvsadm) on the target.
  - The C(ip_vs) kernel module loaded (C(/proc/net/ip_vs) exists); the module fails otherwise.
options:
  tcp:
    description: Timeout of established TCP connection entries, in seconds. V(0) or unset keeps the current value.
    type: int
  tcpfin:
    description: Timeout of TCP entries after a FIN was seen, in seconds. V(0) or unset keeps the current value.
    type: int
  udp:
    description: Timeout of UDP entries, in seconds. V(0) or unset keeps the current value.
    type: int
notes:
  - The kernel defaults are V(900), V(120) and V(300) seconds.
seealso:
  - name: ipvsadm(8)
    description: The C(--set) option and C(-L --timeout).
    link: https://man7.org/linux/man-pages/man8/ipvsadm.8.html
  - name: IPVS sysctl
    description: The other IPVS tunables, which M(linuxnet.tcp.sysctl_profile) applies.
    link: https://docs.kernel.org/networking/ipvs-sysctl.html
"""

EXAMPLES = r"""
---
- name: Keep idle keep-alive connections for an hour on an LVS director
  linuxnet.tcp.ipvs_timeouts:
    tcp: 3600
    tcpfin: 120
    udp: 300
  register: ipvs

- name: Show the change
  ansible.builtin.debug:
    msg: "{{ ipvs.before }} -> {{ ipvs.after }}"
"""

RETURN = r"""
before:
  description: Timeouts found, in seconds.
  returned: always
  type: dict
  sample: {"tcp": 900, "tcpfin": 120, "udp": 300}
after:
  description: Timeouts after the run (what a real run sets, in check mode).
  returned: always
  type: dict
  sample: {"tcp": 3600, "tcpfin": 120, "udp": 300}
"""

from ansible.module_utils.basic import AnsibleModule

# First of the collection's imports: on an unsupported Python (2.7) it ends the module with a clear failure.
from ansible_collections.linuxnet.tcp.plugins.module_utils import _target_python  # noqa: F401  pylint: disable=unused-import
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.ipvs import FIELDS, Ipvsadm, IpvsError, PROC_IP_VS, available, ensure


def main():
    module = AnsibleModule(
        argument_spec=dict(
            tcp=dict(type="int"),
            tcpfin=dict(type="int"),
            udp=dict(type="int"),
        ),
        supports_check_mode=True,
    )
    for field in FIELDS:
        if module.params[field] is not None and module.params[field] < 0:
            module.fail_json(msg="%s must be 0 or more seconds, got %d" % (field, module.params[field]))
    if not available():
        module.fail_json(msg="ip_vs is not loaded in this network namespace (%s is missing); load it with modprobe ip_vs "
                             "or /etc/modules-load.d/" % PROC_IP_VS)
    try:
        changed, before, after = ensure(Ipvsadm(module), dict((f, module.params[f]) for f in FIELDS), module.check_mode)
    except IpvsError as exc:
        module.fail_json(msg=str(exc))
    result = dict(changed=changed, before=before, after=after)
    if module._diff:
        result["diff"] = {"before": "%(tcp)d %(tcpfin)d %(udp)d\n" % before, "after": "%(tcp)d %(tcpfin)d %(udp)d\n" % after,
                          "before_header": "ipvs timeouts (tcp tcpfin udp)", "after_header": "ipvs timeouts (tcp tcpfin udp)"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
