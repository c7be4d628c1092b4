import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliIo, main } from "../server/src/cli/main.ts";
import { waitFor } from "./helpers/expect.ts";
import { type Fixture, joinAll, MODULES, startFixture, type TestClient } from "./helpers/federation.ts";

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

describe("tributary admin against a running coordinator", () => {
  let fx: Fixture;
  let conn: string[];
  before(async () => {
    fx = await startFixture({ clients: 1 });
    conn = ["--coordinator", fx.service.endpoint.address];
    process.env.TRIBUTARY_OPERATOR_TOKEN = fx.service.operatorToken;
  });
  after(async () => {
    delete process.env.TRIBUTARY_OPERATOR_TOKEN;
    await fx.close();
  });

  it("creates a federation from protobuf JSON, enrolls a client, lists rounds and status", async () => {
    const file = join(fx.root, "fed.json");
    await writeFile(
      file,
      JSON.stringify({
        federationId: "from-cli",
        displayName: "created by the CLI",
        schema: {
          baseModelId: "synthetic/tiny-llama",
          modules: MODULES.map((m) => ({ name: m.name, dIn: m.dIn, dOut: m.dOut, maxRank: 8 })),
          allowedDtypes: ["DTYPE_F32", "DTYPE_BF16"],
        },
        merge: { method: "fedavg" },
        policy: { minClients: 1, quorum: 1, deadline: "120s", deadlinePolicy: "DEADLINE_POLICY_FAIL_ROUND" },
      }),
    );
    const created = capture();
    assert.equal(
      await main(["admin", "create-federation", ...conn, "--file", file], created),
      0,
      created.stderr.join("\n"),
    );
    assert.equal(JSON.parse(created.stdout.join("\n")).id, "from-cli");

    const enrolled = capture();
    assert.equal(
      await main(["admin", "enroll", ...conn, "--federation", "from-cli", "--client", "node-a"], enrolled),
      0,
    );
    assert.match(enrolled.stdout[0], /^trb_[A-Za-z0-9_-]{40,}$/);

    const started = capture();
    assert.equal(await main(["admin", "start-round", ...conn, "--federation", "from-cli"], started), 1);
    assert.match(started.stderr[0], /FAILED_PRECONDITION: .*connected/);

    const status = capture();
    assert.equal(await main(["admin", "status", ...conn], status), 0);
    assert.match(status.stdout[0], /federations: .*from-cli/);
    assert.ok(
      status.stdout.includes("  from-cli: no round open: 0 of 1 clients connected; a round opens when 1 are"),
      status.stdout.join("\n"),
    );

    const rounds = capture();
    assert.equal(await main(["admin", "rounds", ...conn, "--federation", "from-cli"], rounds), 0);
    assert.equal(rounds.stdout.length, 1, "no rounds yet: header only");
  });

  it("exits 1 with the gRPC status for errors and 2 for usage mistakes", async () => {
    const missing = capture();
    assert.equal(await main(["admin", "rounds", ...conn, "--federation", "nope"], missing), 1);
    assert.match(missing.stderr[0], /NOT_FOUND: .*nope/);
    const noRound = capture();
    assert.equal(
      await main(["admin", "retry-merge", ...conn, "--federation", "from-cli", "--round", "1"], noRound),
      1,
    );
    assert.match(noRound.stderr[0], /FAILED_PRECONDITION: .*no round 1 to merge again/);
    const usage = capture();
    assert.equal(await main(["admin", "enroll", ...conn, "--federation", "from-cli"], usage), 2);
    assert.match(usage.stderr[0], /enroll needs --client/);
    const badToken = capture();
    process.env.TRIBUTARY_OPERATOR_TOKEN = "trb_not-the-operator-token-000000";
    try {
      assert.equal(await main(["admin", "status", ...conn], badToken), 1);
      assert.match(badToken.stderr[0], /UNAUTHENTICATED: invalid operator token$/);
      const short = capture();
      process.env.TRIBUTARY_OPERATOR_TOKEN = "trb_wrong";
      assert.equal(await main(["admin", "status", ...conn], short), 1);
      assert.match(short.stderr[0], /UNAUTHENTICATED: invalid operator token \(/);
    } finally {
      process.env.TRIBUTARY_OPERATOR_TOKEN = fx.service.operatorToken;
    }
  });

  it("refuses to enroll an enrolled client again unless --rotate, which stops the old token", async () => {
    const enroll = (...extra: string[]) => {
      const io = capture();
      return main(["admin", "enroll", ...conn, "--federation", fx.federationId, ...extra], io).then((rc) => ({
        rc,
        ...io,
      }));
    };
    const fresh = await enroll("--client", "rotating");
    assert.equal(fresh.rc, 0);
    const again = await enroll("--client", "rotating");
    assert.equal(again.rc, 1);
    assert.deepEqual(again.stdout, [], "no new token");
    assert.match(again.stderr[0], /ALREADY_EXISTS: client "rotating" is already enrolled .*--rotate/);
    // The first token still works.
    const asClient = (token: string) =>
      joinAll(fx.client, { federationId: fx.federationId, clients: [{ token } as TestClient] });
    await asClient(fresh.stdout[0]);
    const rotated = await enroll("--client", "rotating", "--rotate");
    assert.equal(rotated.rc, 0);
    assert.match(rotated.stderr[0], /new token of rotating .*old token no longer works/);
    await asClient(rotated.stdout[0]);
    await assert.rejects(asClient(fresh.stdout[0]), /UNAUTHENTICATED/);
  });

  it("answers --help for every action and says what to do, in one line, for bad files", async () => {
    for (const action of ["enroll", "create-federation", "status", "rounds", "retry-merge"]) {
      const help = capture();
      assert.equal(await main(["admin", action, "--help"], help), 0, action);
      assert.match(help.stdout.join("\n"), /Usage: tributary admin/);
    }
    const noFile = capture();
    assert.equal(
      await main(["admin", "create-federation", ...conn, "--file", "/nonexistent.json"], noFile),
      1,
    );
    assert.deepEqual(noFile.stderr, ["tributary: --file /nonexistent.json: no such file or directory"]);
    const notJson = join(fx.root, "not.json");
    await writeFile(notJson, "federation: yes");
    const badJson = capture();
    assert.equal(await main(["admin", "create-federation", ...conn, "--file", notJson], badJson), 1);
    assert.equal(badJson.stderr.length, 1);
    assert.match(badJson.stderr[0], /--file .*not\.json: not JSON/);

    const token = process.env.TRIBUTARY_OPERATOR_TOKEN;
    delete process.env.TRIBUTARY_OPERATOR_TOKEN;
    const cwd = process.cwd();
    process.chdir(fx.root);
    try {
      const noToken = capture();
      assert.equal(await main(["admin", "status", ...conn], noToken), 1);
      assert.deepEqual(noToken.stderr, [
        "tributary: no operator token at data/coordinator/operator.token (the default, relative to this directory): pass --token-file FILE (tributary serve prints where it wrote the token) or set TRIBUTARY_OPERATOR_TOKEN",
      ]);
    } finally {
      process.chdir(cwd);
      process.env.TRIBUTARY_OPERATOR_TOKEN = token;
    }
  });

  it("lines up the rounds table: as many header columns as each row has", async () => {
    await fx.joinAll();
    await waitFor("a round to open", () => fx.service.coordinator.rounds(fx.federationId).length > 0, 10_000);
    const rounds = capture();
    assert.equal(await main(["admin", "rounds", ...conn, "--federation", fx.federationId], rounds), 0);
    const columns = (line: string) => line.trim().split(/\s{2,}/);
    const [header, ...rows] = rounds.stdout;
    assert.ok(rows.length > 0);
    assert.deepEqual(columns(header), ["round", "state", "updates", "opened / result"]);
    for (const row of rows) assert.equal(columns(row).length, columns(header).length, row);
    // admin status names the clients an open round still waits for.
    const status = capture();
    assert.equal(await main(["admin", "status", ...conn], status), 0);
    assert.ok(
      status.stdout.some((l) => /^ {4}awaiting (\d+) of \1: [a-z]/.test(l)), // nobody has submitted yet
      status.stdout.join("\n"),
    );
  });
});
