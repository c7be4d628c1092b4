/**
 * The client SDK and `tributary client` against a real coordinator and a
 * real nats-server: join, submit, the merged adapter from NATS and from the
 * gRPC fallback, idempotent resubmits, a stale round refused without
 * retries, an upload resumed after its connection was killed, a coordinator
 * restart survived, the one-call hook, and the CLI loop a Python trainer
 * would run.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import {
  AbortRoundRequestSchema,
  GetUploadStatusRequestSchema,
  type GetUploadStatusResponse,
} from "@tributary/protocol";
import {
  adapterSchema,
  connect,
  describeWaiting,
  readAdapter,
  runFederated,
  StaleRoundError,
  type TributaryClient,
  TributaryError,
  type UploadProgress,
  type Waiting,
} from "../client-sdk/src/index.ts";
import { defaultUpdateId } from "../client-sdk/src/upload.ts";
import { waitFor } from "./helpers/expect.ts";
import { type BigClient, createBigFederation, type Fixture, startFixture } from "./helpers/federation.ts";
import { bearer, call } from "./helpers/grpc-calls.ts";
import { freePort } from "./helpers/ports.ts";
import { startProxy } from "./helpers/tcp-proxy.ts";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const within = (ms: number) => ({ signal: AbortSignal.timeout(ms) });

describe("client SDK: join, submit, merged adapter over NATS and gRPC", () => {
  let fx: Fixture;
  const clients: TributaryClient[] = [];
  before(async () => {
    fx = await startFixture({ clients: 2, method: "fedavg", rank: 4 });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await fx.close();
  });

  it("runs a round end to end, and refuses a stale round without retrying", async () => {
    const [c1, c2] = fx.clients;
    const retries: string[] = [];
    const viaNats = connect({
      coordinator: fx.service.endpoint.address,
      token: c1.token,
      nats: fx.nats.url,
      retry: { onRetry: (r) => retries.push(`${r.what}: ${r.reason}`) },
    });
    // Several coordinators as one list: the first address has nobody listening, so the client uses the second.
    const dead = await freePort();
    const viaGrpc = connect({
      coordinator: `127.0.0.1:${dead},${fx.service.endpoint.address}`,
      token: c2.token,
    });
    clients.push(viaNats, viaGrpc);

    const j1 = await viaNats.join(fx.federationId);
    assert.equal(j1.clientId, c1.id);
    assert.equal(j1.federation.id, fx.federationId);
    const j2 = await viaGrpc.join(fx.federationId, adapterSchema(await readAdapter(c2.dir)));
    assert.equal(j2.clientId, c2.id);

    const round = await viaNats.nextRound(within(10_000));
    assert.equal(round.number, 1);
    assert.equal(round.state, "open");
    assert.deepEqual([...round.cohort].sort(), [c1.id, c2.id]);
    const updates = viaNats.rounds(within(30_000));

    // FedAvg weights updates by sample counts: a submit without one is refused before anything is sent.
    assert.equal(j1.weightsBySamples, true);
    await assert.rejects(viaNats.submit(1, c1.dir), (err: unknown) => {
      assert.ok(err instanceof TributaryError);
      assert.equal(err.code, "SAMPLES_REQUIRED");
      assert.match(err.details, /weights updates by their training sample counts: pass .*samples: N/);
      return true;
    });
    const progress: UploadProgress[] = [];
    const ack1 = await viaNats.submit(1, c1.dir, {
      samples: 100,
      metrics: { loss: 0.42 },
      onProgress: (p) => progress.push(p),
    });
    assert.equal(ack1.round, 1);
    assert.equal(ack1.duplicate, false);
    assert.equal(ack1.sha256, sha256(c1.bytes));
    assert.equal(ack1.size, c1.bytes.length);
    assert.equal(progress.at(-1)?.sent, c1.bytes.length);
    // The same adapter again is the same update: acknowledged as a duplicate.
    const again = await viaNats.submit(1, c1.dir, { samples: 100 });
    assert.equal(again.duplicate, true);
    assert.equal(again.updateId, ack1.updateId);

    await viaGrpc.submit(1, { configJson: c2.configJson, safetensors: c2.bytes }, { samples: 300 });
    const [fromNats, fromGrpc] = await Promise.all([
      viaNats.waitForResult(1, within(30_000)),
      viaGrpc.waitForResult(1, within(30_000)),
    ]);
    const published = fx.service.coordinator.rounds(fx.federationId)[0].round;
    assert.equal(published.state, "published");
    assert.equal(fromNats.source, "nats");
    assert.equal(fromGrpc.source, "grpc");
    for (const got of [fromNats, fromGrpc]) {
      assert.equal(got.round, 1);
      assert.equal(got.contentHash, published.resultHash);
      assert.equal(sha256(got.safetensors), published.resultHash);
    }
    assert.equal(fromNats.configJson, fromGrpc.configJson);

    // The watch saw the round go from open to published.
    const states: string[] = [];
    for await (const r of updates) {
      if (r.number === 1) states.push(r.state);
      if (r.number === 1 && r.state === "published") break;
    }
    assert.ok(states.includes("published"), `states seen: ${states.join(", ")}`);

    // The latest adapter without a round number, and the next round this client is in.
    assert.equal((await viaGrpc.globalAdapter()).contentHash, published.resultHash);
    assert.equal((await viaNats.nextRound({ after: 1, ...within(10_000) })).number, 2);

    // A different update for the published round: typed, permanent, not retried.
    await assert.rejects(
      viaNats.submit(1, { configJson: c2.configJson, safetensors: c2.bytes }, { samples: 1 }),
      (err: unknown) => {
        assert.ok(err instanceof StaleRoundError, String(err));
        assert.equal(err.code, "FAILED_PRECONDITION");
        assert.equal(err.currentRound, 2);
        assert.match(err.details, /round 1 is not open for updates/);
        return true;
      },
    );
    assert.deepEqual(retries, []);
  });

  it("runs rounds through the one-call hook", async () => {
    const [viaNats, viaGrpc] = clients;
    const seen: (string | null)[] = [];
    const run = (client: TributaryClient, dir: string) =>
      runFederated({
        client,
        federationId: fx.federationId,
        rounds: 1,
        signal: AbortSignal.timeout(30_000),
        train: async (globalDir, round) => {
          assert.equal(round.number, 2);
          seen.push(globalDir);
          return { adapterDir: dir, samples: 50, metrics: { loss: 0.3 } };
        },
      });
    const [a, b] = await Promise.all([run(viaNats, fx.clients[0].dir), run(viaGrpc, fx.clients[1].dir)]);
    for (const outcomes of [a, b]) {
      assert.equal(outcomes.length, 1);
      assert.equal(outcomes[0].round, 2);
      assert.equal(outcomes[0].result?.round, 2);
      assert.equal(outcomes[0].submitted?.duplicate, false);
    }
    // Each trainer started from round 1's merged adapter, written as a PEFT directory.
    const round1 = fx.service.coordinator.rounds(fx.federationId)[0].round.resultHash;
    for (const dir of seen) {
      assert.ok(dir !== null);
      assert.equal(sha256(await readFile(join(dir, "adapter_model.safetensors"))), round1);
    }
  });
});

describe("client SDK: FLoRA, folding each merged adapter into the base", () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ clients: 2, method: "flora", rank: 0, foldIntoBase: true });
  });
  after(async () => {
    await fx.close();
  });

  it("hands the trainer every merged adapter so far, in round order, and no global adapter", async () => {
    const seen: { round: number; global: string | null; folded: string[] }[] = [];
    const run = async (token: string, dir: string) => {
      const client = connect({ coordinator: fx.service.endpoint.address, token });
      try {
        return await runFederated({
          client,
          federationId: fx.federationId,
          rounds: 2,
          signal: AbortSignal.timeout(60_000),
          train: async (global, round, { folded }) => {
            seen.push({ round: round.number, global, folded: [...folded] });
            return { adapterDir: dir, samples: 100 };
          },
        });
      } finally {
        await client.close();
      }
    };
    const [a] = await Promise.all([
      run(fx.clients[0].token, fx.clients[0].dir),
      run(fx.clients[1].token, fx.clients[1].dir),
    ]);
    // FLoRA stacks the factors: each round's adapter has rank 4 + 8.
    const merged = a[0].result!;
    assert.match(merged.configJson, /"r": 12/);
    const round1 = fx.service.coordinator.rounds(fx.federationId)[0].round.resultHash;
    for (const s of seen) {
      assert.equal(s.global, null, "fresh factors: no global adapter to start from");
      assert.equal(s.folded.length, s.round - 1);
      for (const dir of s.folded)
        assert.equal(sha256(await readFile(join(dir, "adapter_model.safetensors"))), round1);
    }
    assert.equal(seen.filter((s) => s.round === 2).length, 2);
  });
});

const MiB = 1024 * 1024;

describe("client SDK: waiting says why", () => {
  let fx: Fixture;
  const clients: TributaryClient[] = [];
  before(async () => {
    fx = await startFixture({ clients: 2, method: "from", rank: 4 });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await fx?.close();
  });

  it("reports every few seconds what a wait waits on: too few clients, then the round's updates and deadline", async () => {
    const [c1, c2] = fx.clients;
    const a = connect({ coordinator: fx.service.endpoint.address, token: c1.token });
    const b = connect({ coordinator: fx.service.endpoint.address, token: c2.token });
    clients.push(a, b);
    const joined = await a.join(fx.federationId);
    assert.equal(joined.waitingReason, "1 of 2 clients connected; a round opens when 2 are");

    const seen: Waiting[] = [];
    const next = a.nextRound({ ...within(30_000), waitingEveryMs: 150, onWaiting: (w) => seen.push(w) });
    await waitFor("a report of why no round is open", () => seen.length > 0, 10_000);
    assert.deepEqual(seen[0], {
      for: "round",
      quorum: 2,
      reason: "1 of 2 clients connected; a round opens when 2 are",
    });
    assert.equal(
      describeWaiting(seen[0]),
      "waiting for a round: no round open: 1 of 2 clients connected; a round opens when 2 are",
    );
    await b.join(fx.federationId);
    const round = await next;
    const count = seen.length;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(seen.length, count, "no report once the wait is over");

    await a.submit(round.number, c1.dir);
    const results: Waiting[] = [];
    const result = a.waitForResult(round.number, {
      ...within(30_000),
      waitingEveryMs: 150,
      onWaiting: (w) => results.push(w),
    });
    await waitFor("a report on the open round", () => results.length > 0, 10_000);
    const w = results[0];
    assert.equal(w.for, "result");
    assert.equal(w.awaitedRound, round.number);
    assert.equal(w.round?.state, "open");
    assert.equal(w.round?.acceptedUpdates, 1);
    assert.equal(w.awaiting, 1);
    assert.ok(w.deadlineInMs !== undefined && w.deadlineInMs > 0);
    assert.match(
      describeWaiting(w),
      /^waiting for round 1's merged adapter: round 1 is open: 1\/2 updates \(quorum 2\), 1 of 2 clients still to submit, \d+[smh]/,
    );
    // Local DP: only the clipped, noised update leaves the node, and the coordinator merges it.
    const sent = await b.submit(round.number, c2.dir, { localDp: { clipNorm: 0.05, noiseMultiplier: 0.5 } });
    assert.ok(sent.localDp?.clipped && sent.localDp.norm > 0.05);
    assert.equal(sent.localDp.sigma, 0.025);
    assert.notEqual(
      sent.sha256,
      sha256(c2.bytes),
      "the coordinator stored other bytes than the adapter on disk",
    );
    assert.equal((await result).round, round.number);
  });
});

describe("client SDK: a dropped upload resumes, a coordinator restart is survived", () => {
  let fx: Fixture;
  const federationId = "fed-big";
  const big: BigClient[] = [];
  before(async () => {
    fx = await startFixture({ clients: 1 });
    big.push(...(await createBigFederation(fx, federationId, ["big-1", "big-2"])));
  });
  after(async () => {
    await fx.close();
  });

  it("resumes from the coordinator's durable bytes after the connection is killed mid-upload", async () => {
    const [b1, b2] = big;
    const size = b1.bytes.length;
    assert.ok(size > 4 * MiB, `adapter is ${size} bytes`);
    const proxy = await startProxy(fx.service.endpoint.address, 4 * MiB);
    let updateId = "";
    const status = () =>
      call(
        fx.client.getUploadStatus,
        fx.client,
        create(GetUploadStatusRequestSchema, { federationId, round: 1, updateId }),
        bearer(b1.token),
      ) as Promise<GetUploadStatusResponse>;
    const atRetry: Promise<GetUploadStatusResponse>[] = [];
    const first = connect({
      coordinator: proxy.address,
      token: b1.token,
      // Ask the coordinator (directly, not through the proxy) what it holds when the SDK retries.
      retry: { initialDelayMs: 300, onRetry: () => atRetry.push(status()) },
    });
    const second = connect({ coordinator: fx.service.endpoint.address, token: b2.token, nats: fx.nats.url });
    try {
      await first.join(federationId);
      await second.join(federationId);
      const round = await first.nextRound(within(10_000));
      assert.equal(round.number, 1);

      updateId = defaultUpdateId(1, sha256(b1.bytes), (await readAdapter(b1.dir)).configJson);
      const progress: UploadProgress[] = [];
      const submitting = first.submit(1, b1.dir, { samples: 100, onProgress: (p) => progress.push(p) });
      // Kill the connection once the coordinator has durably stored at least 1 MiB of it.
      const stored = await waitFor(
        "1 MiB of the upload to be stored",
        async () => {
          const s = await status();
          return s.receivedBytes >= BigInt(MiB) && s;
        },
        20_000,
        10,
      );
      assert.equal(stored.complete, false);
      proxy.cut();
      const beforeRetry = proxy.forwarded();
      const ack = await submitting;
      const resent = proxy.forwarded() - beforeRetry;

      assert.equal(ack.updateId, updateId);
      assert.equal(ack.duplicate, false);
      assert.equal(ack.sha256, sha256(b1.bytes));
      assert.equal(ack.size, size);
      assert.ok(ack.attempts >= 2, `attempts: ${ack.attempts}`);
      assert.equal(atRetry.length, ack.attempts - 1);
      const held = await atRetry.at(-1)!;
      assert.equal(held.complete, false);
      assert.ok(
        held.receivedBytes >= stored.receivedBytes,
        "the coordinator kept the bytes of the dropped attempt",
      );
      // It resumed where the coordinator's bytes ended, instead of sending everything again.
      assert.equal(ack.resumedFrom, Number(held.receivedBytes));
      assert.equal(progress.find((p) => p.attempt === ack.attempts)?.sent, ack.resumedFrom);
      assert.ok(
        resent < size - ack.resumedFrom! + 64 * 1024,
        `${resent} bytes went through the proxy after the cut; ${size - ack.resumedFrom!} were missing`,
      );
      const done = (await call(
        fx.client.getUploadStatus,
        fx.client,
        create(GetUploadStatusRequestSchema, { federationId, round: 1, updateId }),
        bearer(b1.token),
      )) as GetUploadStatusResponse;
      assert.equal(done.complete, true);
      assert.equal(done.receivedBytes, BigInt(size));

      // The coordinator restarts while the second client uploads: the upload retries, the watches reconnect.
      const restarting = fx.restart();
      const ack2 = await second.submit(1, b2.dir, { samples: 100 });
      await restarting;
      assert.equal(ack2.duplicate, false);
      const merged = await first.waitForResult(1, within(60_000));
      assert.equal(merged.contentHash, fx.service.coordinator.rounds(federationId)[0].round.resultHash);
      assert.equal(sha256(merged.safetensors), merged.contentHash);
    } finally {
      await first.close();
      await second.close();
      await proxy.close();
    }
  });
});

const BIN = fileURLToPath(new URL("../server/bin/tributary.mjs", import.meta.url));

/** Runs `tributary client …` as a separate process, as a shell script would. */
function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [BIN, "client", ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
    });
    child.stderr!.on("data", (d: Buffer) => {
      err += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, out, err }));
  });
}

describe("tributary client: the CLI loop of a Python trainer", () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ clients: 2, method: "fedavg", rank: 4 });
  });
  after(async () => {
    await fx.close();
  });

  it("joins, submits, waits for the merged adapter, and exits with codes a script can act on", async () => {
    const [c1, c2] = fx.clients;
    const state = join(fx.root, "state", "client.json");
    const tokenFile = join(fx.root, "client-1.token");
    await writeFile(tokenFile, `${c1.token}\n`, { mode: 0o600 });
    const s = ["--state", state];

    const joined = await cli([
      "join",
      "--coordinator",
      fx.service.endpoint.address,
      "--federation",
      fx.federationId,
      "--token-file",
      tokenFile,
      "--nats-url",
      fx.nats.url,
      ...s,
    ]);
    assert.equal(joined.code, 0, joined.err);
    assert.match(
      joined.out,
      new RegExp(
        `joined ${fx.federationId} as ${c1.id}; no round has started yet; no round open: 1 of 2 clients connected; a round opens when 2 are`,
      ),
    );
    const saved = JSON.parse(await readFile(state, "utf8"));
    assert.equal(saved.tokenFile, tokenFile);
    assert.equal(saved.token, undefined, "a token given as a file is not copied into the state file");
    assert.equal((await stat(state)).mode & 0o777, 0o600);

    // The other client joins with the SDK: both are connected, round 1 opens.
    const other = connect({ coordinator: fx.service.endpoint.address, token: c2.token });
    try {
      await other.join(fx.federationId);
      const status = await cli(["status", "--json", ...s]);
      assert.equal(status.code, 0, status.err);
      const st = JSON.parse(status.out);
      assert.equal(st.round.number, 1);
      assert.equal(st.round.state, "open");
      assert.equal(st.inCohort, true);

      const usage = await cli(["submit", ...s]);
      assert.equal(usage.code, 2);
      assert.match(usage.err, /submit needs one ADAPTER_DIR/);
      const noSamples = await cli(["submit", "--round", "1", ...s, c1.dir]);
      assert.equal(noSamples.code, 2);
      assert.match(
        noSamples.err,
        /submit needs --samples N: federation ".*" weights updates by their training sample counts \(fedavg\)/,
      );

      const submitted = await cli([
        "submit",
        "--round",
        "1",
        "--samples",
        "100",
        "--metric",
        "loss=0.42",
        ...s,
        c1.dir,
      ]);
      assert.equal(submitted.code, 0, submitted.err);
      assert.match(
        submitted.out,
        new RegExp(
          `accepted: update r1-[0-9a-f]+ for round 1 \\(${c1.bytes.length} bytes, sha256 ${sha256(c1.bytes)}\\)`,
        ),
      );

      await other.submit(1, c2.dir, { samples: 300 });
      const out = join(fx.root, "global");
      const waited = await cli(["wait", "--timeout", "60", "--out", out, ...s]);
      assert.equal(waited.code, 0, waited.err);
      assert.match(waited.err, /via nats/, "the state file's NATS URL is used");
      const [round, hash] = waited.out.trim().split(" ");
      assert.equal(round, "1");
      assert.equal(hash, fx.service.coordinator.rounds(fx.federationId)[0].round.resultHash);
      const written = await readAdapter(out);
      assert.equal(sha256(written.safetensors), hash);
      assert.match(written.configJson, /"r"/);

      const fetched = await cli(["fetch", "--round", "1", "--out", join(fx.root, "fetched"), ...s]);
      assert.equal(fetched.code, 0, fetched.err);
      assert.equal(fetched.out.trim(), `1 ${hash}`);

      // Round 1 is over: a different update for it is refused for good, naming the status.
      const stale = await cli(["submit", "--round", "1", "--samples", "300", ...s, c2.dir]);
      assert.equal(stale.code, 1);
      assert.match(
        stale.err,
        /FAILED_PRECONDITION \(STALE_ROUND\): .*round 1 is not open for updates; the current round is 2/,
      );

      // Round 2 never gets its updates in time: exit 4.
      const timedOut = await cli(["wait", "--round", "2", "--timeout", "1", ...s]);
      assert.equal(timedOut.code, 4, timedOut.err);

      // The operator aborts round 2: exit 3.
      await call(
        fx.operator.abortRound,
        fx.operator,
        create(AbortRoundRequestSchema, { federationId: fx.federationId, round: 2, reason: "maintenance" }),
        fx.operatorMd,
      );
      const aborted = await cli(["wait", "--round", "2", "--timeout", "30", ...s]);
      assert.equal(aborted.code, 3, aborted.err);
      assert.match(aborted.err, /round 2 aborted: maintenance/);
    } finally {
      await other.close();
    }

    // Nobody listening: exit 5 once the retries are spent.
    const down = await cli(["status", "--coordinator", "127.0.0.1:1", "--retries", "1", ...s]);
    assert.equal(down.code, 5, down.err);
    assert.match(down.err, /unreachable/);
  });
});
