import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type AnnouncedResult,
  AnnouncementFormatError,
  adapterObjects,
  announcementSubject,
  objectStoreDigest,
  parseAnnouncement,
  sha256Hex,
  toAnnouncement,
} from "./announcement.ts";

describe("round announcement", () => {
  const result: AnnouncedResult = {
    federationId: "fed-1",
    round: 3,
    contentHash: sha256Hex(new Uint8Array(16)),
    size: 16,
    method: "fedavg",
    clients: ["c1", "c2"],
    weights: [0.5, 0.5],
    mergedAt: 1_760_000_000_000,
  };

  it("round-trips through JSON", () => {
    const announcement = toAnnouncement(result, "bucket");
    assert.deepEqual(parseAnnouncement(JSON.parse(JSON.stringify(announcement))), announcement);
    assert.deepEqual(adapterObjects(result), {
      safetensors: `fed-1/round-3/${result.contentHash}/adapter_model.safetensors`,
      config: `fed-1/round-3/${result.contentHash}/adapter_config.json`,
    });
  });

  it("names the first bad field", () => {
    const announcement = toAnnouncement(result, "bucket");
    assert.throws(() => parseAnnouncement({ ...announcement, contentHash: "abc" }), {
      name: "AnnouncementFormatError",
      message: /"contentHash" must be a hex sha256/,
    });
    assert.throws(() => parseAnnouncement({ ...announcement, method: "" }), AnnouncementFormatError);
    assert.throws(() => parseAnnouncement({ ...announcement, objects: {} }), AnnouncementFormatError);
    assert.throws(() => parseAnnouncement([]), AnnouncementFormatError);
  });

  it("refuses federation ids that are not subject tokens", () => {
    assert.equal(announcementSubject("tributary.rounds", "fed-1"), "tributary.rounds.fed-1");
    for (const id of ["a.b", "a*", ">", "a b", ""]) {
      assert.throws(() => announcementSubject("p", id), AnnouncementFormatError);
    }
  });

  it("computes the object store's digest (padded base64url sha256)", () => {
    assert.equal(
      objectStoreDigest(new TextEncoder().encode("abc")),
      "SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=",
    );
  });
});
