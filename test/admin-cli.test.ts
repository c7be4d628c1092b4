import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliIo, main } from "../server/src/cli/main.ts";
import { type Fixture, MODULES, startFixture } from "./helpers/federation.ts";

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
      assert.match(badToken.stderr[0], /UNAUTHENTICATED/);
    } finally {
      process.env.TRIBUTARY_OPERATOR_TOKEN = fx.service.operatorToken;
    }
  });
});
