#!/usr/bin/env bash
# Prebuilds the aarch64 Debian rootfs with the aarch64 LiteRT wheel that the litert-aarch64-qemu
# runtime uses (cached under ${XDG_CACHE_HOME:-~/.cache}/edgeexport; ~1 min, needs the Debian
# mirror and PyPI). Needs qemu-user-static, debootstrap and dpkg-deb (scripts/system-deps.sh).
# Without them it says what is missing and exits 0: the qemu tests then skip with that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
for tool in qemu-aarch64-static debootstrap dpkg-deb; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build-aarch64-rootfs: $tool is not installed; skipping (qemu tests will skip)" >&2
    exit 0
  fi
done
"$PY" -m edgeexport.runtimes.litert_qemu
