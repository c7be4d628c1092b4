import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { defaultOptions, METHODS, PARAM_KEYS, PARAMS, resolveOptions } from "../options.ts";
import { MERGE_METHODS, methodOf } from "./registry.ts";

test("every method is one object in the registry, under its own name", () => {
  assert.deepEqual(Object.keys(MERGE_METHODS).sort(), [...METHODS].sort());
  for (const name of METHODS) {
    const m = methodOf(name);
    assert.equal(m.name, name);
    assert.ok(m.title.length > 0 && m.summary.length > 0, name);
    for (const k of m.params) {
      assert.ok(PARAM_KEYS.includes(k), `${name} reads unknown parameter ${k}`);
      assert.ok(PARAMS[k].common !== true, `${name} lists the common parameter ${k}`);
    }
    for (const k of Object.keys(m.defaults ?? {}))
      assert.ok(m.params.includes(k as never), `${name} defaults ${k}`);
  }
});

test("every method names its dense reference, which exists and exports an implementation", async () => {
  for (const name of METHODS) {
    const file = new URL(`../reference/${methodOf(name).reference}.ts`, import.meta.url);
    assert.ok(existsSync(file), `${name}: no ${file.pathname}`);
    const exported = Object.values(await import(file.href)).filter((v) => typeof v === "function");
    assert.ok(exported.length > 0, `${name}: ${file.pathname} exports no function`);
  }
});

test("options come from the vocabulary and the method's defaults, checked by each rule", () => {
  assert.equal(defaultOptions("lore").iters, 50);
  assert.equal(defaultOptions("from").iters, 100);
  for (const k of PARAM_KEYS) assert.equal(defaultOptions("fedavg")[k], PARAMS[k].default, k);
  assert.throws(() => resolveOptions({ method: "from", k: -1 }), /from: k must be ≥ 0, got -1/);
  assert.throws(
    () => resolveOptions({ method: "lore", rankCap: 2 }),
    /lore: rank cap must be in \(0, 1\], got 2/,
  );
  assert.throws(() => resolveOptions({ method: "dare", combine: "from" }), /dare combines with mean or sum/);
  assert.throws(() => resolveOptions({ method: "ties", rank: "full" }), /ties produces a dense update/);
  assert.throws(() => resolveOptions({ method: "nope" }), /unknown merge method "nope"/);
});

test("only the methods with a streamed merge stream, and FroM only with its exact solver", () => {
  const streams = METHODS.filter((n) => methodOf(n).streamed !== undefined);
  assert.deepEqual(streams.sort(), ["fedavg", "from", "task-arithmetic"]);
  const from = methodOf("from").streamed!;
  assert.equal(from.when?.(resolveOptions({ method: "from", solver: "als" })), false);
  assert.equal(from.when?.(resolveOptions({ method: "from" })), true);
});
