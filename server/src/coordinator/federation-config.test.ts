import assert from "node:assert/strict";
import { test } from "node:test";
import type { Federation } from "../core/model.ts";
import { MergeOptionsError } from "../merge/errors.ts";
import { FederationConfigError } from "./errors.ts";
import { mergeOptionsFor, validateFederation } from "./federation-config.ts";
import { testFederation } from "./testing/fixtures.ts";

function rejects(f: Federation, field: string, pattern?: RegExp): FederationConfigError {
  let caught: unknown;
  try {
    validateFederation(f);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof FederationConfigError, `expected FederationConfigError for ${field}`);
  assert.equal(caught.field, field);
  assert.equal(caught.code, "invalid-argument");
  assert.match(caught.message, new RegExp(`federation "${f.id.replace(/[.]/g, "\\.")}`));
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

test("a sane federation validates", () => {
  validateFederation(testFederation());
  validateFederation(testFederation({ cohortSize: 3, cohortFraction: 1, autoAdvance: false }));
});

test("ids, modules and dtypes are checked", () => {
  const f = testFederation();
  rejects({ ...f, id: "" }, "id");
  rejects({ ...f, id: "a/b" }, "id", /a\/b/);
  rejects({ ...f, id: "x".repeat(129) }, "id");
  rejects({ ...f, id: "a.b" }, "id", /NATS subject token/);
  rejects({ ...f, id: "." }, "id");
  rejects({ ...f, id: ".." }, "id");
  validateFederation({ ...f, id: "support-bot_v1-2" });
  rejects({ ...f, schema: { ...f.schema, modules: [] } }, "schema.modules");
  rejects({ ...f, schema: { ...f.schema, baseModel: "" } }, "schema.baseModel");
  rejects(
    { ...f, schema: { ...f.schema, modules: [f.schema.modules[0], f.schema.modules[0]] } },
    "schema.modules[1].name",
    /listed twice/,
  );
  rejects(
    { ...f, schema: { ...f.schema, modules: [{ ...f.schema.modules[0], dIn: 0 }] } },
    "schema.modules[0].dIn",
    /q_proj/,
  );
  rejects(
    { ...f, schema: { ...f.schema, modules: [{ ...f.schema.modules[0], maxRank: 1.5 }] } },
    "schema.modules[0].maxRank",
  );
  rejects({ ...f, schema: { ...f.schema, dtypes: [] } }, "schema.allowedDtypes");
});

test("the merge spec goes through resolveOptions", () => {
  const f = testFederation();
  const bad = rejects({ ...f, merge: { method: "ties", density: 2 } }, "merge", /density/);
  assert.ok(bad.cause instanceof MergeOptionsError);
  rejects({ ...f, merge: { method: "from", rank: 0 } }, "merge", /rank/);
});

test("the round policy must be able to run", () => {
  const f = testFederation();
  const p = (policy: Partial<Federation["policy"]>): Federation => testFederation(policy);
  rejects(p({ quorum: 0 }), "policy.quorum");
  rejects(p({ minClients: 0 }), "policy.minClients");
  rejects(p({ quorum: 3, cohortSize: 2 }), "policy.quorum", /cohortSize 2/);
  rejects(p({ cohortFraction: 0 }), "policy.cohortFraction");
  rejects(p({ cohortFraction: 1.5 }), "policy.cohortFraction");
  rejects(p({ deadlineMs: 0 }), "policy.deadlineMs");
  rejects(p({ waitAfterQuorumMs: -1 }), "policy.waitAfterQuorumMs");
  rejects(p({ maxUpdateBytes: 0 }), "policy.maxUpdateBytes");
  rejects({ ...f, policy: { ...f.policy, onDeadline: "retry" as "fail" } }, "policy.onDeadline");
});

test("mergeOptionsFor resolves the spec with sample counts", () => {
  const opts = mergeOptionsFor(testFederation(), [100, 300]);
  assert.equal(opts.method, "fedavg");
  assert.equal(opts.rank, 8);
  assert.deepEqual(opts.samples, [100, 300]);
  const from = mergeOptionsFor({ ...testFederation(), merge: { method: "from" } });
  assert.equal(from.k, 0.9);
  assert.equal(from.samples, undefined);
});
