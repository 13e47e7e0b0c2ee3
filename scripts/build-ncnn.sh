#!/usr/bin/env bash
# Builds libncnn.so with Vulkan from the ncnn sdist on PyPI (the wheel ships no library or headers)
# and caches it under ${XDG_CACHE_HOME:-~/.cache}/edgeexport/ncnn-<version>/{include,lib}.
# About 15 CPU-minutes (25 min wall on 2 cores); a finished cache is reused. Prints the prefix.
# Usage: scripts/build-ncnn.sh [VERSION]   (default: the ncnn version installed in the venv)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
VERSION=${1:-${NCNN_VERSION:-$("$PY" -c 'import importlib.metadata as m; print(m.version("ncnn"))')}}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/edgeexport
PREFIX=$CACHE/ncnn-$VERSION
if [ -f "$PREFIX/.done" ]; then
  echo "$PREFIX"
  exit 0
fi
for tool in cmake ninja g++ curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-ncnn: $tool is not installed (scripts/system-deps.sh)" >&2; exit 2; }
done
WORK=$CACHE/ncnn-$VERSION.build
mkdir -p "$WORK"
SDIST=$WORK/ncnn-$VERSION.tar.gz
if [ ! -f "$SDIST" ]; then
  # `pip download --no-binary ncnn==V` fails: setup.py stamps today's date as the version. The
  # simple index gives the sdist's URL and sha256; pip downloads that URL as is.
  url=$(curl -fsS "https://pypi.org/simple/ncnn/" | grep -o "https://[^\"]*/ncnn-$VERSION\.tar\.gz#sha256=[0-9a-f]*" | head -1)
  [ -n "$url" ] || { echo "build-ncnn: no sdist for ncnn $VERSION on PyPI" >&2; exit 2; }
  "$PY" -m pip download -q --no-deps --no-build-isolation -d "$WORK/dl" "$url" 2>/dev/null || true
  f=$(ls "$WORK"/dl/ncnn-"$VERSION".tar.gz 2>/dev/null || true)
  if [ -z "$f" ]; then
    # pip may refuse the sdist after download (the version stamp); fetch it directly then.
    curl -fsSL -o "$SDIST.tmp" "${url%%#*}"
    echo "${url##*sha256=}  $SDIST.tmp" | sha256sum -c --quiet
    mv "$SDIST.tmp" "$SDIST"
  else
    mv "$f" "$SDIST"
  fi
fi
rm -rf "$WORK/src" && mkdir -p "$WORK/src"
tar -xzf "$SDIST" -C "$WORK/src" --strip-components=1
# Tools, examples and benchmark are not in the sdist, so they must be off; Vulkan uses ncnn's own
# loader and bundled glslang (no libvulkan-dev needed), libvulkan.so.1 is opened at run time.
cmake -S "$WORK/src" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$PREFIX" -DNCNN_SHARED_LIB=ON -DNCNN_VULKAN=ON -DNCNN_C_API=ON \
  -DNCNN_BUILD_TOOLS=OFF -DNCNN_BUILD_EXAMPLES=OFF -DNCNN_BUILD_BENCHMARK=OFF -DNCNN_BUILD_TESTS=OFF \
  -DNCNN_PYTHON=OFF >"$WORK/cmake.log" 2>&1 || { echo "build-ncnn: cmake failed, see $WORK/cmake.log" >&2; exit 1; }
nice -n 15 ninja -C "$WORK/build" -j"${NCNN_JOBS:-2}" >"$WORK/ninja.log" 2>&1 || { echo "build-ncnn: build failed, see $WORK/ninja.log" >&2; exit 1; }
ninja -C "$WORK/build" install >>"$WORK/ninja.log" 2>&1
touch "$PREFIX/.done"
rm -rf "$WORK/src" "$WORK/build"
echo "$PREFIX"
