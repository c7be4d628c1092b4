/**
 * Central differential privacy in rounds, against the real coordinator: a
 * federation with a `privacy` block merges each round as the clipped
 * uniform mean plus Gaussian noise (the broadcast equals the engine's DP
 * merge of the same adapters under the round's recorded noise key), every
 * merged round carries its ε and the federation's, and no round opens past
 * the budget: the operator is told FAILED_PRECONDITION PRIVACY_BUDGET_SPENT,
 * and GetStatus says why no round is open.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import {
  CreateFederationRequestSchema,
  epsilonOf,
  GetStatusRequestSchema,
  type GetStatusResponse,
  HeartbeatRequestSchema,
  type HeartbeatResponse,
  ListRoundsRequestSchema,
  type ListRoundsResponse,
  StartRoundRequestSchema,
  statusDetailsOf,
} from "@tributary/protocol";
import { createMergePool } from "../server/src/compute/merge-pool.ts";
import { clipFactors } from "../server/src/merge/dp/clip.ts";
import { clientNorm2 } from "../server/src/merge/grams.ts";
import { resolveOptions } from "../server/src/merge/options.ts";
import type { FederationView } from "../server/src/operator-ui/views.ts";
import { decodeAdapter, readAdapter } from "../server/src/peft/index.ts";
import { denseProduct, relativeError } from "../server/src/peft/testing/fixtures.ts";
import { mergeAdapters } from "../server/src/pipeline/merge-adapters.ts";
import { waitFor } from "./helpers/expect.ts";
import {
  type Fixture,
  fetchRound,
  joinAll,
  MODULES,
  startFixture,
  submitUpdate,
} from "./helpers/federation.ts";
import { bearer, call } from "./helpers/grpc-calls.ts";
import { recordedMetrics } from "./helpers/metrics.ts";

const CLIP = 0.05;
const Z = 1.2;
const DELTA = 1e-5;
/** Both clients in every round of two enrolled: sampling rate 1. */
const eps = (rounds: number) => epsilonOf({ q: 1, noiseMultiplier: Z, steps: rounds }, DELTA).epsilon;
/** Room for two rounds, not three. */
const BUDGET = (eps(2) + eps(3)) / 2;

describe("central differential privacy in rounds", { timeout: 120_000 }, () => {
  let fx: Fixture;
  const spans = new InMemorySpanExporter();
  const metrics = recordedMetrics({
    tracer: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }).getTracer("dp"),
  });
  /** Every log line the coordinator wrote, as JSON, to check no noise key is in it. */
  const logged: string[] = [];
  const record = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    logged.push(JSON.stringify({ level, msg, ...fields }, (_k, v) => (v instanceof Error ? v.message : v)));
  before(async () => {
    fx = await startFixture({
      log: { info: record("info"), warn: record("warn"), error: record("error") },
      telemetry: metrics.telemetry,
      ui: true,
      clients: 2,
      method: "fedavg",
      rank: 4,
      privacy: {
        clipNorm: CLIP,
        noiseMultiplier: Z,
        delta: DELTA,
        epsilonBudget: BUDGET,
        reproducible: true,
      },
    });
    await fx.joinAll();
  });
  after(async () => {
    await fx?.close();
  });

  const rounds = async () =>
    (
      (await call(
        fx.operator.listRounds,
        fx.operator,
        create(ListRoundsRequestSchema, { federationId: fx.federationId }),
        fx.operatorMd,
      )) as ListRoundsResponse
    ).rounds;

  it("merges each round as the clipped mean plus noise, and charges it to the accountant", async () => {
    for (const n of [1, 2]) {
      await waitFor(
        `round ${n} open`,
        () => fx.service.coordinator.current(fx.federationId)?.number === n,
        10_000,
      );
      for (const c of fx.clients)
        assert.equal((await submitUpdate(fx.client, fx.federationId, c, n)).accepted, true);
      await waitFor(
        `round ${n} published`,
        () => fx.service.coordinator.rounds(fx.federationId)[n - 1]?.round.state === "published",
        30_000,
      );
      const r = (await rounds()).find((x) => x.number === n)!;
      assert.ok(Math.abs(r.epsilon - eps(n)) < 1e-9, `round ${n}: ε ${r.epsilon}, expected ${eps(n)}`);
      assert.ok(Math.abs(r.roundEpsilon - eps(1)) < 1e-9);

      // The broadcast is the engine's DP merge of the same adapters under the round's noise key.
      const result = await fx.service.coordinator.result(fx.federationId, n);
      assert.ok(
        result?.noiseKey !== undefined && /^[0-9a-f]{64}$/.test(result.noiseKey),
        "reproducible: key kept",
      );
      const inputs = await Promise.all(fx.clients.map((c) => readAdapter(c.dir)));
      const norms2 = inputs.map((a) =>
        [...a.modules.values()].reduce(
          (s, m) => s + clientNorm2({ a: m.a, b: m.b, rank: m.rank, scaling: m.scaling }, m.dOut, m.dIn),
          0,
        ),
      );
      const factors = clipFactors(norms2, CLIP);
      assert.equal(result.clipped, factors.filter((f) => f < 1).length);
      assert.ok(result.clipped > 0, "the clip norm bites");
      const pool = await createMergePool({ threads: 0 });
      try {
        const direct = await mergeAdapters(
          inputs,
          resolveOptions({
            method: "fedavg",
            rank: 4,
            dp: { clipNorm: CLIP, noiseMultiplier: Z, clipFactors: factors, noiseKey: result.noiseKey },
          }),
          pool,
        );
        const fetched = await fetchRound(fx.client, fx.clients[0].token, fx.federationId, n);
        const broadcast = decodeAdapter(fetched.configJson, fetched.bytes, "broadcast");
        for (const [name, entry] of direct.modules) {
          const m = broadcast.modules.get(name)!;
          const want = denseProduct(entry.result.merged.b, entry.result.merged.a, entry.result.merged.rank);
          assert.ok(relativeError(denseProduct(m.b, m.a, m.rank, m.scaling), want) < 1e-6, name);
        }
        // Not the noiseless mean: the noise is in the broadcast.
        const clean = await mergeAdapters(
          inputs,
          resolveOptions({
            method: "fedavg",
            rank: 4,
            dp: { clipNorm: CLIP, noiseMultiplier: 0, clipFactors: factors, noiseKey: result.noiseKey },
          }),
          pool,
        );
        const name = MODULES[0].name;
        const c = clean.modules.get(name)!.result.merged;
        const m = broadcast.modules.get(name)!;
        assert.ok(
          relativeError(denseProduct(m.b, m.a, m.rank, m.scaling), denseProduct(c.b, c.a, c.rank)) > 0.01,
        );
      } finally {
        await pool.close();
      }
    }
  });

  it("opens no round past the budget, and says so to the operator", async () => {
    await waitFor(
      "the coordinator to settle",
      () => fx.service.coordinator.whyNoRound(fx.federationId)?.startsWith("privacy budget spent") === true,
      10_000,
    );
    assert.equal(fx.service.coordinator.rounds(fx.federationId).length, 2, "no third round opened");
    const status = (await call(
      fx.operator.getStatus,
      fx.operator,
      create(GetStatusRequestSchema),
      fx.operatorMd,
    )) as GetStatusResponse;
    const p = status.privacy[fx.federationId];
    assert.ok(p?.budgetSpent && p.rounds === 2 && Math.abs(p.epsilon - eps(2)) < 1e-9);
    assert.equal(p.epsilonBudget, BUDGET);
    // The operator page's API (what its "Privacy ε" card shows, with "budget spent").
    const page = await fetch(new URL("/api/federations", fx.service.ui!.url), {
      headers: { authorization: `Bearer ${fx.service.operatorToken}` },
    });
    const view = ((await page.json()) as { federations: FederationView[] }).federations.find(
      (f) => f.id === fx.federationId,
    );
    assert.equal(view?.privacy?.budgetSpent, true);
    assert.ok(Math.abs((view?.privacy?.epsilon ?? 0) - eps(2)) < 1e-9);
    // A waiting client hears why (HeartbeatResponse.waiting_reason, as the SDKs' waiting reports print it).
    const beat = (await call(
      fx.client.heartbeat,
      fx.client,
      create(HeartbeatRequestSchema, { federationId: fx.federationId }),
      bearer(fx.clients[0].token),
    )) as HeartbeatResponse;
    assert.match(beat.waitingReason, /^privacy budget spent/);
    const gauge = await metrics.sum("tributary_privacy_epsilon", { federation: fx.federationId });
    assert.ok(Math.abs(gauge - eps(2)) < 1e-9, `Prometheus: ε ${gauge}`);
    assert.match(
      status.waitingReasons[fx.federationId],
      /^privacy budget spent: ε = [\d.]+ of [\d.]+; another round would take it to/,
    );
    await assert.rejects(
      call(
        fx.operator.startRound,
        fx.operator,
        create(StartRoundRequestSchema, { federationId: fx.federationId }),
        fx.operatorMd,
      ),
      (err: unknown) => {
        assert.equal(statusDetailsOf(err as never)?.errorInfo?.reason, "PRIVACY_BUDGET_SPENT");
        assert.match((err as Error).message, /FAILED_PRECONDITION.*privacy budget spent/);
        return true;
      },
    );
  });

  it("never writes a noise key to the logs, metrics or traces", async () => {
    const keys = await Promise.all(
      [1, 2].map(async (n) => (await fx.service.coordinator.result(fx.federationId, n))?.noiseKey),
    );
    assert.equal(keys.filter((k) => k !== undefined).length, 2);
    const exported = JSON.stringify({
      metrics: await Promise.all(
        ["tributary_privacy_epsilon", "tributary_merge_exclusions_total", "tributary_rounds_total"].map((n) =>
          metrics.points(n),
        ),
      ),
      spans: spans
        .getFinishedSpans()
        .map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })),
    });
    assert.ok(spans.getFinishedSpans().length > 0, "spans were recorded");
    for (const key of keys) {
      assert.ok(!logged.some((line) => line.includes(key!)), "no log line holds the key");
      assert.ok(!exported.includes(key!), "no metric or span holds the key");
    }
    assert.ok(
      logged.some((l) => l.includes("round merged")),
      "the log was recorded",
    );
  });

  it("moves the clip norm towards the target quantile of the clients' norms (adaptive clipping)", async () => {
    const C0 = 1e-4; // far under every client's norm: all clipped, so C grows
    const fed = await fx.addFederation({
      id: "dp-adaptive",
      clients: 2,
      method: "fedavg",
      rank: 4,
      privacy: {
        clipNorm: C0,
        noiseMultiplier: 0.8,
        delta: DELTA,
        targetQuantile: 0.5,
        clipLr: 0.3,
        clippedCountStddev: 0.5,
      },
    });
    await joinAll(fx.client, fed);
    const clipOf = async (n: number) => {
      const list = (
        (await call(
          fx.operator.listRounds,
          fx.operator,
          create(ListRoundsRequestSchema, { federationId: fed.federationId }),
          fx.operatorMd,
        )) as ListRoundsResponse
      ).rounds;
      return list.find((r) => r.number === n)!;
    };
    for (const n of [1, 2]) {
      await waitFor(
        `round ${n} open`,
        () => fx.service.coordinator.current(fed.federationId)?.number === n,
        10_000,
      );
      for (const c of fed.clients)
        assert.equal((await submitUpdate(fx.client, fed.federationId, c, n)).accepted, true);
      await waitFor(
        `round ${n} published`,
        () => fx.service.coordinator.rounds(fed.federationId)[n - 1]?.round.state === "published",
        30_000,
      );
    }
    const r1 = await fx.service.coordinator.result(fed.federationId, 1);
    assert.equal(r1?.clipped, 2, "both clipped at C0");
    const b1 = r1?.unclippedFraction;
    assert.ok(b1 !== undefined && Math.abs(b1) < 1.5, `noised fraction ${b1} (true 0, σ_b/m = 0.25)`);
    assert.equal((await clipOf(1)).clipNorm, C0);
    const expected = C0 * Math.exp(-0.3 * (b1 - 0.5));
    assert.ok(Math.abs((await clipOf(2)).clipNorm - expected) < 1e-15, "round 2 clips at C0·exp(−η(b̃ − γ))");
  });

  it("refuses central DP on a merge it cannot cover", async () => {
    await assert.rejects(
      call(
        fx.operator.createFederation,
        fx.operator,
        create(CreateFederationRequestSchema, {
          federationId: "dp-from",
          schema: {
            baseModelId: "synthetic/tiny-llama",
            modules: MODULES.map((m) => ({ name: m.name, dIn: m.dIn, dOut: m.dOut, maxRank: 8 })),
          },
          merge: { method: "from", rank: 4 },
          policy: { minClients: 1, quorum: 1 },
          privacy: { clipNorm: 1, noiseMultiplier: 1, delta: 1e-5 },
        }),
        fx.operatorMd,
      ),
      /INVALID_ARGUMENT.*privacy.*method fedavg/,
    );
  });
});
