#!/usr/bin/env bash
# Software Vulkan (Mesa's lavapipe) so onnxruntime-node's WebGPU provider
# (Dawn over Vulkan) finds an adapter on a machine without a GPU: CI, and
# anyone who wants to try `--device webgpu` functionally. It is 20–200×
# slower than the CPU provider: never read performance from it.
#
# Debian 12's own Mesa 22 gives Dawn no adapter; Mesa 25 from
# bookworm-backports works (measured with onnxruntime-node 1.30). On other
# distributions install a Mesa ≥ 25 `mesa-vulkan-drivers` (or your GPU's
# Vulkan driver) and `libvulkan1` with the system's package manager.
#
# usage: scripts/lavapipe.sh           install (root, Debian 12 / apt), then check
#        scripts/lavapipe.sh --check   only report whether lavapipe is there
set -euo pipefail

ICD=/usr/share/vulkan/icd.d/lvp_icd.json
[ -f "$ICD" ] || ICD=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json 2>/dev/null | head -n1 || true)

mesa_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }

check() {
  local v
  v=$(mesa_version)
  if [ -n "${ICD:-}" ] && [ -f "$ICD" ] && [ -n "$v" ] && dpkg --compare-versions "$v" ge 25; then
    echo "lavapipe: Mesa $v, ICD $ICD"
    return 0
  fi
  echo "lavapipe: not usable (mesa-vulkan-drivers ${v:-not installed}; WebGPU needs Mesa >= 25)" >&2
  return 1
}

if [ "${1:-}" = "--check" ]; then
  check
  exit $?
fi

if check 2>/dev/null; then exit 0; fi

if [ "$(id -u)" != 0 ]; then
  echo "lavapipe: run as root (apt-get), or install mesa-vulkan-drivers >= 25 and libvulkan1 yourself" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "lavapipe: no apt-get here; install Mesa >= 25 mesa-vulkan-drivers and libvulkan1 with your package manager" >&2
  exit 1
fi

. /etc/os-release
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
  list=/etc/apt/sources.list.d/bookworm-backports.list
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' > "$list"
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  # Newer Debian / Ubuntu releases ship Mesa >= 25 in their main archive.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
fi
ICD=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json 2>/dev/null | head -n1 || true)
check
