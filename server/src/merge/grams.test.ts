import assert from "node:assert/strict";
import { testEach } from "../testing/decompositions.ts";
import { clientNorm2 } from "./grams.ts";
import { denseTaskVector, frob2 } from "./reference/index.ts";
import { randomModuleGroup } from "./testing/random-modules.ts";

testEach("clientNorm2 is ‖s·B·A‖²_F (float64), at several ranks and shapes", () => {
  for (const [dOut, dIn, ranks] of [
    [7, 9, [1, 3]],
    [40, 24, [8, 5]],
    [64, 130, [16]],
  ] as const) {
    const g = randomModuleGroup({
      seed: dOut + dIn,
      dOut,
      dIn,
      ranks: [...ranks],
      scalings: ranks.map((r) => 3 / r),
    });
    for (const c of g.clients) {
      const want = frob2(denseTaskVector(c, dOut, dIn));
      const got = clientNorm2(c, dOut, dIn);
      assert.ok(Math.abs(got - want) <= 1e-9 * want, `${dOut}×${dIn} r=${c.rank}: ${got} vs ${want}`);
    }
  }
});
