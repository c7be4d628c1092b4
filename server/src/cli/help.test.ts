import assert from "node:assert/strict";
import { test } from "node:test";
import { type CliIo, main } from "./main.ts";

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

/** Every command and subcommand of `tributary` (and of `tributary client`, the TS client's CLI). */
const COMMANDS = [
  ["serve"],
  ["worker"],
  ["merge"],
  ["adapters"],
  ["adapters", "synth"],
  ["privacy"],
  ["admin"],
  ...[
    "create-federation",
    "enroll",
    "start-round",
    "close-round",
    "abort-round",
    "retry-merge",
    "rounds",
    "updates",
    "status",
  ].map((a) => ["admin", a]),
  ["client"],
  ...["join", "submit", "wait", "fetch", "status"].map((a) => ["client", a]),
];

test("--help works for every command and subcommand, printing its usage and exiting 0", async () => {
  for (const command of COMMANDS) {
    for (const flag of ["--help", "-h"]) {
      const io = capture();
      assert.equal(
        await main([...command, flag], io),
        0,
        `${command.join(" ")} ${flag}: ${io.stderr.join("\n")}`,
      );
      assert.match(io.stdout.join("\n"), /Usage: /, `${command.join(" ")} ${flag}`);
      assert.deepEqual(io.stderr, []);
    }
  }
  const help = capture();
  assert.equal(await main(["help", "adapters"], help), 0);
  assert.match(help.stdout[0], /^Usage: tributary adapters synth/);
});
