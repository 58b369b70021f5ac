#!/usr/bin/env bash
# Everything a fresh machine needs before cnnlab runs: Debian's chromium (it carries SwiftShader,
# the CPU Vulkan that gives WebGPU without a GPU, in Chromium and in Node via Dawn), the Vulkan
# loader, the npm packages, and the bundles. Idempotent: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
[ -f /usr/lib/chromium/vk_swiftshader_icd.json ] || need_pkgs+=(chromium)
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || need_pkgs+=(libvulkan1)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${need_pkgs[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else
    echo "cnnlab needs Debian packages: $pkgs" >&2
    echo "run as root:  apt-get update && apt-get install -y $pkgs" >&2
    exit 1
  fi
  echo "installing $pkgs (Debian)…"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $pkgs >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing npm packages…"
  npm ci --no-audit --no-fund --loglevel=error
fi

node build.mjs
