/**
 * The client as a training node installs it: `npm pack` of `@tributary/protocol`
 * and `@tributary/client`, `npm install` of the two tarballs into an empty
 * project, then plain `node` (no tsx, no repository on the module path):
 * importing the package, `tributary-client --help`, and a whole training-node
 * loop (join → next round → submit → merged adapter) run by two such processes
 * against a real coordinator and nats-server. The install must not pull in
 * the server's dependencies (tfjs, OpenTelemetry, tsx).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { sha256Hex } from "@tributary/protocol";
import { assertEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { type Fixture, startFixture } from "./helpers/federation.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Package names a training node must never get. */
const FORBIDDEN = [/^@tensorflow\//, /^@opentelemetry\//, /^tsx$/, /^esbuild$/, /^@tributary\/server$/];

/** Every package name under `node_modules` (scoped ones as `@scope/name`). */
async function installedPackages(nodeModules: string): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(nodeModules)) {
    if (entry.startsWith(".")) continue;
    if (entry.startsWith("@")) {
      for (const sub of await readdir(join(nodeModules, entry))) names.push(`${entry}/${sub}`);
    } else names.push(entry);
  }
  return names;
}

/** `npm pack` of a workspace folder (its `prepack` builds it) into `dest`; the tarball's path. */
async function pack(folder: string, dest: string): Promise<string> {
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", dest], {
    cwd: join(ROOT, folder),
    maxBuffer: 64 * 1024 * 1024,
  });
  const [{ filename }] = JSON.parse(stdout.slice(stdout.indexOf("["))) as { filename: string }[];
  return join(dest, filename);
}

const TRAINING_NODE = `
import { connect, readAdapter, writeAdapter } from "@tributary/client";

const [coordinator, token, nats, federation, adapterDir, outDir] = process.argv.slice(2);
const client = connect({ coordinator, token, nats });
try {
  await client.join(federation);
  const round = await client.nextRound({ signal: AbortSignal.timeout(30_000) });
  const ack = await client.submit(round.number, await readAdapter(adapterDir), { samples: 100 });
  const merged = await client.waitForResult(round.number, { signal: AbortSignal.timeout(60_000) });
  await writeAdapter(outDir, merged);
  console.log(JSON.stringify({ round: round.number, updateId: ack.updateId, hash: merged.contentHash }));
} finally {
  await client.close();
}
`;

describe("the packed client installed in an empty project", { timeout: 240_000 }, () => {
  let fx: Fixture;
  let app: string;

  before(async () => {
    fx = await startFixture({ clients: 2, method: "from", rank: 4 });
    app = join(fx.root, "training-node");
    const tarballs = join(fx.root, "tarballs");
    await run("mkdir", ["-p", app, tarballs]);
    const protocol = await pack("proto", tarballs);
    const client = await pack("client-sdk", tarballs);
    await writeFile(
      join(app, "package.json"),
      JSON.stringify({ name: "training-node", private: true, type: "module" }),
    );
    await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", protocol, client], {
      cwd: app,
      maxBuffer: 64 * 1024 * 1024,
    });
    await writeFile(join(app, "train.mjs"), TRAINING_NODE);
  });
  after(async () => {
    await fx?.close();
  });

  it("installs the client and the protocol only: no tfjs, OpenTelemetry, tsx or server", async () => {
    const names = await installedPackages(join(app, "node_modules"));
    assert.ok(names.includes("@tributary/client") && names.includes("@tributary/protocol"), names.join(", "));
    const forbidden = names.filter((n) => FORBIDDEN.some((re) => re.test(n)));
    assert.deepEqual(forbidden, [], `a training node's install pulled in ${forbidden.join(", ")}`);
  });

  it("imports with plain node and runs tributary-client --help", async () => {
    const { stdout } = await run(
      process.execPath,
      [
        "-e",
        'const m = await import("@tributary/client"); console.log(typeof m.connect, typeof m.runFederated)',
      ],
      { cwd: app },
    );
    assert.equal(stdout.trim(), "function function");
    const help = await run(join(app, "node_modules", ".bin", "tributary-client"), ["--help"], { cwd: app });
    assert.match(help.stdout, /^Usage: tributary-client <action>/);
    assert.match(help.stdout, /Exit codes:/);
  });

  it("runs a training-node loop from two processes: both get the merge of their updates", async () => {
    const outs = fx.clients.map((c) => join(app, `merged-${c.id}`));
    const results = await Promise.all(
      fx.clients.map((c, i) =>
        run(
          process.execPath,
          ["train.mjs", fx.service.endpoint.address, c.token, fx.nats.url, fx.federationId, c.dir, outs[i]],
          { cwd: app, timeout: 120_000 },
        ).then(({ stdout }) => JSON.parse(stdout.trim()) as { round: number; hash: string }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.round),
      [1, 1],
    );
    assert.equal(results[0].hash, results[1].hash);
    const safetensors = new Uint8Array(await readFile(join(outs[0], "adapter_model.safetensors")));
    assert.equal(sha256Hex(safetensors), results[0].hash);
    const configJson = await readFile(join(outs[0], "adapter_config.json"), "utf8");
    await assertEqualsDirectMerge(
      { configJson, safetensors },
      fx.clients.map((c) => c.dir),
      { rank: 4, samples: [100, 100] },
    );
  });
});
