import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { debugRequested, systemErrorText, unexpectedFailureLines } from "./system-errors.ts";

async function systemError(run: () => Promise<unknown>): Promise<unknown> {
  return run().then(
    () => assert.fail("expected a failure"),
    (err: unknown) => err,
  );
}

test("a Node system error is one line naming the path and what to do", async () => {
  const missing = await systemError(() => readFile("/nonexistent/fed.json"));
  assert.equal(systemErrorText(missing), "/nonexistent/fed.json: no such file or directory");
  const dir = await systemError(() => readFile("/"));
  assert.equal(systemErrorText(dir), "is a directory, where a file was expected");
  const exists = Object.assign(new Error("EEXIST: file already exists, mkdir 'out'"), {
    code: "EEXIST",
    syscall: "mkdir",
    path: "out",
  });
  assert.equal(systemErrorText(exists), "out: already exists; choose another path or remove it first");
  assert.equal(systemErrorText(new Error("plain")), undefined, "not a system error");
});

test("an unexpected failure is its message and how to see the stack, or the stack with --debug", () => {
  const err = new TypeError("x is not a function");
  assert.deepEqual(unexpectedFailureLines(err, false), [
    "TypeError: x is not a function",
    "(unexpected; run again with --debug or TRIBUTARY_DEBUG=1 to see the stack trace)",
  ]);
  assert.match(unexpectedFailureLines(err, true)[0], /^TypeError: x is not a function\n {4}at /);
  assert.deepEqual(debugRequested(["admin", "--debug", "status"]), {
    debug: true,
    argv: ["admin", "status"],
  });
  const saved = process.env.TRIBUTARY_DEBUG;
  try {
    delete process.env.TRIBUTARY_DEBUG;
    assert.equal(debugRequested(["admin"]).debug, false);
    process.env.TRIBUTARY_DEBUG = "1";
    assert.equal(debugRequested(["admin"]).debug, true);
  } finally {
    if (saved === undefined) delete process.env.TRIBUTARY_DEBUG;
    else process.env.TRIBUTARY_DEBUG = saved;
  }
});

test("a reader that closes the pipe early (| head) ends the command quietly, with no EPIPE trace", async () => {
  const module = fileURLToPath(new URL("./system-errors.ts", import.meta.url));
  const script = `
    import { exitQuietlyOnClosedStdout } from ${JSON.stringify(module)};
    exitQuietlyOnClosedStdout();
    const line = "round  state  ".repeat(400) + "\\n";
    const more = () => { process.stdout.write(line); setImmediate(more); };
    more();`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  child.stdout.once("data", () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  assert.equal(stderr, "");
  assert.equal(code, 0);
});
