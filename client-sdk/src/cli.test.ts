import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runClientCli } from "./cli.ts";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
}

describe("tributary client: usage", () => {
  it("prints the help, with the exit codes, and exits 0", async () => {
    const c = capture();
    assert.equal(await runClientCli(["--help"], c.io, {}), 0);
    assert.match(c.out.join("\n"), /Exit codes:[\s\S]*5 {2}coordinator unreachable after retries/);
    const d = capture();
    assert.equal(await runClientCli(["wait", "--help"], d.io, {}), 0);
  });

  it("exits 2 on usage mistakes, naming them", async () => {
    const cases: [string[], RegExp][] = [
      [["bogus"], /unknown action "bogus"/],
      [["status", "--nope"], /Unknown option '--nope'/],
      [["status", "--state", "/nonexistent/state.json"], /no federation: pass --federation/],
      [["status", "--state", "/nonexistent/state.json", "--federation", "f"], /no token: pass --token-file/],
      [
        ["status", "--state", "/nonexistent/state.json", "--federation", "f", "--tls-cert", "c.pem"],
        /--tls-cert and --tls-key go together/,
      ],
      [
        ["wait", "--federation", "f", "--token", "t", "--timeout", "soon"],
        /--timeout expects a positive number/,
      ],
      [
        ["submit", "--federation", "f", "--token", "t", "--round", "one", "dir"],
        /--round expects a non-negative integer/,
      ],
    ];
    for (const [argv, pattern] of cases) {
      const c = capture();
      assert.equal(await runClientCli(argv, c.io, {}), 2, argv.join(" "));
      assert.match(c.err.join("\n"), pattern, argv.join(" "));
    }
  });

  it("exits 1 when the adapter directory cannot be read", async () => {
    const c = capture();
    const env = {
      TRIBUTARY_FEDERATION: "f",
      TRIBUTARY_TOKEN: "t",
      TRIBUTARY_CLIENT_STATE: "/nonexistent/s.json",
    };
    assert.equal(await runClientCli(["submit", "--round", "1", "/nonexistent/adapter"], c.io, env), 1);
    assert.match(c.err.join("\n"), /ENOENT.*adapter_config\.json|ENOENT.*adapter_model/);
  });
});
