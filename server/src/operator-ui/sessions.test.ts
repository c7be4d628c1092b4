import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cookieValue, createSessionStore, SESSION_COOKIE, sessionCookie } from "./sessions.ts";

describe("operator page sessions", () => {
  it("accepts live session ids only, until they expire or are revoked", () => {
    let now = 1000;
    const sessions = createSessionStore({ ttlMs: 100, now: () => now });
    const a = sessions.create();
    const b = sessions.create();
    assert.notEqual(a, b);
    assert.equal(sessions.valid(a), true);
    assert.equal(sessions.valid(undefined), false);
    assert.equal(sessions.valid(`${a.slice(0, -1)}${a.endsWith("A") ? "B" : "A"}`), false);
    sessions.revoke(b);
    assert.equal(sessions.valid(b), false);
    now += 100;
    assert.equal(sessions.valid(a), false);
  });

  it("drops the oldest session beyond its capacity", () => {
    const sessions = createSessionStore({ max: 2 });
    const first = sessions.create();
    sessions.create();
    const third = sessions.create();
    assert.equal(sessions.valid(first), false);
    assert.equal(sessions.valid(third), true);
    assert.equal(sessions.size, 2);
  });

  it("reads and writes the cookie", () => {
    assert.equal(cookieValue(`a=1; ${SESSION_COOKIE}=xyz; b=2`, SESSION_COOKIE), "xyz");
    assert.equal(cookieValue("a=1", SESSION_COOKIE), undefined);
    assert.equal(cookieValue(undefined, SESSION_COOKIE), undefined);
    assert.match(
      sessionCookie("xyz", 3600_000),
      /^tributary_session=xyz; Path=\/; HttpOnly; SameSite=Strict; Max-Age=3600$/,
    );
    assert.match(sessionCookie(undefined, 3600_000), /Max-Age=0$/);
  });
});
