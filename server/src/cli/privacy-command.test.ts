import assert from "node:assert/strict";
import { test } from "node:test";
import { type CliIo, main } from "./main.ts";

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

const common = ["--sampling-rate", "0.04", "--rounds", "2250", "--delta", "1e-5"];

test("tributary privacy epsilon prints the ε of the rounds, as Opacus's accountant computes it", async () => {
  const io = capture();
  assert.equal(await main(["privacy", "epsilon", "--noise-multiplier", "1.5", ...common], io), 0);
  assert.match(io.stdout[0], /^ε = 7\.329111 at δ = 0\.00001 after 2250 rounds/);
  const json = capture();
  assert.equal(await main(["privacy", "epsilon", "--noise-multiplier", "1.5", ...common, "--json"], json), 0);
  assert.ok(Math.abs(JSON.parse(json.stdout[0]).epsilon - 7.32911117143) < 1e-7);
});

test("tributary privacy noise prints the smallest noise multiplier within the budget", async () => {
  const io = capture();
  assert.equal(await main(["privacy", "noise", "--epsilon", "8", ...common, "--json"], io), 0);
  const out = JSON.parse(io.stdout[0]);
  assert.ok(Math.abs(out.noiseMultiplier - 1.416) < 5e-4);
  assert.ok(out.epsilon <= 8);
});

test("bad or missing values are usage errors; an unreachable budget is one line", async () => {
  const missing = capture();
  assert.equal(await main(["privacy", "epsilon", ...common], missing), 2);
  assert.match(missing.stderr[0], /privacy epsilon needs --noise-multiplier/);
  const rate = capture();
  assert.equal(
    await main(
      [
        "privacy",
        "epsilon",
        "--noise-multiplier",
        "1",
        "--sampling-rate",
        "2",
        "--rounds",
        "1",
        "--delta",
        "1e-5",
      ],
      rate,
    ),
    2,
  );
  assert.match(rate.stderr[0], /--sampling-rate must be in \(0, 1\], got 2/);
  const tight = capture();
  assert.equal(
    await main(
      [
        "privacy",
        "noise",
        "--epsilon",
        "0.001",
        "--sampling-rate",
        "1",
        "--rounds",
        "1000",
        "--delta",
        "1e-5",
      ],
      tight,
    ),
    1,
  );
  assert.deepEqual(tight.stderr.length, 1);
  assert.match(tight.stderr[0], /no noise multiplier up to 2000 .*allow a larger --epsilon/);
});
