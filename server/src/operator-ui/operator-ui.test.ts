import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { makeCert } from "../../../test/helpers/certs.ts";
import { silentLog } from "../core/log.ts";
import { tokenDigest } from "../core/tokens.ts";
import { escapeHtml, loginPage } from "./login-page.ts";
import { type OperatorUi, startOperatorUi } from "./operator-ui.ts";
import { SESSION_COOKIE } from "./sessions.ts";
import { fakeReader } from "./testing/fake-reader.ts";

const TOKEN = "trb_unit-test-operator-token-0123456789";

describe("operator page server", () => {
  let ui: OperatorUi;
  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(new URL(path, ui.url), { headers, redirect: "manual" });
  const postLogin = (token: string, headers: Record<string, string> = {}) =>
    fetch(new URL("/login", ui.url), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams({ token }).toString(),
      redirect: "manual",
    });

  before(async () => {
    ui = await startOperatorUi({
      coordinator: fakeReader('<img src=x onerror="alert(1)">'),
      operatorDigest: tokenDigest(TOKEN),
      port: 0,
      log: silentLog,
    });
  });
  after(async () => {
    await ui.close();
  });

  it("sends pages to the login form and answers 401 on the API without credentials", async () => {
    for (const path of ["/", "/assets/app.js", "/nowhere"]) {
      const res = await get(path);
      assert.equal(res.status, 303, path);
      assert.equal(res.headers.get("location"), "/login");
    }
    const api = await get("/api/federations");
    assert.equal(api.status, 401);
    assert.match(api.headers.get("www-authenticate") ?? "", /^Bearer/);
    assert.equal(
      (await get("/api/federations", { authorization: "Bearer trb_wrong-token-0123456789" })).status,
      401,
    );
    // The login page and its stylesheet are public.
    assert.equal((await get("/login")).status, 200);
    assert.equal((await get("/assets/style.css")).status, 200);
  });

  it("serves the API to the operator's bearer token", async () => {
    const res = await get("/api/federations", { authorization: `Bearer ${TOKEN}` });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    const body = (await res.json()) as { federations: { id: string; name: string }[] };
    assert.equal(body.federations[0].id, "fed-1");
    const rounds = await get("/api/federations/fed-1/rounds", { authorization: `Bearer ${TOKEN}` });
    assert.equal(rounds.status, 200);
    assert.equal(((await rounds.json()) as { rounds: unknown[] }).rounds.length, 2);
    const missing = await get("/api/federations/nope/rounds", { authorization: `Bearer ${TOKEN}` });
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: string }).error, /nope/);
  });

  it("logs in through the form with a session cookie that is not the token", async () => {
    const bad = await postLogin("trb_not-the-operator-token-000");
    assert.equal(bad.status, 401);
    assert.match(await bad.text(), /not the operator token/);
    assert.equal(bad.headers.get("set-cookie"), null);

    const ok = await postLogin(TOKEN);
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get("location"), "/");
    const cookie = ok.headers.get("set-cookie") ?? "";
    assert.match(cookie, new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43};`));
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.ok(!cookie.includes(TOKEN));
    const session = cookie.split(";")[0];

    const page = await get("/", { cookie: session });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script type="module" src="\/assets\/app.js">/);
    assert.equal((await get("/api/federations", { cookie: session })).status, 200);
    assert.equal(
      (await get("/api/federations", { cookie: `${SESSION_COOKIE}=${"A".repeat(43)}` })).status,
      401,
    );

    const out = await fetch(new URL("/logout", ui.url), {
      method: "POST",
      headers: { cookie: session },
      redirect: "manual",
    });
    assert.equal(out.status, 303);
    assert.match(out.headers.get("set-cookie") ?? "", /Max-Age=0/);
    assert.equal((await get("/api/federations", { cookie: session })).status, 401);
  });

  it("refuses cross-origin logins, logouts and writes (CSRF)", async () => {
    assert.equal((await postLogin(TOKEN, { origin: "http://evil.example" })).status, 403);
    const login = await postLogin(TOKEN);
    const session = login.headers.get("set-cookie")!.split(";")[0];
    const logout = (headers: Record<string, string>) =>
      fetch(new URL("/logout", ui.url), {
        method: "POST",
        headers: { cookie: session, ...headers },
        redirect: "manual",
      });
    assert.equal((await logout({ origin: "http://evil.example" })).status, 403);
    assert.equal((await logout({ origin: "null" })).status, 403);
    assert.equal((await logout({ origin: "null", "sec-fetch-site": "cross-site" })).status, 403);
    assert.equal((await logout({ "sec-fetch-site": "cross-site" })).status, 403);
    assert.equal((await get("/api/federations", { cookie: session })).status, 200, "still logged in");
    assert.equal((await logout({ origin: new URL(ui.url).origin })).status, 303);
    const put = await fetch(new URL("/api/federations", ui.url), {
      method: "DELETE",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(put.status, 405);
  });
});

describe("login page", () => {
  it("escapes what it shows", () => {
    assert.equal(
      escapeHtml(`<a href="x">'&'</a>`),
      "&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;",
    );
    assert.ok(!loginPage({ error: "<script>x</script>" }).includes("<script>x"));
  });
});

/** GET `path` from `port` with an explicit `Host` header (fetch cannot set one). */
function getWithHost(port: number, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

/** The status code of a raw HTTP/1.1 request of `path` to `port` with these `Host` fields. */
function statusWithHosts(port: number, path: string, hosts: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join("")}Connection: close\r\n\r\n`,
      );
    });
    let text = "";
    socket.on("data", (d) => {
      text += d.toString("latin1");
    });
    socket.on("end", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
    socket.on("error", reject);
  });
}

describe("operator page: Host check and HTTPS", () => {
  it("answers only to its own host names (DNS rebinding), /healthz to anyone", async () => {
    const ui = await startOperatorUi({
      coordinator: fakeReader("x"),
      operatorDigest: tokenDigest(TOKEN),
      port: 0,
      log: silentLog,
      allowedHosts: ["ops.example", "127.0.0.1"],
    });
    try {
      assert.equal(await getWithHost(ui.port, "/login", `127.0.0.1:${ui.port}`), 200);
      assert.equal(await getWithHost(ui.port, "/login", "OPS.example"), 200);
      assert.equal(await getWithHost(ui.port, "/login", "evil.example"), 421);
      assert.equal(await getWithHost(ui.port, "/api/federations", `rebound.example:${ui.port}`), 421);
      assert.equal(await getWithHost(ui.port, "/healthz", "10.0.0.7:7071"), 200);
      // Two Host fields, the valid one first, are refused (RFC 9112: 400).
      assert.equal(await statusWithHosts(ui.port, "/login", [`127.0.0.1:${ui.port}`]), 200);
      assert.equal(await statusWithHosts(ui.port, "/login", [`127.0.0.1:${ui.port}`, "evil.example"]), 400);
    } finally {
      await ui.close();
    }
  });

  it("serves HTTPS with the coordinator's certificate, and its session cookie is Secure", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tributary-ui-tls-"));
    try {
      const { cert, key } = makeCert(dir, "cert", { cn: "127.0.0.1", san: "IP:127.0.0.1" });
      const ui = await startOperatorUi({
        coordinator: fakeReader("x"),
        operatorDigest: tokenDigest(TOKEN),
        port: 0,
        log: silentLog,
        tls: { cert, key },
      });
      try {
        assert.match(ui.url, /^https:\/\//);
        const res = await new Promise<{ status: number; cookie: string }>((resolve, reject) => {
          const body = new URLSearchParams({ token: TOKEN }).toString();
          const req = httpsRequest(
            new URL("/login", ui.url),
            { method: "POST", ca: cert, headers: { "content-type": "application/x-www-form-urlencoded" } },
            (r) => {
              r.resume();
              resolve({ status: r.statusCode ?? 0, cookie: String(r.headers["set-cookie"] ?? "") });
            },
          );
          req.on("error", reject);
          req.end(body);
        });
        assert.equal(res.status, 303);
        assert.match(res.cookie, /; Secure/);
        await assert.rejects(
          fetch(new URL("/login", ui.url.replace("https:", "http:"))),
          "plain HTTP is not served",
        );
      } finally {
        await ui.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
