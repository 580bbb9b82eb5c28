#!/usr/bin/env bash
# Build the Debian 11/12/13 virtual machine images the VM tests boot (tests/vm/README.md).
#
# One image per release under .build/vm/<tag>-<key>/: a raw ext4 disk (no partition table, root=/dev/vda),
# the kernel and a small initramfs taken from it, and an ssh key pair whose public half root accepts.
# <key> is a hash of this script, tests/lib/debian.sh (the suite of each tag) and tests/vm/guest/, so changing the
# recipe builds new images; an image whose directory has the "ready" mark is reused. The Debian mirror is read from
# this machine's apt sources (tests/lib/debian.sh, shared with tests/images/build.sh), so no mirror host name is
# written into the repository.
#
# Usage: tests/vm/build.sh [--rebuild] [debian11|debian12|debian13 ...]   build (in parallel) what is missing
#        tests/vm/build.sh --path TAG                                     print the image directory of TAG
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${LINUXNET_TCP_VM_CACHE:-$repo/.build/vm}
key=$(cat "$0" "$here/../lib/debian.sh" "$here"/guest/* | sha256sum | cut -c1-12)
# shellcheck source=tests/lib/debian.sh
. "$here/../lib/debian.sh"

rebuild=0
wanted=()
while [ $# -gt 0 ]; do
  case "$1" in
    --path) suite_of "${2:?--path needs a tag}" >/dev/null; echo "$cache/$2-$key"; exit 0 ;;
    --rebuild) rebuild=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) suite_of "$1" >/dev/null; wanted+=("$1") ;;
  esac
  shift
done
[ ${#wanted[@]} -gt 0 ] || wanted=(debian11 debian12 debian13)

for tool in debootstrap mkfs.ext4 qemu-img ssh-keygen curl; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing (make system-deps installs it)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "build.sh: debootstrap needs root" >&2; exit 1; }
mirror=$(debian_mirror)
mkdir -p "$cache"

# debootstrap mounts /proc and /sys in the new root; a killed build can leave them there.
unmount_under() {
  local dir m
  dir=$(realpath -m "$1")
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" || true
  done
}

build_one() {
  local tag=$1 suite out work rootfs start
  suite=$(suite_of "$tag")
  out="$cache/$tag-$key"
  if [ "$rebuild" -eq 0 ] && [ -f "$out/ready" ]; then
    echo "build.sh: $tag is built ($out)"
    return 0
  fi
  # An old Debian release may have left the mirror for the archive: say so instead of a debootstrap error.
  if ! curl -fsS -o /dev/null "$mirror/dists/$suite/Release"; then
    echo "build.sh: the Debian mirror of this machine's apt sources has no '$suite' ($tag): $mirror/dists/$suite/Release is missing" >&2
    return 1
  fi
  unmount_under "$out.tmp"
  rm -rf "$out" "$out.tmp"
  # Images of an older recipe are never booted again.
  for stale in "$cache/$tag"-*; do
    case "$stale" in "$out"|"$out.tmp") ;; *) unmount_under "$stale"; rm -rf "$stale" ;; esac
  done
  work="$out.tmp"
  rootfs="$work/rootfs"
  mkdir -p "$rootfs"
  start=$(date +%s)
  if ! debootstrap --variant=minbase \
      --include="linux-image-amd64,initramfs-tools,systemd-sysv,udev,kmod,openssh-server,python3,iproute2,procps,ipvsadm,conntrack" \
      "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    echo "build.sh: debootstrap of $suite failed; log in $work/debootstrap.log" >&2
    return 1
  fi
  # The guest's configuration (tests/vm/guest/setup.sh says what and why), then a small initramfs.
  cp "$here/guest/setup.sh" "$rootfs/root/setup.sh"
  ssh-keygen -q -t ed25519 -N "" -C "linuxnet-tcp-vm-$tag" -f "$work/id_ed25519"
  install -d -m 700 "$rootfs/root/.ssh"
  install -m 600 "$work/id_ed25519.pub" "$rootfs/root/.ssh/authorized_keys"
  if ! chroot "$rootfs" /bin/sh /root/setup.sh >"$work/setup.log" 2>&1; then
    tail -n 30 "$work/setup.log" >&2
    echo "build.sh: configuring the $tag guest failed; log in $work/setup.log" >&2
    return 1
  fi
  rm -f "$rootfs/root/setup.sh"
  cp "$rootfs"/boot/vmlinuz-* "$work/vmlinuz"
  cp "$rootfs"/boot/initrd.img-* "$work/initrd.img"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  # A sparse raw ext4 image made from the directory: no loop device, no mount.
  mkfs.ext4 -q -F -L root -d "$rootfs" "$work/disk.raw" 3G
  rm -rf "$rootfs"
  mv "$work" "$out"
  echo "$suite" >"$out/suite"
  touch "$out/ready"
  echo "build.sh: built $tag ($suite) in $(( $(date +%s) - start ))s: $out"
}

# The three debootstraps mostly wait on the network and dpkg: run them side by side.
pids=()
for tag in "${wanted[@]}"; do
  build_one "$tag" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
exit $status
