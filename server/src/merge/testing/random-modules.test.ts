import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  denseClient,
  denseOf,
  duplicateClient,
  randomModuleGroup,
  withZeroClient,
} from "./random-modules.ts";

describe("randomModuleGroup", () => {
  const opts = { seed: 1, dIn: 20, dOut: 12, ranks: [2, 4] };

  it("is deterministic and seed-dependent", () => {
    const a = randomModuleGroup(opts);
    const b = randomModuleGroup(opts);
    assert.deepEqual(a, b);
    const c = randomModuleGroup({ ...opts, seed: 2 });
    assert.notDeepEqual(a.clients[0].a, c.clients[0].a);
    const d = randomModuleGroup({ ...opts, name: "other" });
    assert.notDeepEqual(a.clients[0].b, d.clients[0].b);
  });

  it("has the requested shapes, default scaling 2/r, and modest task-vector entries", () => {
    const g = randomModuleGroup(opts);
    assert.equal(g.name, "test.module");
    g.clients.forEach((c, i) => {
      assert.equal(c.rank, opts.ranks[i]);
      assert.equal(c.a.length, c.rank * 20);
      assert.equal(c.b.length, 12 * c.rank);
      assert.equal(c.scaling, 2 / c.rank);
      const theta = denseOf(g, i);
      const rms = Math.sqrt(theta.reduce((acc, x) => acc + x * x, 0) / theta.length);
      assert.ok(rms > 0.01 && rms < 1, `client ${i} rms ${rms}`);
    });
    const scaled = randomModuleGroup({ ...opts, scale: 3, scalings: [1, 1] });
    assert.equal(scaled.clients[1].scaling, 1);
    assert.ok(Math.abs(scaled.clients[0].a[5] - 3 * randomModuleGroup(opts).clients[0].a[5]) < 1e-6);
  });
});

describe("group helpers", () => {
  const g = randomModuleGroup({ seed: 4, dIn: 9, dOut: 6, ranks: [1, 3] });

  it("duplicateClient appends an independent copy", () => {
    const d = duplicateClient(g, 1);
    assert.equal(d.clients.length, 3);
    assert.deepEqual(denseOf(d, 2), denseOf(g, 1));
    assert.notEqual(d.clients[2].a, g.clients[1].a);
    assert.throws(() => duplicateClient(g, 5), /no client 5/);
  });

  it("withZeroClient appends a zero task vector with non-zero A", () => {
    const z = withZeroClient(g);
    assert.equal(z.clients.length, 3);
    assert.equal(z.clients[2].rank, 1);
    assert.ok(z.clients[2].a.some((x) => x !== 0));
    assert.ok(denseOf(z, 2).every((x) => x === 0));
  });

  it("denseOf computes s · B · A, and denseClient reproduces its values", () => {
    const c = denseClient(2, 3, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(
      Array.from(denseOf({ name: "d", dOut: 2, dIn: 3, clients: [c] }, 0)),
      [1, 2, 3, 4, 5, 6],
    );
    const one = {
      name: "h",
      dOut: 2,
      dIn: 2,
      clients: [{ a: Float32Array.from([1, 2]), b: Float32Array.from([3, 4]), rank: 1, scaling: 0.5 }],
    };
    assert.deepEqual(Array.from(denseOf(one, 0)), [1.5, 3, 2, 4]);
  });
});
