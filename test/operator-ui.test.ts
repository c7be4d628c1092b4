/**
 * The operator page in a real headless Chromium (Debian's `chromium`, driven
 * by playwright-core): a coordinator runs four rounds of a real federation
 * (uploads over gRPC, merges, a straggler, an open round), then the page is
 * checked as an operator sees it — login, round timeline, client table,
 * charts — and screenshotted (a copy is left at /tmp/operator-ui.png).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { CreateFederationRequestSchema, DeadlinePolicy, Dtype } from "@tributary/protocol";
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
const SCREENSHOT = "/tmp/operator-ui.png";
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
            configJson: fx.clients[k].configJson,
            bytes: fx.clients[k].bytes,
          }),
        ),
      );
      await until(`round ${n} published`, () => coordinator.rounds(fed)[i]?.round.state === "published");
    }
    // Round 4 stays open with one update in.
    await until("round 4 open", () => coordinator.current(fed)?.number === 4);
    await upload(fx.client, fx.clients[0].token, {
      federationId: fed,
      round: 4,
      clientId: fx.clients[0].id,
      updateId: "u-4-0",
      samples: 100,
      configJson: fx.clients[0].configJson,
      bytes: fx.clients[0].bytes,
    });
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
    assert.equal(await page.locator("#clients tr.client-row").count(), 3);
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
    assert.equal(await page.locator("#weights-chart circle.dot").count(), 8);
    assert.equal(await page.locator("#weights-legend li").count(), 3);
  });

  it("renders the charts into pixels (screenshot)", async () => {
    const full = await page.screenshot({ fullPage: true });
    const fullPath = join(shots, "operator-ui.png");
    await writeFile(fullPath, full);
    await copyFile(fullPath, SCREENSHOT);
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
