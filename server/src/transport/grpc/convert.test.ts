import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { CreateFederationRequestSchema, MergeSpecSchema } from "@tributary/protocol";
import { testFederation } from "../../coordinator/testing/fixtures.ts";
import type { MergeSpec } from "../../core/model.ts";
import { PARAM_KEYS, PARAMS } from "../../merge/options.ts";
import { federationFromProto, federationToProto } from "./convert.ts";

test("tributary.v1.MergeSpec has a field for every merge parameter, and no other", () => {
  const fields = MergeSpecSchema.fields.map((f) => f.localName).sort();
  const params = PARAM_KEYS.map((k) => PARAMS[k].protoField);
  assert.deepEqual(fields, ["method", "rank", "fullRank", ...params].sort());
});

test("a merge spec with every parameter set survives the protobuf round trip", () => {
  const merge: MergeSpec = {
    method: "fr",
    rank: 12,
    scale: 0.5,
    seed: 7,
    normBound: 3,
    normBoundMedian: 2,
    normBoundAction: "reject",
    k: 1.5,
    solver: "als",
    sigma: 0.3,
    iters: 17,
    tol: 1e-4,
    mu: 0.02,
    rankCap: 0.25,
    cutoff: 0.3,
    combine: "sum",
    density: 0.4,
    drop: 0.2,
    knotsCombine: "dare-ties",
    topK: 30,
    knotsScope: "module",
    coreCombine: "sum",
    dareP: 0.1,
  };
  assert.deepEqual(
    Object.keys(merge).sort(),
    ["method", "rank", ...PARAM_KEYS].sort(),
    "every parameter set",
  );
  const fed = { ...testFederation(), merge };
  const message = federationToProto(fed);
  const request = create(CreateFederationRequestSchema, {
    federationId: fed.id,
    displayName: fed.name,
    schema: message.schema,
    merge: message.merge,
    policy: message.policy,
  });
  assert.deepEqual(federationFromProto(request).merge, merge);
  const full = federationFromProto(
    create(CreateFederationRequestSchema, { merge: { method: "from", fullRank: true } }),
  );
  assert.deepEqual(full.merge, { method: "from", rank: "full" });
});
