/**
 * The operator page: a small read-only HTTP server on its own port (default
 * 127.0.0.1:7071) next to the gRPC endpoint. It serves a static page (HTML,
 * CSS and vanilla JS from `assets/`, no build step, nothing from a CDN) and
 * the JSON it renders:
 *
 * - `GET /api/federations` — federations, their clients and current round;
 * - `GET /api/federations/:id/rounds[?limit=N]` — rounds with timing,
 *   stragglers and per-client submissions (see `views.ts`).
 *
 * Everything but `/login`, `/healthz` and the stylesheet needs the operator
 * token: either `Authorization: Bearer <token>`, or a session cookie from the
 * login form. Without it, pages redirect to `/login` and the API answers 401.
 *
 * Served over HTTPS whenever the coordinator has a certificate (the token and
 * the session cookie, then `Secure`, never cross in clear). Requests whose
 * `Host` is not one of the page's names are refused (421), against DNS
 * rebinding; state-changing requests (login, logout) from another origin are
 * refused (403), against cross-site request forgery.
 */
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { UnknownFederationError } from "../coordinator/errors.ts";
import type { Log } from "../core/log.ts";
import { tokenMatches } from "../core/tokens.ts";
import { loginPage } from "./login-page.ts";
import { cookieValue, createSessionStore, SESSION_COOKIE, sessionCookie } from "./sessions.ts";
import { type CoordinatorReader, federationsView, roundsView } from "./views.ts";

/** Default port of the operator page. */
export const DEFAULT_UI_PORT = 7071;

/** What `startOperatorUi` needs. */
export interface OperatorUiOptions {
  readonly coordinator: CoordinatorReader;
  /** Hex sha256 of the operator token. */
  readonly operatorDigest: string;
  /** Listen address (default 127.0.0.1). */
  readonly host?: string;
  /** Default 7071; 0 = any free port. */
  readonly port?: number;
  readonly log: Log;
  /** Lifetime of a login session (default 12 h). */
  readonly sessionTtlMs?: number;
  /** Whether the coordinator is serving (false while it drains); `GET /healthz` reports it. Default: always. */
  readonly serving?: () => boolean;
  /** PEM certificate and key: serve HTTPS (the coordinator's gRPC certificate). */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  /**
   * Host names (without port) requests may address; default: `localhost`,
   * `127.0.0.1`, `::1`, the listen host and this machine's host name.
   */
  readonly allowedHosts?: readonly string[];
}

/** A running operator page. */
export interface OperatorUi {
  readonly port: number;
  /** `http://host:port/`. */
  readonly url: string;
  close(): Promise<void>;
}

const ASSETS: Readonly<Record<string, { file: string; type: string; public: boolean }>> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8", public: false },
  "/assets/app.js": { file: "app.js", type: "text/javascript; charset=utf-8", public: false },
  "/assets/style.css": { file: "style.css", type: "text/css; charset=utf-8", public: true },
};

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

const MAX_LOGIN_BODY = 8 * 1024;
const ROUNDS_PATH = /^\/api\/federations\/([^/]+)\/rounds$/;

class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Starts the operator page.
 *
 * @example
 * const ui = await startOperatorUi({ coordinator, operatorDigest: tokenDigest(token), port: 7071, log });
 * console.log(`operator page: ${ui.url}`);
 */
export async function startOperatorUi(opts: OperatorUiOptions): Promise<OperatorUi> {
  const { coordinator, operatorDigest, log } = opts;
  const host = opts.host ?? "127.0.0.1";
  const secure = opts.tls !== undefined;
  const allowedHosts = new Set(
    (
      opts.allowedHosts ?? ["localhost", "127.0.0.1", "::1", hostname(), ...(isWildcard(host) ? [] : [host])]
    ).map((h) => h.replace(/^\[(.*)\]$/, "$1").toLowerCase()),
  );
  const ttlMs = opts.sessionTtlMs ?? 12 * 3600_000;
  const sessions = createSessionStore({ ttlMs });
  const assets = new Map<string, Buffer>();
  for (const [path, a] of Object.entries(ASSETS)) {
    assets.set(path, await readFile(new URL(`./assets/${a.file}`, import.meta.url)));
  }

  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer, extra = {}) => {
    res.writeHead(status, { ...SECURITY_HEADERS, "content-type": type, ...extra });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, body: unknown, extra = {}) =>
    send(res, status, "application/json; charset=utf-8", JSON.stringify(body), extra);
  const redirect = (res: ServerResponse, location: string, extra = {}) => {
    res.writeHead(303, { ...SECURITY_HEADERS, location, ...extra });
    res.end();
  };

  const bearerOk = (req: IncomingMessage): boolean => {
    const m = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(req.headers.authorization ?? "");
    return m !== null && tokenMatches(m[1], operatorDigest);
  };
  const sessionOf = (req: IncomingMessage) => cookieValue(req.headers.cookie, SESSION_COOKIE);
  const authenticated = (req: IncomingMessage) => bearerOk(req) || sessions.valid(sessionOf(req));

  const login = async (req: IncomingMessage, res: ServerResponse) => {
    const form = new URLSearchParams(await readBody(req, MAX_LOGIN_BODY));
    const token = (form.get("token") ?? "").trim();
    if (token === "" || !tokenMatches(token, operatorDigest)) {
      log.warn("operator page: failed login", { remote: req.socket.remoteAddress });
      send(res, 401, "text/html; charset=utf-8", loginPage({ error: "That is not the operator token." }));
      return;
    }
    const id = sessions.create();
    log.info("operator page: login", { remote: req.socket.remoteAddress });
    redirect(res, "/", { "set-cookie": sessionCookie(id, ttlMs, secure) });
  };

  const api = async (path: string, url: URL, res: ServerResponse) => {
    if (path === "/api/federations") {
      json(res, 200, { now: Date.now(), federations: federationsView(coordinator) });
      return;
    }
    const m = ROUNDS_PATH.exec(path);
    if (m !== null) {
      const limit = Math.min(
        1000,
        Math.max(1, Number.parseInt(url.searchParams.get("limit") ?? "100", 10) || 100),
      );
      json(res, 200, await roundsView(coordinator, decodePathPart(m[1]), Date.now(), limit));
      return;
    }
    throw new HttpError(404, `no such API route: ${path}`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://operator.invalid");
    const path = url.pathname;
    const method = req.method ?? "GET";
    const isApi = path.startsWith("/api/");
    const read = method === "GET" || method === "HEAD";
    if (path === "/healthz") {
      // Unauthenticated, for probes: 200 while serving, 503 while draining.
      if (!read) throw new HttpError(405, "GET");
      const serving = opts.serving?.() ?? true;
      return json(res, serving ? 200 : 503, { status: serving ? "serving" : "not_serving" });
    }
    // RFC 9112 §3.2: a request with more than one Host field is answered 400.
    let hostFields = 0;
    for (let i = 0; i < req.rawHeaders.length; i += 2)
      if (req.rawHeaders[i].toLowerCase() === "host") hostFields++;
    if (hostFields > 1) throw new HttpError(400, `${hostFields} Host header fields; a request has one`);
    const requestHost = hostnameOf(req.headers.host);
    if (requestHost === undefined || !allowedHosts.has(requestHost)) {
      throw new HttpError(
        421,
        `Host ${JSON.stringify(req.headers.host ?? "")} is not a name of this page (allowed: ${[...allowedHosts].join(", ")})`,
      );
    }
    if (!read && !sameOrigin(req)) throw new HttpError(403, "cross-origin request refused");
    if (path === "/login") {
      if (method === "POST") return await login(req, res);
      if (!read) throw new HttpError(405, "GET or POST");
      if (authenticated(req)) return redirect(res, "/");
      return send(res, 200, "text/html; charset=utf-8", loginPage());
    }
    const asset = ASSETS[path];
    if (asset?.public === true && read) return send(res, 200, asset.type, assets.get(path)!);
    if (!authenticated(req)) {
      if (isApi || !read) {
        return json(
          res,
          401,
          { error: "operator token required" },
          { "www-authenticate": 'Bearer realm="tributary"' },
        );
      }
      return redirect(res, "/login");
    }
    if (path === "/logout" && method === "POST") {
      sessions.revoke(sessionOf(req));
      return redirect(res, "/login", { "set-cookie": sessionCookie(undefined, ttlMs, secure) });
    }
    if (!read) throw new HttpError(405, "the operator page is read-only");
    if (isApi) return await api(path, url, res);
    if (asset !== undefined) return send(res, 200, asset.type, assets.get(path)!);
    throw new HttpError(404, `not found: ${path}`);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      const status =
        err instanceof HttpError ? err.status : err instanceof UnknownFederationError ? 404 : 500;
      if (status === 500) log.error("operator page: request failed", { path: req.url, error: err });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      json(res, status, { error: err instanceof Error ? err.message : String(err) });
    });
  };
  const server =
    opts.tls !== undefined
      ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest)
      : createServer(onRequest);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? DEFAULT_UI_PORT, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `${opts.tls !== undefined ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${port}/`;
  log.info("operator page listening", { url });
  return {
    port,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, "malformed federation id in the path");
  }
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

/** Whether `host` listens on every address (then it names no host). */
function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "";
}

/** The host name of a `Host` header, lower case, without port or IPv6 brackets. */
function hostnameOf(host: string | undefined): string | undefined {
  if (host === undefined || host === "") return undefined;
  try {
    return new URL(`http://${host}`).hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * Whether a state-changing request comes from the page's own origin: its
 * `Origin` names this host, or — with `Origin: null` or none — `Sec-Fetch-Site`
 * says same-origin; requests with neither (scripts, not browsers) pass.
 */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  const site = req.headers["sec-fetch-site"];
  // The page's `Referrer-Policy: no-referrer` makes browsers send `Origin: null`
  // on its own form posts; their fetch metadata then says where they came from.
  if (origin === "null") return site === "same-origin";
  if (origin !== undefined) return hostOf(origin) === req.headers.host;
  return site === undefined || site === "same-origin" || site === "none";
}

async function readBody(req: IncomingMessage, max: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw new HttpError(413, `request body over ${max} bytes`);
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts).toString("utf8");
}
