/**
 * Crash safety with a real `kill -9`: a child process journals events and
 * uploads updates in a loop, printing a line after each durable
 * acknowledgement; the test kills it at different points, reopens the store
 * and checks that everything acknowledged is there and readable, and that
 * nothing unacknowledged is visible as accepted. The same data directory is
 * reused across kills, so each run also restarts on a crashed store.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { StoreState } from "../core/store.ts";
import { parseSafetensors } from "../peft/index.ts";
import { createFileStore } from "./file-store.ts";
import { acceptedUpdate } from "./journal-state.ts";
import type { RecoveryReport } from "./recovery.ts";
import { CRASH_UPDATE_SHAPE, sha256, tempDir, updateBytes } from "./testing/fixtures.ts";

const script = fileURLToPath(new URL("./testing/crash-writer.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

let dataDir = "";
let remove: () => Promise<void> = async () => undefined;
before(async () => {
  const tmp = await tempDir("tributary-crash-");
  dataDir = join(tmp.dir, "data");
  remove = tmp.remove;
});
after(() => remove());

/** Everything the writer acknowledged, over all its runs. */
interface Acks {
  /** seq → `type id`. */
  readonly events: Map<number, string>;
  /** client id → sha256 of its accepted update. */
  readonly updates: Map<string, string>;
  /** client id → [update id, durable bytes] of an abandoned upload. */
  readonly partials: Map<string, [string, number]>;
  /** client id → point where the last run was stopped on purpose. */
  readonly stalls: Map<string, string>;
}

function record(line: string, acks: Acks): void {
  const [kind, a, b, c] = line.split(" ");
  if (kind === "event") acks.events.set(Number(a), `${b} ${c}`);
  else if (kind === "update") acks.updates.set(a, c);
  else if (kind === "partial") acks.partials.set(a, [b, Number(c)]);
  else if (kind === "stall") acks.stalls.set(b, a);
  else throw new Error(`unexpected writer output: ${line}`);
}

/**
 * Runs the writer until it has printed `wanted` more lines, waits `delayMs`,
 * and kills it with SIGKILL; with `stallAt`, kills it as soon as it stalls there.
 */
async function runAndKill(wanted: number, delayMs: number, acks: Acks, stallAt = ""): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", script, dataDir, stallAt], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  let seen = 0;
  const closed = new Promise<NodeJS.Signals | null>((resolve) => {
    child.on("close", (_code, signal) => resolve(signal));
  });
  // Every line printed before the kill was acknowledged, so read them all, also after the kill.
  createInterface({ input: child.stdout }).on("line", (line) => {
    record(line, acks);
    if (line.startsWith("stall ")) child.kill("SIGKILL");
    else if (++seen === wanted && stallAt === "") setTimeout(() => child.kill("SIGKILL"), delayMs);
  });
  const signal = await closed;
  assert.equal(signal, "SIGKILL", `the writer stopped by itself:\n${stderr}`);
  assert.ok(seen >= wanted);
}

/** Checks that the upload the writer was stopped in (not acknowledged) is not accepted. */
function checkStall(acks: Acks, state: StoreState, recovery: RecoveryReport | undefined): void {
  for (const [clientId, point] of acks.stalls) {
    assert.equal(acceptedUpdate(state, "fed-1", 1, clientId), undefined, `${clientId} stalled at ${point}`);
    if (point === "committed") assert.equal(recovery?.unjournaledUpdates, 1);
  }
  stallsChecked += acks.stalls.size;
  acks.stalls.clear();
}

let stallsChecked = 0;

/** Reopens the store and checks it against the acknowledgements. */
async function verify(acks: Acks): Promise<void> {
  const store = createFileStore(dataDir);
  const state = await store.open();
  try {
    checkStall(acks, state, store.recovery);
    const fed = state.federations.get("fed-1");
    for (const [seq, what] of acks.events) {
      assert.ok(seq <= state.lastSeq, `acknowledged event ${seq} (${what}) lost`);
      const [type, id] = what.split(" ");
      if (type === "client-enrolled") assert.ok(fed?.clients.has(id), `client ${id} lost`);
    }
    for (const [clientId, sha] of acks.updates) {
      const rec = acceptedUpdate(state, "fed-1", 1, clientId);
      assert.equal(rec?.sha256, sha, `acknowledged update of ${clientId} lost`);
      const expected = parseSafetensors(updateBytes(Number(clientId.slice(1)), ...shape()), clientId);
      const reader = await store.openUpdate("fed-1", 1, clientId);
      for (const [name, t] of expected.tensors) {
        assert.ok(Buffer.from(await reader.read(name)).equals(Buffer.from(t.bytes)), `${clientId} ${name}`);
      }
      await reader.close();
    }
    for (const [clientId, [updateId, bytes]] of acks.partials) {
      assert.equal(acceptedUpdate(state, "fed-1", 1, clientId), undefined, `partial ${clientId} accepted`);
      const status = await store.uploadStatus({ federationId: "fed-1", round: 1, clientId, updateId });
      assert.deepEqual(status, { state: "partial", bytes });
    }
    // Only journaled updates are on disk as accepted, each intact.
    const accepted = [...(fed?.rounds.get(1)?.updates.values() ?? [])];
    const dir = join(dataDir, "updates", "fed-1", "1");
    const files = await readdir(dir).catch(() => []);
    assert.deepEqual(files.sort(), accepted.map((u) => `${u.clientId}.safetensors`).sort());
    for (const u of accepted) {
      assert.equal(sha256(await readFile(join(dir, `${u.clientId}.safetensors`))), u.sha256);
      assert.ok(!acks.partials.has(u.clientId));
    }
  } finally {
    await store.close();
  }
}

const shape = (): [number, number, number] => [
  CRASH_UPDATE_SHAPE.rank,
  CRASH_UPDATE_SHAPE.dIn,
  CRASH_UPDATE_SHAPE.dOut,
];

test("every acknowledged event and update survives kill -9 at different points", {
  timeout: 240_000,
}, async () => {
  const acks: Acks = { events: new Map(), updates: new Map(), partials: new Map(), stalls: new Map() };
  // [lines to wait for, then ms before the kill] or a point to stop at.
  const plan: ([number, number] | string)[] = [
    [1, 0],
    "mid-upload",
    [4, 1],
    "committed",
    [9, 0],
    [6, 3],
    "committed",
    [13, 2],
    "mid-upload",
    [5, 0],
  ];
  for (const step of plan) {
    if (typeof step === "string") await runAndKill(0, 0, acks, step);
    else await runAndKill(step[0], step[1], acks);
    await verify(acks);
  }
  assert.ok(acks.updates.size >= 3, `only ${acks.updates.size} updates acknowledged`);
  assert.ok(acks.partials.size >= 1, "no abandoned upload was acknowledged");
  assert.equal(stallsChecked, 4);
});
