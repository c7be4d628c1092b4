/**
 * Runs a numeric test suite on every tfjs backend that loads here
 * (STYLE.md §9: one suite, every implementation).
 */
import { type BackendName, useBackend } from "../../compute/backend.ts";

const CANDIDATES: BackendName[] = ["tensorflow", "wasm", "cpu"];

/** Backends that load on this machine (wasm and cpu at least). */
export async function loadableBackends(): Promise<BackendName[]> {
  const out: BackendName[] = [];
  for (const b of CANDIDATES) if (await useBackend(b)) out.push(b);
  return out;
}

/** Activates `name` for the tests that follow. */
export async function activate(name: BackendName): Promise<void> {
  if (!(await useBackend(name))) throw new Error(`backend ${name} failed to load`);
}
