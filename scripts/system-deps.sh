#!/usr/bin/env bash
# Installs the system packages that the tests' real runtimes need, when they are missing:
# Mesa's software Vulkan driver (lavapipe) for ncnn, qemu-user-static and debootstrap for the
# aarch64 LiteRT runs, Debian's Fashion-MNIST for the quantization accuracy test, a JRE, npm,
# JUnit and org.json for the Kotlin bundle-core tests, Chromium for the headless rendering
# test of report.html, compilers for the native runner (host and aarch64 cross). Needs root
# (CI and the developer machines run as root); without root it says what is missing and the
# tests that need it skip with that reason.
set -euo pipefail

want=()
dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || want+=(mesa-vulkan-drivers)
dpkg -s libvulkan1 >/dev/null 2>&1 || want+=(libvulkan1)
dpkg -s qemu-user-static >/dev/null 2>&1 || want+=(qemu-user-static)
dpkg -s debootstrap >/dev/null 2>&1 || want+=(debootstrap)
dpkg -s binutils >/dev/null 2>&1 || want+=(binutils)
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || want+=(dataset-fashion-mnist)
# Kotlin bundle-core's JUnit tests (scripts/build-android-core.sh): JUnit 4, hamcrest, Android's
# org.json; kotlinc itself comes from npm, pinned in android/tools/package-lock.json
dpkg -s junit4 >/dev/null 2>&1 || want+=(junit4)
dpkg -s libhamcrest-java >/dev/null 2>&1 || want+=(libhamcrest-java)
dpkg -s libandroid-json-org-java >/dev/null 2>&1 || want+=(libandroid-json-org-java)
# a JDK, not only a JRE: jni.h for the native runner's JNI bridge (libedgeexport_jni.so)
ls /usr/lib/jvm/*/include/jni.h >/dev/null 2>&1 || want+=(default-jdk-headless)
command -v npm >/dev/null 2>&1 || want+=(npm)
dpkg -s chromium >/dev/null 2>&1 || want+=(chromium)
# the native runner (native/): host build, ncnn from its sdist, aarch64 cross build
for pkg in cmake ninja-build g++ curl gcc-aarch64-linux-gnu g++-aarch64-linux-gnu \
           libc6-dev-arm64-cross; do
  dpkg -s "$pkg" >/dev/null 2>&1 || want+=("$pkg")
done

if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing ${want[*]} (run as root to install); tests that need them will skip" >&2
  exit 0
fi
echo "system-deps: installing ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
