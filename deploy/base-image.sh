#!/usr/bin/env bash
# Makes a Debian bookworm base image from Debian's packages alone (no container registry):
# mmdebstrap's minbase with docs, man pages and locales left out as in debian:bookworm-slim,
# plus ca-certificates, imported into podman as IMAGE (default localhost/sandboxd-base:bookworm).
# Build the runtime image on it with --build-arg BASE=IMAGE. Run as root.
#
#   deploy/base-image.sh [IMAGE]
set -euo pipefail
image=${1:-localhost/sandboxd-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
read -r -a podman <<<"${PODMAN:-podman --runtime runc --storage-driver vfs --cgroup-manager cgroupfs --events-backend file}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The path excludes are kept in the image's /etc/dpkg/dpkg.cfg.d, so packages installed
# later (the Containerfile's) are slim too.
mmdebstrap --quiet --variant=minbase --mode=root \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --include=ca-certificates \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --aptopt='Acquire::Languages "none"' \
  bookworm "$tmp/rootfs.tar" \
  "deb $mirror bookworm main" \
  "deb $mirror bookworm-updates main" \
  "deb $security bookworm-security main"
"${podman[@]}" import --quiet \
  --change 'CMD ["bash"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$tmp/rootfs.tar" "$image" >/dev/null
echo "$image"
