#!/bin/sh
# Runs inside the freshly debootstrapped root (chroot) of a VM image, from tests/vm/build.sh.
set -eu

echo linuxnet-vm >/etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 linuxnet-vm\n' >/etc/hosts
printf '/dev/vda / ext4 rw,relatime 0 1\n' >/etc/fstab

# Network with systemd-networkd: eth0 (net.ifnames=0 on the kernel command line) on qemu's user-mode
# network, static so that boot never waits for DHCP; and dummy0.5, an interface with a dot in its name that
# networkd creates at every boot (after systemd-sysctl.service, which it is ordered after), unconfigured.
mkdir -p /etc/systemd/network
cat >/etc/systemd/network/10-eth0.network <<'NET'
[Match]
Name=eth0

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
LinkLocalAddressing=no
IPv6AcceptRA=no
NET
cat >/etc/systemd/network/20-dummy0.5.netdev <<'NET'
[NetDev]
Name=dummy0.5
Kind=dummy
NET
systemctl enable systemd-networkd.service ssh.service
# Nothing that wakes up on its own during a test.
for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
            systemd-networkd-wait-online.service; do
  systemctl disable "$unit" 2>/dev/null || true
  systemctl mask "$unit" 2>/dev/null || true
done
systemctl mask serial-getty@ttyS0.service getty@tty1.service

# A small initramfs: only what mounts a virtio ext4 root (the kernel phase drops from ~17 s to ~6 s under TCG).
cat >/etc/initramfs-tools/conf.d/linuxnet-vm.conf <<'CONF'
MODULES=list
COMPRESS=gzip
CONF
printf 'virtio_pci\nvirtio_blk\next4\ncrc32c_generic\n' >/etc/initramfs-tools/modules
update-initramfs -u -k all

# The VM tests read the journal of the previous boot.
mkdir -p /var/log/journal
