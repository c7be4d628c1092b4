#!/usr/bin/env bash
# Installs everything Tributary needs on a Debian/Ubuntu machine that has
# Node.js (>= 20.10) and apt: the system packages the coordinator, the demo
# and the tests use, then the npm dependencies from the lockfile, which also
# builds every package (`prepare`). Safe to run again: it installs only what
# is missing.
#
#   bash scripts/setup.sh && npm run demo
#
# System packages (Debian names): nats-server (the coordinator's broadcast;
# `tributary serve --nats-url` points at an existing one instead), chromium
# (the operator page's browser test), and for the Python client
# (client-sdk/python) python3-grpcio, python3-protobuf, python3-numpy,
# python3-venv (to pip-install it into a virtual environment), and
# protoc with the gRPC Python plugin and the well-known types
# (protobuf-compiler, protobuf-compiler-grpc, libprotobuf-dev) to generate
# and check its stubs; liblapacke and libopenblas0-pthread (native LAPACK and
# BLAS for the merge engine, loaded through koffi; JS fallback without them),
# and Mesa >= 24 with the Vulkan loader (WebGPU on lavapipe, see below).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "setup: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "Node.js is not installed: install Node.js 20.10 or newer (24 LTS recommended)"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=10)?0:1)' \
  || die "Node.js $(node --version) is too old: Tributary needs 20.10 or newer (24 LTS recommended)"

# command → Debian package
declare -A PACKAGES=([nats-server]=nats-server [chromium]=chromium [protoc]=protobuf-compiler
  [grpc_python_plugin]=protobuf-compiler-grpc)
missing=()
for cmd in "${!PACKAGES[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/usr/bin/$cmd" ]; then
    missing+=("${PACKAGES[$cmd]}")
  fi
done
[ -f /usr/include/google/protobuf/duration.proto ] || missing+=(libprotobuf-dev)
# Native LAPACK/BLAS for the merge engine's float64 decompositions (JS fallback without them).
/sbin/ldconfig -p 2>/dev/null | grep -q 'liblapacke\.so\.3 ' || missing+=(liblapacke)
/sbin/ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\.0 ' || missing+=(libopenblas0-pthread)
# Python modules of Debian's python3 → Debian package
declare -A PYTHON_MODULES=([grpc]=python3-grpcio [google.protobuf]=python3-protobuf [numpy]=python3-numpy)
for module in "${!PYTHON_MODULES[@]}"; do
  /usr/bin/python3 -c "import $module" >/dev/null 2>&1 || missing+=("${PYTHON_MODULES[$module]}")
done
# venv with pip: `pip install ./client-sdk/python` into a virtual environment (PEP 668).
/usr/bin/python3 -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)

if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 \
    || die "missing ${missing[*]} and apt-get is not available: install them with your package manager"
  SUDO=""
  if [ "$(id -u)" != "0" ]; then
    command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}: run as root, or install sudo"
    SUDO="sudo"
  fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# WebGPU (Dawn, from the `webgpu` npm package) needs a Vulkan driver: on a
# GPU host the vendor's; the tests run the same path on Mesa's lavapipe (a
# CPU Vulkan), which Dawn accepts from Mesa 24 on. Debian 12 ships 22.3, so
# there mesa-vulkan-drivers comes from bookworm-backports, enabled on the same
# mirror as the machine's own apt sources.
mesa_ok() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null) || return 1
  dpkg --compare-versions "$v" ge 24 && dpkg-query -W libvulkan1 >/dev/null 2>&1
}
if command -v dpkg-query >/dev/null 2>&1 && ! mesa_ok; then
  command -v apt-get >/dev/null 2>&1 || die "Mesa >= 24 (mesa-vulkan-drivers) is missing and apt-get is not available"
  SUDO=""
  [ "$(id -u)" = "0" ] || SUDO="sudo"
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  target=()
  if [ "$codename" = "bookworm" ]; then
    list=/etc/apt/sources.list.d/tributary-backports.sources
    if [ ! -f "$list" ]; then
      uri=""
      [ -f /etc/apt/sources.list.d/debian.sources ] \
        && uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
      [ -z "$uri" ] && [ -f /etc/apt/sources.list ] \
        && uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
      [ -n "$uri" ] || die "cannot find this machine's Debian mirror to enable bookworm-backports (for Mesa >= 24)"
      echo "setup: enabling bookworm-backports from $uri (for Mesa >= 24)"
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
        | $SUDO tee "$list" >/dev/null
    fi
    target=(-t bookworm-backports)
  fi
  echo "setup: installing mesa-vulkan-drivers libvulkan1 ${target[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${target[@]}" \
    mesa-vulkan-drivers libvulkan1 >/dev/null
  mesa_ok || die "mesa-vulkan-drivers >= 24 did not install"
fi

# npm dependencies; `prepare` builds every package into its dist/.
# The optional GPU backend (@tensorflow/tfjs-node-gpu) downloads libtensorflow
# at install time: where that cannot happen it is skipped and the merge engine
# uses the wasm backend.
npm ci --no-audit --no-fund
echo "setup: done (node $(node --version)); run 'npm run demo', 'npm start' or 'npm test'"
