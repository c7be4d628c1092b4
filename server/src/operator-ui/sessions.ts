/**
 * Browser sessions of the operator page. Logging in with the operator token
 * creates a random session id that goes into an HttpOnly, SameSite=Strict
 * cookie; the server keeps only the id's sha256 and its expiry, so neither
 * the token nor a usable session id is ever stored.
 */
import { createHash, randomBytes } from "node:crypto";

/** Name of the session cookie. */
export const SESSION_COOKIE = "tributary_session";

/** Server-side sessions (see the module comment). */
export interface SessionStore {
  /** Starts a session; returns its id (the cookie value). */
  create(): string;
  /** Whether `id` names a live session. */
  valid(id: string | undefined): boolean;
  /** Ends a session (logout). */
  revoke(id: string | undefined): void;
  readonly size: number;
}

/** What `createSessionStore` takes. */
export interface SessionStoreOptions {
  /** Session lifetime (default 12 h). */
  readonly ttlMs?: number;
  /** Most live sessions; the oldest is dropped beyond (default 1000). */
  readonly max?: number;
  readonly now?: () => number;
}

/**
 * An in-memory session store (sessions end with the process).
 *
 * @example
 * const sessions = createSessionStore({ ttlMs: 3_600_000 });
 * const id = sessions.create(); // → Set-Cookie
 * sessions.valid(id); // true
 */
export function createSessionStore(opts: SessionStoreOptions = {}): SessionStore {
  const ttlMs = opts.ttlMs ?? 12 * 3600_000;
  const max = opts.max ?? 1000;
  const now = opts.now ?? Date.now;
  // Insertion order = creation order, so the first key is the oldest.
  const expiries = new Map<string, number>();
  const digest = (id: string) => createHash("sha256").update(id, "utf8").digest("hex");
  const prune = () => {
    const t = now();
    for (const [k, exp] of expiries) if (exp <= t) expiries.delete(k);
    while (expiries.size >= max) expiries.delete(expiries.keys().next().value as string);
  };
  return {
    create() {
      prune();
      const id = randomBytes(32).toString("base64url");
      expiries.set(digest(id), now() + ttlMs);
      return id;
    },
    valid(id) {
      if (id === undefined || !/^[A-Za-z0-9_-]{43}$/.test(id)) return false;
      const k = digest(id);
      const exp = expiries.get(k);
      if (exp === undefined) return false;
      if (exp <= now()) {
        expiries.delete(k);
        return false;
      }
      return true;
    },
    revoke(id) {
      if (id !== undefined) expiries.delete(digest(id));
    },
    get size() {
      return expiries.size;
    },
  };
}

/** The value of cookie `name` in a `Cookie` header, if present. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** `Set-Cookie` value for a session id (`undefined` clears the cookie); `Secure` over HTTPS. */
export function sessionCookie(id: string | undefined, ttlMs: number, secure = false): string {
  const maxAge = id === undefined ? 0 : Math.floor(ttlMs / 1000);
  return `${SESSION_COOKIE}=${id ?? ""}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure ? "; Secure" : ""}`;
}
