/**
 * The operator page in a real headless Chromium (Debian's `chromium`, driven
 * by playwright-core): a coordinator runs four rounds of a real federation
 * (uploads over gRPC, merges, a straggler, an open round), then the page is
 * checked as an operator sees it — login, round timeline, client table,
 * charts — and screenshotted (a copy is left at /tmp/operator-ui.png).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  CreateFederationRequestSchema,
  DeadlinePolicy,
  Dtype,
  parseSafetensorsLayout,
  safetensorsHeaderLength,
} from "@tributary/protocol";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import type { RoundsView } from "../server/src/operator-ui/views.ts";
import { type Fixture, MODULES, startFixture } from "./helpers/federation.ts";
import { call, upload } from "./helpers/grpc-calls.ts";
import { countColor, decodePng, distinctColors } from "./helpers/png.ts";

/** Where to look for Chromium (`TRIBUTARY_CHROMIUM` first). */
const CHROMIUM = [process.env.TRIBUTARY_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"];

function chromiumPath(): string {
  const found = CHROMIUM.find((p): p is string => p !== undefined && p !== "" && existsSync(p));
  if (found === undefined) {
    throw new Error(
      "the operator page test needs Chromium and found none at " +
        `${CHROMIUM.filter(Boolean).join(", ")}: install Debian's with ` +
        "`apt-get update && apt-get install -y chromium` (`bash scripts/setup.sh` does this when it is missing), " +
        "or point TRIBUTARY_CHROMIUM at a Chromium/Chrome binary",
    );
  }
  return found;
}

/** Samples per client in each round (fedavg: the merge weights are their shares). */
const SAMPLES = [
  [100, 200, 300],
  [300, 200, 100],
  [150, 450], // client-3 sits round 3 out: a straggler
];
/** The loss each client reports with its update in rounds 1–3. */
const LOSS = [
  [0.9, 0.8, 1.1],
  [0.7, 0.6, 0.95],
  [0.5, 0.45],
];
const SCREENSHOT = "/tmp/operator-ui.png";
/** The screenshot kept as a test artifact in the repository's (ignored) test-artifacts/. */
const ARTIFACT = fileURLToPath(new URL("../test-artifacts/operator-ui.png", import.meta.url));

/** A copy of an adapter's safetensors bytes with a NaN as its first tensor's first value. */
function withNaN(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes);
  const n = safetensorsHeaderLength(copy, copy.length, "adapter");
  const [, t] = [...parseSafetensorsLayout(copy.subarray(8, 8 + n), copy.length, "adapter").tensors][0];
  copy.set(t.dtype === "F32" ? [0x00, 0x00, 0xc0, 0x7f] : [0xc0, 0x7f], t.offset);
  return copy;
}
/** Colours of the duration bars and of the first three clients' lines (style.css, app.js). */
const COLLECT_BLUE = "#3b82f6";
const MERGE_AMBER = "#f59e0b";
const CLIENT_COLORS = ["#2563eb", "#db2777", "#059669"];

async function until(what: string, ok: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("operator page in a headless browser", () => {
  let fx: Fixture;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let uiUrl: string;
  let shots: string;
  const pageErrors: string[] = [];
  const foreignRequests: string[] = [];

  before(async () => {
    const executablePath = chromiumPath();
    shots = await mkdtemp(join(tmpdir(), "tributary-ui-"));
    fx = await startFixture({
      clients: 3,
      method: "fedavg",
      rank: 4,
      quorum: 2,
      waitAfterQuorumMs: 1500,
      ui: true,
    });
    assert.ok(fx.service.ui !== undefined, "startService serves the operator page when asked");
    uiUrl = fx.service.ui.url;
    const coordinator = fx.service.coordinator;
    const fed = fx.federationId;
    await fx.joinAll();
    for (const [i, samples] of SAMPLES.entries()) {
      const n = i + 1;
      await until(`round ${n} open`, () => coordinator.current(fed)?.number === n);
      await Promise.all(
        samples.map((s, k) =>
          upload(fx.client, fx.clients[k].token, {
            federationId: fed,
            round: n,
            clientId: fx.clients[k].id,
            updateId: `u-${n}-${k}`,
            samples: s,
            metrics: { loss: LOSS[i][k] },
            configJson: fx.clients[k].configJson,
            bytes: fx.clients[k].bytes,
          }),
        ),
      );
      await until(`round ${n} published`, () => coordinator.rounds(fed)[i]?.round.state === "published");
    }
    // Round 4 stays open with one update in.
    await until("round 4 open", () => coordinator.current(fed)?.number === 4);
    const round4 = (k: number, updateId: string, bytes: Uint8Array) =>
      upload(fx.client, fx.clients[k].token, {
        federationId: fed,
        round: 4,
        clientId: fx.clients[k].id,
        updateId,
        samples: 100,
        configJson: fx.clients[k].configJson,
        bytes,
      });
    await round4(0, "u-4-0", fx.clients[0].bytes);
    // client-2's round-4 update holds a NaN: intake refuses it, and the page says so.
    await assert.rejects(round4(1, "u-4-1-nan", withNaN(fx.clients[1].bytes)), /INVALID_ARGUMENT/);
    // A second federation whose display name is markup: it must show as text.
    await call(
      fx.operator.createFederation,
      fx.operator,
      create(CreateFederationRequestSchema, {
        federationId: "xss-check",
        displayName: '<img src=x onerror="window.__pwned=1"><b>bold</b>',
        schema: {
          baseModelId: "synthetic/tiny-llama",
          modules: MODULES.map((m) => ({ name: m.name, dIn: m.dIn, dOut: m.dOut, maxRank: 8 })),
          allowedDtypes: [Dtype.F32],
        },
        merge: { method: "fedavg", rank: 4 },
        policy: {
          minClients: 1,
          quorum: 1,
          waitAfterQuorum: durationFromMs(0),
          deadline: durationFromMs(60_000),
          deadlinePolicy: DeadlinePolicy.EXTEND_ONCE,
        },
      }),
      fx.operatorMd,
    );

    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ["--disable-dev-shm-usage", "--disable-gpu"],
    });
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, deviceScaleFactor: 1 });
    page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(err.message));
    page.on("console", (msg) => {
      // The wrong-token login answers 401 on purpose.
      if (msg.type() === "error" && !/status of 401/.test(msg.text())) pageErrors.push(msg.text());
    });
    page.on("request", (req) => {
      const url = req.url();
      if (!url.startsWith(uiUrl) && !url.startsWith("data:")) foreignRequests.push(url);
    });
  });

  after(async () => {
    await browser?.close();
    await fx?.close();
    if (shots !== undefined) await rm(shots, { recursive: true, force: true });
  });

  it("sends a visitor without the token to the login form, and the API answers 401", async () => {
    const res = await page.goto(uiUrl);
    assert.equal(res?.status(), 200);
    assert.equal(new URL(page.url()).pathname, "/login");
    assert.equal(await page.locator('input[name="token"]').count(), 1);
    const api = await context.request.get(new URL("/api/federations", uiUrl).href);
    assert.equal(api.status(), 401);
    const rounds = await fetch(new URL(`/api/federations/${fx.federationId}/rounds`, uiUrl));
    assert.equal(rounds.status, 401);
  });

  it("rejects a wrong token and logs in with the operator token", async () => {
    await page.fill('input[name="token"]', "trb_not-the-operator-token-000");
    await page.click('button[type="submit"]');
    await page.waitForSelector(".login-error");
    assert.match(await page.locator(".login-error").innerText(), /not the operator token/);

    await page.fill('input[name="token"]', fx.operatorToken);
    await Promise.all([page.waitForURL((u) => u.pathname === "/"), page.click('button[type="submit"]')]);
    const cookies = await context.cookies();
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0].httpOnly, true);
    assert.equal(cookies[0].sameSite, "Strict");
    assert.notEqual(cookies[0].value, fx.operatorToken);
    const api = await context.request.get(new URL("/api/federations", uiUrl).href);
    assert.equal(api.status(), 200);
  });

  it("shows the federation, the rounds with their states and the stragglers", async () => {
    await page.waitForSelector("#rounds tbody tr.round-row >> nth=3");
    const selected = await page.locator("#federation").inputValue();
    assert.equal(selected, fx.federationId);
    assert.match(await page.locator("#summary").innerText(), new RegExp(fx.federationId));
    const rows = page.locator("#rounds tbody tr.round-row");
    assert.equal(await rows.count(), 4);
    const stateOf = (n: number) => page.locator(`#rounds tr[data-round="${n}"] .badge`).first().innerText();
    assert.equal(await stateOf(4), "open");
    for (const n of [1, 2, 3]) assert.equal(await stateOf(n), "published");
    assert.equal(await page.locator('#rounds tr[data-round="3"] .chip-straggler').innerText(), "client-3");
    assert.equal(await page.locator('#rounds tr[data-round="1"] .chip-straggler').count(), 0);
    assert.match(await page.locator('#rounds tr[data-round="1"]').innerText(), /3 \/ 3/);
  });

  it("lists each round's clients with submission time, size, samples and merge weight", async () => {
    // The open round is selected by default: one update in, weights pending, two waiting.
    assert.equal(await page.locator("#clients-title").innerText(), "Clients in round #4");
    assert.equal(await page.locator("#clients tr.client-row").count(), 4, "one in, two waiting, one refused");
    assert.equal(await page.locator("#clients tr.waiting").count(), 2);
    assert.match(await page.locator('#clients tr[data-client="client-1"]').innerText(), /pending/);

    await page.click('#rounds tr[data-round="1"]');
    await page.waitForSelector("#clients-title >> text=Clients in round #1");
    const view = (await (
      await context.request.get(new URL(`/api/federations/${fx.federationId}/rounds`, uiUrl).href)
    ).json()) as RoundsView;
    const r1 = view.rounds[0];
    assert.equal(r1.submissions.length, 3);
    for (const [k, c] of fx.clients.entries()) {
      const row = page.locator(`#clients tr[data-client="${c.id}"]`);
      assert.equal(await row.locator(".size").getAttribute("title"), `${c.bytes.length} bytes`);
      const text = await row.innerText();
      assert.match(text, new RegExp(`\\b${SAMPLES[0][k]}\\b`));
      const expected = SAMPLES[0][k] / 600;
      assert.match(text, new RegExp(expected.toFixed(3).replace(".", "\\.")));
      assert.match(text, /\+\d/); // submission time relative to the round's opening
      const weight = r1.submissions.find((s) => s.clientId === c.id)?.weight;
      assert.ok(weight !== null && weight !== undefined && Math.abs(weight - expected) < 1e-6);
    }

    await page.click('#rounds tr[data-round="3"]');
    await page.waitForSelector("#clients-title >> text=Clients in round #3");
    assert.equal(await page.locator("#clients tr.straggler").count(), 1);
    assert.match(await page.locator("#clients tr.straggler").innerText(), /client-3[\s\S]*missed/);
  });

  it("draws round durations and per-client merge weights as SVG with data", async () => {
    const collect = page.locator("#duration-chart rect.bar.collect");
    assert.equal(await collect.count(), 4);
    assert.equal(await page.locator("#duration-chart rect.bar.merge").count(), 3);
    for (const rect of await collect.all()) {
      const box = await rect.boundingBox();
      assert.ok(box !== null && box.width > 0 && box.height > 0, "a duration bar has a size");
    }
    const lines = page.locator("#weights-chart path.line");
    assert.equal(await lines.count(), 3);
    for (const line of await lines.all()) {
      const box = await line.boundingBox();
      assert.ok(box !== null && box.width > 50, "a weight line spans several rounds");
      const points = ((await line.getAttribute("d")) ?? "").match(/[ML]/g)?.length ?? 0;
      assert.ok(points >= 2);
    }
    // client-1 and client-2 in all three merged rounds, client-3 in two.
    assert.equal(await page.locator("#weights-chart .dot").count(), 8);
    assert.equal(await page.locator("#weights-legend li").count(), 3);
    // Distinguishable by more than colour: each client its own marker shape and dash pattern.
    assert.equal(await page.locator('#weights-chart circle.dot[data-client="client-1"]').count(), 3);
    assert.equal(await page.locator('#weights-chart rect.dot[data-client="client-2"]').count(), 3);
    assert.equal(await page.locator('#weights-chart path.dot[data-client="client-3"]').count(), 2);
    const dashes = await lines.evaluateAll((ps) => ps.map((p) => p.getAttribute("stroke-dasharray") ?? ""));
    assert.equal(new Set(dashes).size, 3, `dash patterns ${JSON.stringify(dashes)}`);
  });

  it("charts the metrics clients report, per client and their sample-weighted mean", async () => {
    assert.equal(await page.locator("#metric-name").innerText(), "loss");
    assert.equal(await page.locator("#metrics-chart path.line").count(), 4, "three clients and the mean");
    assert.equal(await page.locator("#metrics-chart path.line.mean").count(), 1);
    const legend = await page.locator("#metrics-legend").innerText();
    assert.match(legend, /weighted mean \(samples\)\s+0\.463/, legend); // round 3: (150·0.5 + 450·0.45) / 600 = 0.4625
    const mean = (await page.locator("#metrics-chart path.line.mean").getAttribute("d")) ?? "";
    assert.equal(mean.match(/[ML]/g)?.length, 3, "a mean point in each of rounds 1–3");
    await page.click('#rounds tr[data-round="2"]');
    await page.waitForSelector("#clients-title >> text=Clients in round #2");
    assert.match(
      await page.locator('#clients tr[data-client="client-3"] .metrics').innerText(),
      /loss 0\.9500/,
    );
  });

  it("lists refused updates in their round with the reason, and every enrolled client's last contact", async () => {
    await page.click('#rounds tr[data-round="4"]');
    await page.waitForSelector("#clients-title >> text=Clients in round #4");
    const refused = page.locator('#clients tr.refused[data-client="client-2"]');
    assert.equal(await refused.count(), 1);
    assert.match(await refused.innerText(), /refused[\s\S]*INVALID_TENSOR/);
    const details = refused.locator("details");
    if ((await details.count()) > 0) await details.locator("summary").click();
    assert.match(await refused.innerText(), /NaN/);
    assert.match(await page.locator("#clients-note").innerText(), /1 refused/);

    const enrolled = page.locator("#client-list tr.enrolled-row");
    assert.equal(await enrolled.count(), 3);
    for (const c of fx.clients) {
      const text = await page.locator(`#client-list tr[data-client="${c.id}"]`).innerText();
      assert.match(text, /connected/);
      assert.doesNotMatch(text, /never/, "each client has joined");
    }
    assert.match(await page.locator('#client-list tr[data-client="client-1"]').innerText(), /#4 \(current\)/);
    assert.match(await page.locator('#client-list tr[data-client="client-3"]').innerText(), /#2/);
  });

  it("renders the charts into pixels (screenshot)", async () => {
    const full = await page.screenshot({ fullPage: true });
    const fullPath = join(shots, "operator-ui.png");
    await writeFile(fullPath, full);
    await copyFile(fullPath, SCREENSHOT);
    await mkdir(dirname(ARTIFACT), { recursive: true });
    await copyFile(fullPath, ARTIFACT);
    const img = decodePng(full);
    assert.equal(img.width, 1400);
    assert.ok(img.height >= 1000);
    assert.ok(full.length > 30_000, `a page screenshot of ${full.length} bytes`);
    assert.ok(distinctColors(img) > 200, "the page is more than a few flat colours");

    const durations = decodePng(await page.locator("#duration-chart").screenshot());
    assert.ok(countColor(durations, COLLECT_BLUE) > 500, "blue collection bars are drawn");
    assert.ok(countColor(durations, MERGE_AMBER, 16) > 0, "amber merge segments are drawn");
    const weights = decodePng(await page.locator("#weights-chart").screenshot());
    for (const color of CLIENT_COLORS) {
      assert.ok(countColor(weights, color) > 50, `a weight line in ${color} is drawn`);
    }
  });

  it("fits a narrow screen without sideways scrolling", async () => {
    await page.setViewportSize({ width: 420, height: 900 });
    await page.waitForTimeout(400); // the charts redraw 150 ms after a resize
    const width = await page.evaluate(
      () =>
        (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document
          .documentElement.scrollWidth,
    );
    assert.ok(width <= 420, `page is ${width}px wide`);
    await page.screenshot({ path: "/tmp/operator-ui-narrow.png", fullPage: true });
    await page.setViewportSize({ width: 1400, height: 1000 });
  });

  it("shows markup in names as text, loads nothing from elsewhere, and logs no errors", async () => {
    await page.selectOption("#federation", "xss-check");
    await page.waitForSelector("#summary >> text=xss-check");
    assert.match(await page.locator("#summary").innerText(), /<img src=x onerror=/);
    assert.equal(await page.locator("main img, main b").count(), 0);
    assert.equal(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned), undefined);
    assert.equal(await page.locator("#rounds tbody").innerText(), "No rounds yet.");
    assert.deepEqual(foreignRequests, []);
    assert.deepEqual(pageErrors, []);
  });
});
