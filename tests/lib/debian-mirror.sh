# shellcheck shell=bash
# Sourced by tests/images/build.sh and tests/vm/build.sh: debian_mirror prints the Debian mirror of this machine's
# apt sources (deb822 *.sources first, then sources.list), so no mirror host name is ever written into the repository.
# The mirror is not part of an image's identity (tests/vm/build.sh hashes its recipe without this file): it says where
# the packages come from, not which ones.

# First "URIs:" of a deb822 source whose Suites name a Debian release, else the first plain "deb" line; the
# -security suites are skipped (debootstrap needs the main archive). Exits with a message when there is none.
debian_mirror() {
  local uri=""
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    uri=$(awk '
      /^[[:space:]]*$/ { if (uri != "" && debian && !security) { print uri; exit } uri=""; debian=0; security=0; next }
      /^URIs:/ { uri=$2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) { if ($i ~ /-security$/) security=1; if ($i ~ /^(bullseye|bookworm|trixie|stable|oldstable|testing)/) debian=1 } }
      END { if (uri != "" && debian && !security) print uri }
    ' "$f" | head -n1)
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { echo "${0##*/}: no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list" >&2; exit 1; }
  echo "${uri%/}"
}
