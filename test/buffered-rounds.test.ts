/**
 * Buffered asynchronous rounds (FedBuff): any enrolled client submits at any
 * time, naming the round it trained from; every 2 updates fold into the
 * global adapter as `global + η Σ s(τ_i) w_i Θ_i` at rank 8; an update more
 * than 1 round stale is refused; an accepted update counts once across a
 * restart; both SDKs' asynchronous loops take part.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { connect, runBuffered } from "@tributary/client";
import { watchResults } from "@tributary/client/nats";
import { FetchAdapterRequestSchema, type RoundAnnouncement } from "@tributary/protocol";
import { truncatedSvd } from "../server/src/merge/reference/index.ts";

import { relativeError } from "../server/src/peft/testing/fixtures.ts";
import { type CoordinatorProcess, startCoordinatorProcess } from "./helpers/coordinator-process.ts";
import { waitFor } from "./helpers/expect.ts";
import {
  createTestFederation,
  type Fixture,
  joinAll,
  listUpdates,
  OPERATOR_TOKEN,
  startFixture,
  submitUpdate,
  type TestClient,
} from "./helpers/federation.ts";
import { bearer, clientsFor, fetchAdapter, upload } from "./helpers/grpc-calls.ts";
import {
  asMatrix,
  type ModuleProducts,
  moduleProducts,
  moduleProductsOfDir,
} from "./helpers/module-products.ts";
import { publishedResults } from "./helpers/nats-inspect.ts";
import { startNatsServer, type TestNatsServer } from "./helpers/nats-server.ts";
import { runPythonScript } from "./helpers/python-script.ts";

const ETA = 0.8;
const s = (tau: number) => (1 + tau) ** -0.5;

type Dense = ModuleProducts;

/** `trunc_8(Σ c_i X_i)` per module. */
function folded(terms: readonly [number, Dense][]): Dense {
  const first = terms[0][1];
  return new Map(
    [...first].map(([n, m]) => {
      const sum = new Float64Array(m.dense.length);
      for (const [c, d] of terms) {
        const x = d.get(n)!.dense;
        for (let i = 0; i < sum.length; i++) sum[i] += c * x[i];
      }
      const t = truncatedSvd(asMatrix(sum, m.dOut, m.dIn), 8);
      return [n, { dense: Float64Array.from(t.b.mmul(t.a).to1DArray()), rank: 8, dOut: m.dOut, dIn: m.dIn }];
    }),
  );
}

function assertNear(got: Dense, want: Dense, what: string): void {
  for (const [n, m] of want) {
    const e = relativeError(got.get(n)!.dense, m.dense);
    assert.ok(e < 1e-4, `${what} ${n}: relative error ${e}`);
  }
}

describe("buffered asynchronous rounds (FedBuff)", () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({
      clients: 3,
      method: "fedavg",
      rank: 8,
      minClients: 1,
      quorum: 2,
      buffered: { size: 2, staleness: "polynomial", stalenessA: 0.5, serverLr: ETA, maxStaleness: 1 },
    });
  });
  after(async () => {
    await fx.close();
  });

  const send = (c: TestClient, round: number, updateId: string, samples: number) =>
    upload(fx.client, c.token, {
      federationId: fx.federationId,
      round,
      clientId: c.id,
      updateId,
      samples,
      configJson: c.configJson,
      bytes: c.bytes,
    });
  const adapterOf = async (round: number) => {
    const a = await fetchAdapter(
      fx.client,
      fx.clients[0].token,
      create(FetchAdapterRequestSchema, {
        federationId: fx.federationId,
        selector: { case: "round", value: round },
      }),
    );
    return moduleProducts(a.configJson, a.bytes);
  };

  it("folds each full buffer into the global adapter, staleness-weighted, refuses the too stale, counts each update once", async () => {
    const [c1, c2, c3] = fx.clients;
    const theta = await Promise.all(fx.clients.map((c) => moduleProductsOfDir(c.dir)));
    const watch = watchResults({ servers: fx.nats.url, federationId: fx.federationId });
    const announced: RoundAnnouncement[] = [];
    const following = (async () => {
      for await (const a of watch) announced.push(a);
    })();
    const published = async (round: number) => {
      for (let i = 0; i < 600 && !announced.some((a) => a.round === round); i++)
        await new Promise((r) => setTimeout(r, 50));
      assert.ok(
        announced.some((a) => a.round === round),
        `round ${round} announced`,
      );
    };
    try {
      await fx.joinAll();
      assert.deepEqual(
        fx.service.coordinator.current(fx.federationId)?.cohort,
        [],
        "no cohort: anyone may submit",
      );

      // Round 1: the first buffer, no global adapter yet.
      assert.equal((await send(c1, 1, "a1", 100)).round, 1);
      assert.equal((await send(c2, 1, "b1", 300)).round, 1);
      await published(1);
      const g1 = await adapterOf(1);
      assertNear(
        g1,
        folded([
          [ETA * 0.25, theta[0]],
          [ETA * 0.75, theta[1]],
        ]),
        "round 1",
      );

      // Round 2: client-3 trained from round 1 (τ = 1), client-1 from round 2 (τ = 0).
      assert.equal((await send(c3, 1, "c2", 200)).round, 2);
      assert.equal((await send(c1, 2, "a2", 200)).round, 2);
      await published(2);
      assertNear(
        await adapterOf(2),
        folded([
          [1, g1],
          [ETA * 0.5 * s(1), theta[2]],
          [ETA * 0.5 * s(0), theta[0]],
        ]),
        "round 2",
      );

      // Round 3: naming round 1 is 2 rounds stale, past the max of 1.
      await assert.rejects(
        send(c2, 1, "b-stale", 100),
        /STALE_ROUND|2 rounds behind the open round, beyond this federation's max staleness 1/,
      );
      assert.equal((await send(c2, 3, "b3", 100)).round, 3);
      // A restart replays the buffer: the accepted update is still in it, once.
      await fx.restart();
      const again = await send(c2, 3, "b3", 100);
      assert.equal(again.duplicate, true);
      assert.equal((await send(c3, 2, "c3", 100)).round, 3);
      await published(3);
      const listed = await listUpdates(fx, fx.federationId, 3);
      assert.deepEqual(listed.updates.map((u) => u.clientId).sort(), [c2.id, c3.id]);

      // Round 4: the TypeScript and the Python asynchronous loops, one update each.
      const sdk = connect({ coordinator: fx.service.endpoint.address, token: c1.token });
      try {
        const python = runPythonScript(
          [
            "import sys, tributary_client as t",
            "c = t.connect(sys.argv[1], sys.argv[2])",
            "c.join(sys.argv[3])",
            "out = t.run_buffered(c, lambda init, r: (sys.argv[4], 100), updates=1, work_dir=sys.argv[5], timeout=60)",
            "print(out[0].round, out[0].error)",
            "c.close()",
          ],
          [fx.service.endpoint.address, c3.token, fx.federationId, c3.dir, join(fx.root, "py-buffered")],
        );
        const seen: (string | null)[] = [];
        const outcomes = await runBuffered({
          client: sdk,
          federationId: fx.federationId,
          updates: 1,
          train: async (globalDir) => {
            seen.push(globalDir);
            return { adapterDir: c1.dir, samples: 100 };
          },
        });
        assert.equal(outcomes[0].submitted?.round, 4);
        assert.match(seen[0] ?? "", /global-round-3$/, "trained from the latest global adapter");
        assert.equal((await python).stdout.trim(), "4 None");
      } finally {
        await sdk.close();
      }
      await published(4);
    } finally {
      await watch.close();
      await following;
    }
  });
});

for (const store of ["file", "jetstream"] as const)
  describe(`a buffered round's coordinator killed with SIGKILL mid-buffer (${store} store)`, () => {
    let root: string;
    let nats: TestNatsServer;
    let proc: CoordinatorProcess | undefined;
    before(async () => {
      root = await mkdtemp(join(tmpdir(), `tributary-buffered-crash-${store}-`));
      nats = await startNatsServer({ jetstream: true });
    });
    after(async () => {
      await proc?.kill("SIGKILL");
      await nats?.close();
      await rm(root, { recursive: true, force: true });
    });

    it("keeps the buffered update, folds it exactly once, announces the round once, with its rank-4 variant", async () => {
      const dataDir = join(root, "data");
      const args = ["--store", store];
      proc = await startCoordinatorProcess({ dataDir, natsUrl: nats.url, args });
      const conn = clientsFor(proc.address);
      try {
        const fed = await createTestFederation(conn.operator, root, {
          clients: 2,
          method: "fedavg",
          rank: 8,
          minClients: 1,
          quorum: 2,
          buffered: { size: 2, serverLr: 1, maxStaleness: 3 },
        });
        await joinAll(conn.client, fed);
        const send = (c: TestClient) => submitUpdate(conn.client, fed.federationId, c, 1, 100);
        const [c1, c2] = fed.clients;
        assert.equal((await send(c1)).duplicate, false);
        const port = proc.port;
        await proc.kill("SIGKILL");
        proc = await startCoordinatorProcess({ dataDir, natsUrl: nats.url, port, args });
        assert.equal((await send(c1)).duplicate, true, "the acknowledged update survived the kill, once");
        assert.equal((await send(c2)).duplicate, false);
        const published = await waitFor("round 1 to be announced", async () => {
          const p = await publishedResults(nats.url, fed.federationId);
          return p.announcements.some((a) => a.round === 1) && p;
        });
        assert.equal(published.announcements.filter((a) => a.round === 1).length, 1);
        // client-1 trains at rank 4, client-2 at 8: the fold keeps a rank-4 variant too.
        const announced = published.announcements.find((a) => a.round === 1) as {
          rankVariants?: { rank: number }[];
        };
        assert.deepEqual(
          announced.rankVariants?.map((v) => v.rank),
          [4],
        );
        const listed = await listUpdates(
          { operator: conn.operator, operatorMd: bearer(OPERATOR_TOKEN) },
          fed.federationId,
          1,
        );
        assert.deepEqual(listed.updates.map((u) => u.clientId).sort(), [c1.id, c2.id]);
      } finally {
        conn.close();
      }
    });
  });
