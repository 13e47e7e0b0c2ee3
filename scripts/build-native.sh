#!/usr/bin/env bash
# Builds edgeexport-run-native (native/, C++17 + CMake) for the host or cross-compiled for
# aarch64. Runtime libraries come from the wheels: LiteRT's libLiteRt.so and onnxruntime's
# libonnxruntime.so (x86_64 from the venv, aarch64 wheels downloaded once into the cache);
# ncnn with Vulkan is built from its sdist by scripts/build-ncnn.sh (cached, host only).
# Usage: scripts/build-native.sh host|aarch64      Prints the folder holding the executable.
# Re-running it rebuilds only what changed (about a second when nothing did).
# aarch64 gives build/native/aarch64/release/: the executable next to its libraries (rpath
# $ORIGIN), the folder to copy to a Raspberry Pi.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
ARCH=${1:-host}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/edgeexport
for tool in cmake g++; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-native: $tool is not installed (scripts/system-deps.sh)" >&2; exit 2; }
done
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
LITERT_V=$(version ai-edge-litert)
ORT_V=$(version onnxruntime)

case "$ARCH" in
  host)
    BUILD=build/native/x86_64
    litert_dir=$site/ai_edge_litert
    ort_lib=$(ls "$site"/onnxruntime/capi/libonnxruntime.so.* | head -1)
    args=(-DEE_LITERT_DIR="$litert_dir" -DEE_ORT_LIBRARY="$ort_lib")
    # EDGEEXPORT_NATIVE_NCNN: build (default; ~25 min once, then cached), cached (only a
    # finished cache), off
    mode=${EDGEEXPORT_NATIVE_NCNN:-build}
    ncnn_prefix=$CACHE/ncnn-$(version ncnn)
    if [ "$mode" = build ] || { [ "$mode" = cached ] && [ -f "$ncnn_prefix/.done" ]; }; then
      ncnn=$(PYTHON="$PY" bash scripts/build-ncnn.sh | tail -1)
      args+=(-DEE_NCNN_DIR="$ncnn")
    else
      args+=(-DEE_NCNN_DIR=)
    fi
    ;;
  aarch64)
    command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || {
      echo "build-native: aarch64-linux-gnu-g++ is not installed (scripts/system-deps.sh)" >&2; exit 2; }
    BUILD=build/native/aarch64
    libs=$CACHE/native-aarch64-litert$LITERT_V-ort$ORT_V
    if [ ! -f "$libs/.done" ]; then
      rm -rf "$libs" && mkdir -p "$libs/wheels"
      # the aarch64 wheels are tagged manylinux_2_27 (LiteRT) / 2_28; pip needs every tag named
      "$PY" -m pip download -q --only-binary=:all: --no-deps --python-version 3.11 \
        --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 \
        --platform manylinux2014_aarch64 -d "$libs/wheels" \
        "ai-edge-litert==$LITERT_V" "onnxruntime==$ORT_V"
      "$PY" - "$libs" <<'PYEOF'
import sys, zipfile, pathlib
out = pathlib.Path(sys.argv[1])
for whl in (out / "wheels").glob("*.whl"):
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            base = name.rsplit("/", 1)[-1]
            if base == "libLiteRt.so" or base.startswith("libonnxruntime.so."):
                (out / base).write_bytes(z.read(name))
PYEOF
      rm -rf "$libs/wheels"
      touch "$libs/.done"
    fi
    ort_lib=$(ls "$libs"/libonnxruntime.so.* | head -1)
    args=(-DCMAKE_TOOLCHAIN_FILE="$PWD/native/cmake/aarch64-linux-gnu.cmake"
          -DEE_LITERT_DIR="$libs" -DEE_ORT_LIBRARY="$ort_lib"
          -DEE_RELEASE_DIR="$PWD/$BUILD/release")
    ;;
  *) echo "usage: scripts/build-native.sh host|aarch64" >&2; exit 2 ;;
esac

mkdir -p "$(dirname "$BUILD")"
cmake -S native -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release "${args[@]}" >"$BUILD.cmake.log" 2>&1 \
  || { mkdir -p "$(dirname "$BUILD")"; echo "build-native: cmake failed, see $BUILD.cmake.log" >&2; exit 1; }
cmake --build "$BUILD" -j 2 >"$BUILD.build.log" 2>&1 \
  || { echo "build-native: build failed, see $BUILD.build.log" >&2; tail -20 "$BUILD.build.log" >&2; exit 1; }
if [ "$ARCH" = aarch64 ]; then echo "$PWD/$BUILD/release"; else echo "$PWD/$BUILD"; fi
