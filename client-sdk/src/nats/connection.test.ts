import assert from "node:assert/strict";
import { test } from "node:test";
import { redactCredentials } from "./connection.ts";

test("redacts passwords and tokens from server URLs, keeping the rest", () => {
  assert.equal(
    redactCredentials("nats://app:s3cret@nats.internal:4222"),
    "nats://app:***@nats.internal:4222",
  );
  assert.equal(redactCredentials("nats://tok3n@host"), "nats://***@host");
  assert.equal(redactCredentials("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
  assert.equal(redactCredentials(["tls://a:b@h1:4222", "nats://h2"]), "tls://a:***@h1:4222,nats://h2");
  assert.equal(redactCredentials("nats://u:p@h1,nats://u:q@h2"), "nats://u:***@h1,nats://u:***@h2");
});
