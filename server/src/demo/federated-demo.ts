/**
 * `npm run demo`: a real federation on this machine. It starts the
 * coordinator with embedded defaults (data under `data/demo/`, a local
 * nats-server), creates two federations that differ only in their merge
 * method (FroM and FedAvg), and runs N simulated training nodes through the
 * client SDK: each node fine-tunes LoRA adapters with TensorFlow.js on its
 * own label subset of a shifted task (non-IID), submits them as PEFT
 * adapters, and starts the next round from the merged adapter it receives.
 * After every round it prints the merged adapter's accuracy on every node's
 * task and on all classes, for both methods side by side.
 *
 *   npm run demo -- [--nodes 5] [--rounds 12] [--rank 8] [--epochs 3] [--skew 4] [--seed 1] [--dp 0.5,1,2]
 *                   [--methods from,fedavg,knots,…] [--ranks 4,8,16] [--buffered]
 *                   [--data-dir data/demo] [--nats-url nats://host:4222]
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { connect, readAdapter, runBuffered, runFederated, type TributaryClient } from "@tributary/client";
import { setupProblem } from "../cli/setup-problems.ts";
import { selectBackend } from "../compute/backend.ts";
import { silentLog } from "../core/log.ts";
import type { Federation, PrivacySpec } from "../core/model.ts";
import { newToken, tokenDigest } from "../core/tokens.ts";
import { methodOf } from "../merge/methods/registry.ts";
import { METHODS, type MethodName } from "../merge/params.ts";
import { startService } from "../service/coordinator-service.ts";
import { findNatsServer } from "../transport/nats/nats-binary.ts";
import {
  BASE_MODEL_ID,
  createTask,
  DEFAULT_TASK_SPEC,
  type Evaluation,
  evaluate,
  moduleShapes,
  trainBaseModel,
  trainNode,
} from "./training/index.ts";

/** Options of one demo run. */
export interface DemoOptions {
  readonly nodes: number;
  readonly rounds: number;
  readonly rank: number;
  readonly epochs: number;
  /** Quantity skew: the last node has this many times fewer samples than the first. */
  readonly skew: number;
  readonly seed: number;
  readonly dataDir: string;
  /** An existing NATS server (JetStream) to announce on; default: a local nats-server is started. */
  readonly natsUrl?: string;
  /** Training samples per class of the largest node. */
  readonly trainPerClass?: number;
  /**
   * Noise multipliers of federations with central DP to run beside FroM and
   * FedAvg (FedAvg of clipped updates plus noise, adaptive clipping, δ 1e-5);
   * each row then reports its ε.
   */
  readonly dp?: readonly number[];
  /** The merge methods to run side by side (default FroM and FedAvg). */
  readonly methods?: readonly MethodName[];
  /** Each node's LoRA rank, cycled over the nodes (default: `rank` for all); the merge rank is the largest. */
  readonly ranks?: readonly number[];
  /**
   * Also run FedAvg as buffered asynchronous rounds (FedBuff), a buffer of
   * one update per node: each node trains fresh factors on top of the
   * global adapter folded into its base and sends them.
   */
  readonly buffered?: boolean;
  /** Where progress lines go. */
  readonly print: (line: string) => void;
}

/** One method's merged adapter evaluated after one round. */
export interface DemoRow {
  readonly method: string;
  readonly round: number;
  readonly accuracy: Evaluation;
  /** With central DP: the federation's ε after this round (δ = 1e-5). */
  readonly epsilon?: number;
}

/** One federation the demo runs. */
interface DemoVariant {
  readonly id: string;
  readonly method: MethodName;
  readonly label: string;
  readonly privacy?: PrivacySpec;
  readonly buffered?: boolean;
}

/** The federations the demo runs side by side. */
function variants(o: DemoOptions): DemoVariant[] {
  const methods: DemoVariant[] =
    o.methods === undefined
      ? [
          { id: "demo-from", method: "from", label: "FroM" },
          { id: "demo-fedavg", method: "fedavg", label: "FedAvg" },
        ]
      : o.methods.map((m) => ({
          id: `demo-${m}`,
          method: m,
          label: methodOf(m).title.length <= 8 ? methodOf(m).title : m,
        }));
  return [
    ...methods,
    ...(o.buffered === true
      ? [{ id: "demo-fedbuff", method: "fedavg" as const, label: "FedBuff", buffered: true }]
      : []),
    ...(o.dp ?? []).map((z) => ({
      id: `demo-dp-${String(z).replace(".", "_")}`,
      method: "fedavg" as const,
      label: `DP z=${z}`,
      privacy: {
        clipNorm: 1,
        noiseMultiplier: z,
        delta: 1e-5,
        reproducible: false,
        adaptive: { targetQuantile: 0.5, clipLr: 0.2, clippedCountStddev: Math.max(z, o.nodes / 20) },
      },
    })),
  ];
}

/** Methods whose merged rank is the clients' ranks together (no `rank` in their spec). */
const stacks = (m: MethodName) => m === "flora" || m === "knots" || m === "core-space";

const pct = (x: number) => `${(100 * x).toFixed(0).padStart(3)}%`;

/**
 * Runs the demo federation to the end and returns every evaluated round.
 *
 * @example
 * const rows = await runDemo({ nodes: 3, rounds: 2, rank: 4, epochs: 2, skew: 1, seed: 1, dataDir, print: console.log });
 */
export async function runDemo(o: DemoOptions): Promise<DemoRow[]> {
  if (o.natsUrl === undefined) findNatsServer(); // fail before training, not after
  const backend = await selectBackend();
  o.print(`tensor backend: ${backend.name}`);
  const task = createTask({
    ...DEFAULT_TASK_SPEC,
    nodes: o.nodes,
    sizeSkew: o.skew,
    seed: o.seed,
    ...(o.trainPerClass !== undefined ? { trainPerClass: o.trainPerClass } : {}),
  });
  const t0 = performance.now();
  const { model: base } = trainBaseModel(task);
  const before = await evaluate({ task, base, adapter: null });
  o.print(
    `frozen base network trained in ${((performance.now() - t0) / 1000).toFixed(1)} s; on the shifted task it scores ${pct(before.global)} (per node: ${before.perNode.map(pct).join(" ")})`,
  );
  o.print(
    `nodes hold classes ${task.nodes.map((n) => `{${n.classes.join(",")}}`).join(" ")} with ${task.nodes.map((n) => n.train.n).join("/")} training samples`,
  );

  await rm(o.dataDir, { recursive: true, force: true });
  const svc = await startService({
    dataDir: o.dataDir,
    port: 0,
    localNatsPort: 0,
    operatorToken: newToken(),
    threads: 1,
    log: silentLog,
    ...(o.natsUrl !== undefined ? { natsUrl: o.natsUrl } : {}),
  });
  o.print(`coordinator on ${svc.endpoint.address}, NATS on ${svc.natsUrl}, data in ${o.dataDir}`);
  const clients: TributaryClient[] = [];
  const rows: DemoRow[] = [];
  const federations = variants(o);
  try {
    const shapes = moduleShapes(base);
    const rankOf = (i: number) => (o.ranks === undefined ? o.rank : o.ranks[i % o.ranks.length]);
    const maxRank = Math.max(...Array.from({ length: o.nodes }, (_, i) => rankOf(i)));
    const tokens = new Map<string, string[]>();
    for (const m of federations) {
      const federation: Omit<Federation, "createdAt"> = {
        id: m.id,
        name: `demo (${m.label})`,
        schema: {
          baseModel: BASE_MODEL_ID,
          modules: shapes.map((s) => ({ ...s, maxRank: maxRank })),
          dtypes: ["F32"],
        },
        merge: { method: m.method, ...(stacks(m.method) ? {} : { rank: maxRank }) },
        ...(m.privacy !== undefined ? { privacy: m.privacy } : {}),
        policy: {
          minClients: o.nodes,
          quorum: o.nodes,
          waitAfterQuorumMs: 0,
          deadlineMs: 300_000,
          onDeadline: "fail",
          maxUpdateBytes: 64 << 20,
          ...(m.buffered === true
            ? {
                buffered: {
                  size: o.nodes,
                  staleness: { kind: "polynomial", a: 0.5 },
                  serverLr: 1,
                  maxStaleness: 10,
                },
              }
            : {}),
        },
      };
      await svc.coordinator.createFederation(federation);
      const list: string[] = [];
      for (let i = 0; i < o.nodes; i++) {
        const token = newToken();
        // Each federation's nodes are other identities (FroM's and FedAvg's aside, as the demo always had
        // them): a client's concurrent uploads are bounded per id, whatever the federation.
        const shared = m.id === "demo-from" || m.id === "demo-fedavg";
        const id = shared ? `node-${i + 1}` : `${m.id.slice("demo-".length)}-node-${i + 1}`;
        await svc.coordinator.enrollClient(m.id, id, tokenDigest(token));
        list.push(token);
      }
      tokens.set(m.id, list);
    }
    // Evaluate each merged adapter as it is published, and print rounds as both methods finish them.
    const pending = new Map<number, Map<string, Evaluation>>();
    const evaluations: Promise<void>[] = [];
    const header = `round | ${federations.map((m) => `${m.label.padEnd(6)} per node${" ".repeat(Math.max(0, 5 * o.nodes - 8))} | all`).join(" | ")}`;
    o.print(header);
    // Each federation's last round, once published (a buffered loop ends before its last fold does).
    const lastPublished = new Map<string, () => void>();
    const allPublished = Promise.all(
      federations.map((m) => new Promise<void>((resolve) => lastPublished.set(m.id, resolve))),
    );
    for (const m of federations) {
      svc.coordinator.watch(m.id, ({ round }) => {
        if (round.state !== "published" || round.resultHash === undefined) return;
        if (round.number >= o.rounds) lastPublished.get(m.id)?.();
        const job = (async () => {
          const { handle } = await svc.coordinator.publishedAdapter(m.id, { round: round.number });
          const reader = await handle.open();
          const safetensors = await reader.read(0, handle.size);
          await reader.close();
          const accuracy = await evaluate({
            task,
            base,
            adapter: { configJson: handle.configJson, safetensors },
          });
          rows.push({
            method: m.label,
            round: round.number,
            accuracy,
            ...(round.epsilon !== undefined ? { epsilon: round.epsilon } : {}),
          });
          const done = pending.get(round.number) ?? new Map<string, Evaluation>();
          done.set(m.label, accuracy);
          pending.set(round.number, done);
          if (done.size === federations.length) {
            o.print(
              `${String(round.number).padStart(5)} | ${federations
                .map((x) => {
                  const a = done.get(x.label)!;
                  const eps = rows.find((r) => r.method === x.label && r.round === round.number)?.epsilon;
                  return `${x.label.padEnd(6)} ${a.perNode.map(pct).join(" ")} | ${pct(a.global)}${eps !== undefined ? ` ε ${eps.toFixed(1)}` : ""}`;
                })
                .join(" | ")}`,
            );
          }
        })();
        evaluations.push(job);
      });
    }
    const loops = federations.flatMap((m) =>
      tokens.get(m.id)!.map(async (token, i) => {
        const client = connect({ coordinator: svc.endpoint.address, token, nats: svc.natsUrl });
        clients.push(client);
        const train = async (globalDir: string | null, round: { number: number }) => {
          const global = globalDir === null ? null : await readAdapter(globalDir);
          const r = await trainNode({
            node: i,
            task,
            base,
            globalAdapter: global,
            // FedBuff sends each node's delta: fresh factors on top of the global adapter.
            ...(m.buffered === true ? { foldGlobal: true } : {}),
            rank: rankOf(i),
            epochs: o.epochs,
            seed: o.seed * 100_003 + round.number * 101 + i,
          });
          return { adapterDir: r.adapter, samples: r.samples, metrics: r.metrics };
        };
        if (m.buffered === true) await runBuffered({ client, federationId: m.id, updates: o.rounds, train });
        else await runFederated({ client, federationId: m.id, rounds: o.rounds, train });
      }),
    );
    await Promise.all(loops);
    await allPublished;
    await Promise.all(evaluations);
    // Code-point order, the same on every Node.js (ICU collation differs between versions).
    return rows.sort((a, b) => a.round - b.round || (a.method < b.method ? -1 : a.method > b.method ? 1 : 0));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await svc.close();
  }
}

/** Parses `npm run demo -- …` flags. */
function parseDemoArgs(argv: string[]): Omit<DemoOptions, "print"> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      nodes: { type: "string", default: "5" },
      rounds: { type: "string", default: "12" },
      rank: { type: "string", default: "8" },
      epochs: { type: "string", default: "3" },
      skew: { type: "string", default: "4" },
      seed: { type: "string", default: "1" },
      "data-dir": { type: "string", default: join("data", "demo") },
      "nats-url": { type: "string" },
      dp: { type: "string" },
      methods: { type: "string" },
      ranks: { type: "string" },
      buffered: { type: "boolean" },
    },
  });
  const methods = values.methods?.split(",").map((m) => {
    if (!(METHODS as readonly string[]).includes(m)) {
      throw new Error(`--methods takes merge methods (${METHODS.join(", ")}); got "${m}"`);
    }
    return m as MethodName;
  });
  const ranks = values.ranks?.split(",").map((r) => {
    const n = Number(r);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`--ranks takes ranks ≥ 1, e.g. --ranks 4,8,16; got "${values.ranks}"`);
    return n;
  });
  const dp =
    values.dp === undefined
      ? undefined
      : values.dp.split(",").map((z) => {
          const n = Number(z);
          if (z.trim() === "" || !Number.isFinite(n) || n <= 0)
            throw new Error(`--dp takes noise multipliers above 0, e.g. --dp 0.5,1,2; got "${values.dp}"`);
          return n;
        });
  const int = (k: "nodes" | "rounds" | "rank" | "epochs" | "skew" | "seed") => {
    const n = Number(values[k]);
    if (!Number.isFinite(n) || n <= 0)
      throw new Error(`--${k} must be a positive number, got "${values[k]}"`);
    return n;
  };
  return {
    nodes: int("nodes"),
    rounds: int("rounds"),
    rank: int("rank"),
    epochs: int("epochs"),
    skew: int("skew"),
    seed: int("seed"),
    dataDir: values["data-dir"],
    ...(dp !== undefined ? { dp } : {}),
    ...(methods !== undefined ? { methods } : {}),
    ...(ranks !== undefined ? { ranks } : {}),
    ...(values.buffered === true ? { buffered: true } : {}),
    ...(values["nats-url"] !== undefined || process.env.TRIBUTARY_NATS_URL
      ? { natsUrl: values["nats-url"] ?? process.env.TRIBUTARY_NATS_URL }
      : {}),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = performance.now();
  try {
    const opts = parseDemoArgs(process.argv.slice(2));
    const rows = await runDemo({ ...opts, print: (l) => console.log(l) });
    const last = Math.max(...rows.map((r) => r.round));
    const final = rows.filter((r) => r.round === last);
    console.log(
      `\nafter ${last} rounds (${((performance.now() - t0) / 1000).toFixed(0)} s): ${final.map((r) => `${r.method} ${pct(r.accuracy.global).trim()} on all classes${r.epsilon !== undefined ? ` (ε ${r.epsilon.toFixed(2)} at δ 1e-5)` : ""}`).join(", ")}`,
    );
  } catch (err) {
    // Reported here, not left uncaught: the tfjs wasm backend's uncaughtException
    // handler would bury the message under its minified source.
    const problem = setupProblem(err);
    console.error(`demo: ${problem ?? (err instanceof Error ? (err.stack ?? err.message) : String(err))}`);
    process.exit(1);
  }
}
