#!/usr/bin/env bash
# Compiles android/bundle-core (pure Kotlin/JVM) and its JUnit tests with the pinned kotlinc, then
# runs the tests with org.junit.runner.JUnitCore. Off-device: no Android SDK is involved.
#   scripts/build-android-core.sh [--cases CASES.json] [--vectors DIR] [--jni LIB]
# CASES.json lists real bundles (written by tests/apps/test_android_core.py); their .tflite runs
# through JNI in the native runner's LiteRT backend: LIB is libedgeexport_jni.so, built by
# scripts/build-native.sh host when not given (needs a JDK's jni.h). Without CASES.json only the
# shared-vector tests run.
# kotlinc comes from npm (kotlin-compiler, pinned with its sha512 in android/tools/package-lock.json;
# the npm publisher could not be verified), installed once under ~/.cache/edgeexport. JUnit 4,
# hamcrest and Android's org.json come from Debian (scripts/system-deps.sh installs them).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cases=""
vectors="$repo/tests/vectors"
jni=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cases) cases="$2"; shift 2 ;;
    --vectors) vectors="$2"; shift 2 ;;
    --jni) jni="$2"; shift 2 ;;
    *) echo "build-android-core: unknown argument $1 (use --cases FILE, --vectors DIR, --jni LIB)" >&2; exit 2 ;;
  esac
done

kotlin_version=2.4.20
cache="${XDG_CACHE_HOME:-$HOME/.cache}/edgeexport/kotlinc-$kotlin_version"
kotlin_home="$cache/node_modules/kotlin-compiler"
if [ ! -x "$kotlin_home/bin/kotlinc" ] || ! cmp -s "$repo/android/tools/package-lock.json" "$cache/package-lock.json"; then
  command -v npm >/dev/null || { echo "build-android-core: npm is missing (apt-get install npm)" >&2; exit 2; }
  mkdir -p "$cache"
  cp "$repo/android/tools/package.json" "$repo/android/tools/package-lock.json" "$cache/"
  # npm ci installs exactly the lock file's version and checks its sha512; no install scripts run
  (cd "$cache" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
fi

jars=/usr/share/java
for j in junit4.jar hamcrest-core.jar json-android.jar; do
  [ -f "$jars/$j" ] || { echo "build-android-core: $jars/$j is missing (apt-get install junit4 libhamcrest-java libandroid-json-org-java)" >&2; exit 2; }
done

core="$repo/android/bundle-core"
build="$core/build/jvm"
mkdir -p "$build"
# rebuild only when a source changed (kotlinc takes ~30 s per module here)
stamp="$( (cd "$core" && find src -name '*.kt' | sort | xargs sha256sum; echo "$kotlin_version") | sha256sum | cut -c1-16)"
if [ ! -f "$build/stamp-$stamp" ]; then
  rm -rf "$build"/*
  "$kotlin_home/bin/kotlinc" -nowarn "$core/src/main/kotlin" -cp "$jars/json-android.jar" -d "$build/bundle-core.jar"
  "$kotlin_home/bin/kotlinc" -nowarn "$core/src/test/kotlin" \
    -cp "$build/bundle-core.jar:$jars/json-android.jar:$jars/junit4.jar:$jars/hamcrest-core.jar" \
    -d "$build/bundle-core-tests.jar"
  touch "$build/stamp-$stamp"
fi

classes=(io.edgeexport.bundle.VectorsTest io.edgeexport.bundle.TensorTest io.edgeexport.bundle.ManifestTest)
props=(-Dedgeexport.vectors="$vectors")
if [ -n "$cases" ]; then
  if [ -z "$jni" ]; then  # ncnn is not needed here: reuse it only when `make native` built it
    jni="$(EDGEEXPORT_NATIVE_NCNN="${EDGEEXPORT_NATIVE_NCNN:-cached}" bash "$repo/scripts/build-native.sh" host | tail -1)/libedgeexport_jni.so"
  fi
  [ -f "$jni" ] || { echo "build-android-core: $jni is missing (a JDK's jni.h is needed: apt-get install default-jdk-headless)" >&2; exit 2; }
  classes+=(io.edgeexport.bundle.BundleParityTest)
  props+=(-Dedgeexport.cases="$cases" -Dedgeexport.jni="$jni")
fi
exec java "${props[@]}" \
  -cp "$build/bundle-core.jar:$build/bundle-core-tests.jar:$kotlin_home/lib/kotlin-stdlib.jar:$jars/json-android.jar:$jars/junit4.jar:$jars/hamcrest-core.jar" \
  org.junit.runner.JUnitCore "${classes[@]}"
