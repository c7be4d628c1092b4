import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { normalAt, streamKey } from "../random.ts";
import { assertClose } from "../testing/assert-close.ts";
import { denseClient } from "../testing/random-modules.ts";
import type { ModuleGroup } from "../types.ts";
import { denseTaskVectors, flatten, weightedSum } from "./task-vectors.ts";
import { tiesDense, tiesTrim } from "./ties-dense.ts";

function rowModule(rows: number[][]): ModuleGroup {
  const dIn = rows[0].length;
  return { name: "ties", dOut: 1, dIn, clients: rows.map((r) => denseClient(1, dIn, r)) };
}

describe("tiesTrim", () => {
  it("keeps the top round(density · N) magnitudes, all ties at τ, never zeros", () => {
    const t = denseTaskVectors(rowModule([[1, -1, 1, 0.5]]))[0];
    assert.deepEqual(tiesTrim(t, 0.25).to1DArray(), [1, -1, 1, 0]);
    assert.deepEqual(tiesTrim(t, 0).to1DArray(), [0, 0, 0, 0]);
    const z = denseTaskVectors(rowModule([[0, 0, 2, 0]]))[0];
    assert.deepEqual(tiesTrim(z, 1).to1DArray(), [0, 0, 2, 0]);
    // round(0.375 · 4) = round(1.5) = 2 (Math.round rounds halves up).
    const u = denseTaskVectors(rowModule([[4, 3, 2, 1]]))[0];
    assert.deepEqual(tiesTrim(u, 0.375).to1DArray(), [4, 3, 0, 0]);
  });
});

describe("tiesDense", () => {
  it("trims, elects signs and takes the disjoint mean (hand example)", () => {
    const m = rowModule([
      [3, -1, 2, 0.5],
      [-2, -2, 2.5, 0.25],
      [1, 4, -3, 0],
    ]);
    // Trimmed (density 0.5, k = 2): [3,0,2,0], [-2,-2,2.5,0] (tie at τ = 2), [0,4,-3,0].
    // Sum [1, 2, 1.5, 0] → γ = [+, +, +, 0]; disjoint means [3, 4, (2+2.5)/2, 0].
    const r = tiesDense(m, { density: 0.5, lambda: 2 });
    assert.deepEqual(r.trimmed[1].to1DArray(), [-2, -2, 2.5, 0]);
    assert.deepEqual(r.sign.to1DArray(), [1, 1, 1, 0]);
    assert.deepEqual(r.merged.to1DArray(), [6, 8, 4.5, 0]);
  });

  it("with density 1 and same-sign positive inputs is the mean", () => {
    const clients = [0, 1, 2].map((i) => {
      const key = streamKey(7, "ties-pos", i);
      return denseClient(
        6,
        9,
        Array.from({ length: 54 }, (_, e) => Math.abs(normalAt(key, e)) + 0.1),
      );
    });
    const m: ModuleGroup = { name: "pos", dOut: 6, dIn: 9, clients };
    const mean = weightedSum(denseTaskVectors(m), [1 / 3, 1 / 3, 1 / 3]);
    assertClose(flatten(tiesDense(m, { density: 1 }).merged), flatten(mean), { rtol: 1e-14 });
  });

  it("is zero where the elected sign is 0 or nothing is kept", () => {
    const m = rowModule([
      [1, 0, 0],
      [-1, 0, 0],
    ]);
    assert.deepEqual(tiesDense(m, { density: 1 }).merged.to1DArray(), [0, 0, 0]);
    assert.deepEqual(tiesDense(m, { density: 0 }).merged.to1DArray(), [0, 0, 0]);
  });
});
