/**
 * For the decomposition tests: every implementation the suite must pass —
 * the JS one and native LAPACK (one test suite for both). LAPACK missing is
 * an error naming what to install, not a skip; `TRIBUTARY_LAPACK=off` runs
 * the JS one alone, on purpose.
 */
import { test } from "node:test";
import { loadLapack } from "../compute/lapack.ts";
import { type Decompositions, jsDecompositions, useDecompositions } from "../merge/linalg/index.ts";

async function implementations(): Promise<Decompositions[]> {
  if (process.env.TRIBUTARY_LAPACK === "off") return [jsDecompositions];
  const lapack = await loadLapack();
  if (!lapack.ok) {
    throw new Error(
      `the decomposition tests run on JS and on LAPACK, but ${lapack.reason} (bash scripts/setup.sh installs it; TRIBUTARY_LAPACK=off tests JS only)`,
    );
  }
  return [jsDecompositions, lapack.decompositions];
}

/** The implementations under test. */
export const DECOMPOSITIONS = await implementations();

/** Registers `fn` as one test per implementation, with that implementation active. */
export function testEach(name: string, fn: () => void): void {
  for (const d of DECOMPOSITIONS) {
    test(`${name} [${d.name}]`, () => {
      useDecompositions(d);
      try {
        fn();
      } finally {
        useDecompositions(jsDecompositions);
      }
    });
  }
}
