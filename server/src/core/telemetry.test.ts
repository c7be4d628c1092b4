import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { noopTelemetry } from "./telemetry.ts";

describe("noopTelemetry", () => {
  it("runs the steps, merges and publishes it is given and records nothing", async () => {
    const u = noopTelemetry.update({ federationId: "f", round: 1, clientId: "c", updateId: "u" });
    assert.equal(await u.run(async () => 7), 7);
    assert.equal(await u.step("validate", () => 42), 42);
    assert.equal(await noopTelemetry.storeWrite("journal", async () => "ok"), "ok");
    const m = noopTelemetry.merge({ federationId: "f", round: 1, method: "from", clients: 2 });
    assert.equal(await m.run(async () => "merged"), "merged");
    assert.equal(await noopTelemetry.publish("f", 1, async () => "sent"), "sent");
    const stop = noopTelemetry.observeActiveClients(() => {
      throw new Error("a no-op never reads the clients");
    });
    stop();
    u.end("accepted");
    noopTelemetry.close();
  });
});
