/**
 * The Python client (`client-sdk/python`, import `tributary_client`) against
 * the real coordinator and nats-server, with Debian's `python3-grpcio` and
 * `python3-protobuf` (`/usr/bin/python3`, or `TRIBUTARY_PYTHON`): its unit
 * tests, a full round with three Python clients (two through the library, one
 * through `python -m tributary_client`) whose merged adapter equals a direct
 * merge, a stale round and a bad update raising their typed exceptions, and an
 * upload resumed after its connection was killed mid-upload.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import {
  GetUploadStatusRequestSchema,
  type GetUploadStatusResponse,
  parseSafetensorsLayout,
  safetensorsHeaderLength,
  sha256Hex,
} from "@tributary/protocol";
import { assertEqualsDirectMerge } from "./helpers/direct-merge.ts";
import { waitFor } from "./helpers/expect.ts";
import {
  type BigClient,
  createBigFederation,
  type Fixture,
  fetchRound,
  joinAll,
  startFixture,
  submitUpdate,
  type TestFederation,
} from "./helpers/federation.ts";
import { bearer, call } from "./helpers/grpc-calls.ts";
import { startProxy } from "./helpers/tcp-proxy.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const execFileP = promisify(execFile);
const PYTHON_DIR = join(ROOT, "client-sdk", "python");
const PYTHON = process.env.TRIBUTARY_PYTHON ?? "/usr/bin/python3";
const MiB = 1024 * 1024;

/** Fails with what to install when the Python client's dependencies are missing. */
function checkPython(): void {
  try {
    execFileSync(PYTHON, ["-c", "import grpc, google.protobuf"], { stdio: "pipe" });
  } catch {
    throw new Error(
      `${PYTHON} cannot import grpc and google.protobuf: apt-get install -y python3-grpcio python3-protobuf ` +
        "(bash scripts/setup.sh installs them), or set TRIBUTARY_PYTHON to a Python that has grpcio and protobuf",
    );
  }
}

/** Runs a Python script of the client's tests; resolves with its exit code and output. */
function runPython(
  args: readonly string[],
  onLine?: (line: string) => void,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child: ChildProcess = spawn(PYTHON, args, {
      cwd: PYTHON_DIR,
      env: { ...process.env, PYTHONPATH: PYTHON_DIR, PYTHONDONTWRITEBYTECODE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (b: Buffer) => {
      const text = b.toString();
      stdout += text;
      for (const line of text.split("\n")) if (line.trim() !== "") onLine?.(line);
    });
    child.stderr?.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 150_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Copies an adapter and sets the first value of its first tensor to NaN. */
async function withNaN(dir: string, out: string): Promise<string> {
  await cp(dir, out, { recursive: true });
  const path = join(out, "adapter_model.safetensors");
  const bytes = new Uint8Array(await readFile(path));
  const n = safetensorsHeaderLength(bytes, bytes.length, path);
  const [name, t] = [...parseSafetensorsLayout(bytes.subarray(8, 8 + n), bytes.length, path).tensors][0];
  const nan = t.dtype === "F32" ? [0x00, 0x00, 0xc0, 0x7f] : t.dtype === "BF16" ? [0xc0, 0x7f] : [0x00, 0x7e];
  bytes.set(nan, t.offset);
  await writeFile(path, bytes);
  return name;
}

describe("the Python client", { timeout: 240_000 }, () => {
  before(checkPython);

  it("passes its unit tests (python3 -m unittest)", async () => {
    const { code, stderr } = await runPython(["-m", "unittest", "discover", "-s", "tests", "-t", "."]);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /Ran \d+ tests/);
    assert.match(stderr, /\nOK\s*$/);
  });

  it("installs offline with pip into a fresh venv, imports, and builds a wheel (in-tree build backend)", async () => {
    const work = await mkdtemp(join(tmpdir(), "tributary-pip-"));
    try {
      const venv = join(work, "venv");
      // Debian's python3-grpcio and python3-protobuf satisfy the dependencies: nothing comes from an index.
      await execFileP(PYTHON, ["-m", "venv", "--system-site-packages", venv]);
      const pip = join(venv, "bin", "pip");
      const env = { ...process.env, PIP_NO_INDEX: "1", PIP_DISABLE_PIP_VERSION_CHECK: "1", PYTHONPATH: "" };
      await execFileP(pip, ["install", "--no-index", PYTHON_DIR], { cwd: work, env });
      const imported = await execFileP(
        join(venv, "bin", "python"),
        ["-c", "import tributary_client, tributary_client.client as c; print(tributary_client.__file__)"],
        { cwd: work, env },
      );
      assert.ok(imported.stdout.startsWith(join(venv, "lib")), imported.stdout);
      const help = await execFileP(join(venv, "bin", "tributary-client-py"), ["--help"], { cwd: work, env });
      assert.match(help.stdout, /submit/);
      const wheels = join(work, "wheels");
      await execFileP(pip, ["wheel", "--no-index", "--no-deps", "-w", wheels, PYTHON_DIR], {
        cwd: work,
        env,
      });
      const [wheel] = await readdir(wheels);
      assert.match(wheel, /^tributary_client-\d+\.\d+\.\d+-py3-none-any\.whl$/);
      const listing = await execFileP(PYTHON, ["-m", "zipfile", "-l", join(wheels, wheel)]);
      assert.match(listing.stdout, /tributary_client\/_gen\/tributary\/v1\/client_pb2_grpc\.py/);
      assert.match(listing.stdout, /tributary_client-[\d.]+\.dist-info\/RECORD/);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  describe("the command line says what it waits for", () => {
    let fx: Fixture;
    before(async () => {
      fx = await startFixture({ clients: 2, method: "from", rank: 4 });
    });
    after(async () => {
      await fx?.close();
    });

    it("prints why no round is open while submit waits, then upload and download progress", async () => {
      const [c1, c2] = fx.clients;
      const work = join(fx.root, "python-waiting");
      await mkdir(work, { recursive: true });
      const env = {
        ...process.env,
        PYTHONPATH: PYTHON_DIR,
        PYTHONDONTWRITEBYTECODE: "1",
        TRIBUTARY_CLIENT_STATE: join(work, "state.json"),
        TRIBUTARY_TOKEN: c1.token,
      };
      const cli = (args: string[]) => spawn(PYTHON, ["-m", "tributary_client", ...args], { cwd: work, env });
      const joined = await execFileP(
        PYTHON,
        [
          "-m",
          "tributary_client",
          "join",
          "--coordinator",
          fx.service.endpoint.address,
          "--federation",
          fx.federationId,
        ],
        { cwd: work, env },
      );
      assert.match(
        joined.stdout,
        /; no round yet; no round open: 1 of 2 clients connected; a round opens when 2 are/,
      );
      // FroM: no --samples needed. Local DP: the update is clipped and noised before it leaves.
      const submit = cli([
        "submit",
        "--timeout",
        "60",
        "--local-dp-clip",
        "0.05",
        "--local-dp-noise",
        "0.5",
        c1.dir,
      ]);
      let err = "";
      submit.stderr.on("data", (b: Buffer) => {
        err += b.toString();
      });
      const submitted = new Promise<number | null>((resolve) => submit.on("close", resolve));
      await waitFor(
        "the CLI to say why no round is open",
        () =>
          err.includes(
            "waiting for a round: no round open: 1 of 2 clients connected; a round opens when 2 are",
          ),
        20_000,
      );
      await joinAll(fx.client, { federationId: fx.federationId, clients: [c2] } as TestFederation);
      assert.equal(await submitted, 0, err);
      assert.match(err, /uploaded [\d.]+ of [\d.]+ [KM]iB \(100%\)/);
      assert.match(
        err,
        /local DP: norm [\d.e+-]+ clipped to 0\.05, noise sigma = 0\.025; this client's epsilon = [\d.]+ at delta = 1e-05/,
      );
      const saved = JSON.parse(await readFile(join(work, "state.json"), "utf8"));
      assert.deepEqual(saved.localDp, { "0.5": 1 });
      await submitUpdate(fx.client, fx.federationId, c2);
      const wait = await execFileP(
        PYTHON,
        ["-m", "tributary_client", "wait", "--timeout", "60", "--out", join(work, "global")],
        {
          cwd: work,
          env,
        },
      );
      assert.match(wait.stderr, /downloaded [\d.]+ of [\d.]+ [KM]iB \(100%\)/);
      assert.match(wait.stdout, /^1 [0-9a-f]{64}/);
    });
  });

  describe("against the real coordinator", () => {
    let fx: Fixture;
    before(async () => {
      fx = await startFixture({ clients: 3, method: "from", rank: 4 });
    });
    after(async () => {
      await fx?.close();
    });

    it("runs a full round with three clients, then types a stale round and a bad update", async () => {
      const work = join(fx.root, "python");
      await mkdir(work, { recursive: true });
      const badTensor = await withNaN(fx.clients[0].dir, join(work, "bad-adapter"));
      const specFile = join(work, "spec.json");
      await writeFile(
        specFile,
        JSON.stringify({
          coordinator: fx.service.endpoint.address,
          federation: fx.federationId,
          work,
          bad_dir: join(work, "bad-adapter"),
          clients: fx.clients.map((c) => ({ id: c.id, token: c.token, dir: c.dir })),
        }),
      );
      const { code, stdout, stderr } = await runPython([
        join("tests", "integration", "federation_round.py"),
        specFile,
      ]);
      assert.equal(code, 0, `${stdout}\n${stderr}`);
      const out = JSON.parse(stdout.trim().split("\n").at(-1)!) as {
        hashes: Record<string, string>;
        acks: Record<string, { round: number; liveness: number }>;
        stale: { class: string; current_round: number; reason: string };
        invalid: { class: string; tensor: string; reason: string; round: number };
      };
      const hashes = Object.values(out.hashes);
      assert.equal(hashes.length, 3);
      assert.equal(
        new Set(hashes).size,
        1,
        `every client got the same merged adapter: ${JSON.stringify(out.hashes)}`,
      );
      assert.equal(out.acks["client-1"].liveness, 60);

      const merged = await fetchRound(fx.client, fx.clients[0].token, fx.federationId);
      assert.equal(sha256Hex(merged.bytes), hashes[0]);
      const written = new Uint8Array(await readFile(join(work, "client-3", "adapter_model.safetensors")));
      assert.equal(sha256Hex(written), hashes[0], "the CLI wrote the merged adapter");
      await assertEqualsDirectMerge(
        { configJson: merged.configJson, safetensors: merged.bytes },
        fx.clients.map((c) => c.dir),
        { rank: 4, samples: [100, 200, 300] },
      );

      assert.deepEqual(out.stale, { class: "StaleRoundError", current_round: 2, reason: "STALE_ROUND" });
      assert.deepEqual(out.invalid, {
        class: "InvalidUpdateError",
        tensor: badTensor,
        reason: "INVALID_TENSOR",
        round: 2,
      });
    });
  });

  describe("the example trainer (examples/python/federated_trainer.py)", () => {
    let fx: Fixture;
    before(async () => {
      fx = await startFixture({ clients: 2, method: "from", rank: 4 });
    });
    after(async () => {
      await fx?.close();
    });

    it("two nodes train LoRA on their own data for two rounds and start each round from the merge", async () => {
      const runs = await Promise.all(
        fx.clients.map(async (c, i) => {
          const tokenFile = join(fx.root, `${c.id}.token`);
          await writeFile(tokenFile, c.token);
          return runPython([
            join(ROOT, "examples", "python", "federated_trainer.py"),
            ...["--coordinator", fx.service.endpoint.address, "--token-file", tokenFile],
            ...["--federation", fx.federationId, "--rounds", "2", "--seed", String(i + 1)],
            ...["--work-dir", join(fx.root, `example-${c.id}`)],
          ]);
        }),
      );
      for (const run of runs) {
        assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
        assert.match(run.stdout, /joined fed-it; 4 modules at rank 4/);
        const local = [...run.stdout.matchAll(/round (\d): local loss ([\d.]+) -> ([\d.]+)/g)];
        assert.deepEqual(
          local.map((m) => m[1]),
          ["1", "2"],
        );
        for (const m of local) assert.ok(Number(m[3]) < Number(m[2]), `training lowers the loss: ${m[0]}`);
        assert.match(run.stdout, /round 2: merged adapter [0-9a-f]{12}, loss on my data/);
      }
    });
  });

  describe("resuming an upload", () => {
    let fx: Fixture;
    const federationId = "py-big";
    const big: BigClient[] = [];
    before(async () => {
      fx = await startFixture({ clients: 1 });
      big.push(...(await createBigFederation(fx, federationId, ["py-1", "py-2"], 11)));
    });
    after(async () => {
      await fx?.close();
    });

    it("resumes from the coordinator's durable bytes after the connection is killed mid-upload", async () => {
      const size = big[0].bytes.length;
      assert.ok(size > 4 * MiB, `adapter is ${size} bytes`);
      const proxy = await startProxy(fx.service.endpoint.address, 4 * MiB);
      try {
        const specFile = join(fx.root, "resume.json");
        await writeFile(
          specFile,
          JSON.stringify({
            proxy: proxy.address,
            coordinator: fx.service.endpoint.address,
            federation: federationId,
            clients: big.map((c) => ({ id: c.id, token: c.token, dir: c.dir })),
          }),
        );
        let uploading = false;
        const done = runPython([join("tests", "integration", "resume_upload.py"), specFile], (line) => {
          if (line.includes('"uploading"')) uploading = true;
        });
        await waitFor("the upload to start", () => uploading, 30_000);
        const start = proxy.forwarded();
        await waitFor("1.5 MiB through the proxy", () => proxy.forwarded() - start > 1.5 * MiB, 30_000, 20);
        proxy.cut();
        const { code, stdout, stderr } = await done;
        assert.equal(code, 0, `${stdout}\n${stderr}`);
        const ack = JSON.parse(stdout.trim().split("\n").at(-1)!) as {
          update_id: string;
          attempts: number;
          resumed_from: number | null;
          content_hash: string;
          duplicate: boolean;
        };
        assert.ok(ack.attempts >= 2, `attempts ${ack.attempts}`);
        assert.ok((ack.resumed_from ?? 0) > 0, `resumed from ${ack.resumed_from}`);
        assert.ok((ack.resumed_from ?? 0) < size);
        assert.equal(ack.content_hash, sha256Hex(big[0].bytes));
        assert.equal(ack.duplicate, false);
        const held = (await call(
          fx.client.getUploadStatus,
          fx.client,
          create(GetUploadStatusRequestSchema, { federationId, round: 1, updateId: ack.update_id }),
          bearer(big[0].token),
        )) as GetUploadStatusResponse;
        assert.equal(held.complete, true);
        assert.equal(Number(held.receivedBytes), size);
      } finally {
        await proxy.close();
      }
    });
  });
});
