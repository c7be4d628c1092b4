/**
 * A merge that fails on the coordinator's side is not the end of the round:
 * a full disk is retried until space returns (other I/O faults a few times),
 * an aborted round's merge stops retrying, and an operator can merge a round
 * that failed on the coordinator's side again (`RetryMerge`, `tributary admin
 * retry-merge`) — but not one its clients' updates failed.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { RetryMergeRequestSchema, type RetryMergeResponse } from "@tributary/protocol";
import { createMergePool } from "../server/src/compute/merge-pool.ts";
import { MergeCalledOffError, mergeRound } from "../server/src/coordinator/round-merge.ts";
import type { CoordinatorStore } from "../server/src/core/store.ts";
import { createFileStore } from "../server/src/store/file-store.ts";
import { expectError, waitFor } from "./helpers/expect.ts";
import {
  type Fixture,
  fetchRound,
  publishFirstRound,
  startFixture,
  submitUpdate,
} from "./helpers/federation.ts";
import { call } from "./helpers/grpc-calls.ts";

/** The kernel's ENOSPC (a write to /dev/full), or an EIO-like fault. */
async function fault(kind: "ENOSPC" | "EIO"): Promise<never> {
  if (kind === "ENOSPC") await writeFile("/dev/full", "x");
  throw Object.assign(new Error("i/o error"), { code: "EIO" });
}

describe("merges that fail on the coordinator's side", () => {
  let fx: Fixture;
  let store: CoordinatorStore | undefined;
  /** What the next merged results meet when they are stored. */
  const storing: { fail?: "ENOSPC" | "EIO" | "BUG"; times: number } = { times: 0 };
  before(async () => {
    fx = await startFixture({
      clients: 2,
      method: "fedavg",
      rank: 4,
      store: (dir) => {
        const s = createFileStore(dir);
        store = s;
        return {
          ...s,
          open: () => s.open(),
          state: () => s.state(),
          putAdapter: async (input) => {
            if (storing.fail !== undefined && storing.times > 0) {
              storing.times--;
              if (storing.fail === "BUG") throw new Error("a bug in storing the result");
              await fault(storing.fail);
            }
            return s.putAdapter(input);
          },
        };
      },
    });
    await fx.joinAll();
  });
  after(async () => {
    await fx?.close();
  });

  it("retries a full disk past the other faults' limit, stops when called off, gives up on other faults", async () => {
    const fed = fx.federationId;
    const round = await publishFirstRound(fx);
    const args = {
      federation: fx.service.coordinator.federation(fed),
      round,
      updates: fx.service.coordinator.updates(fed, 1),
      store: store!,
      now: () => 1,
      sleep: async () => {},
    };
    const failing = (kind: "ENOSPC" | "EIO", times: number): CoordinatorStore => {
      let left = times;
      return {
        ...store!,
        state: () => store!.state(),
        putAdapter: async (input) => (left-- > 0 ? fault(kind) : store!.putAdapter(input)),
      };
    };
    const pool = await createMergePool({ threads: 0 });
    try {
      const retries: number[] = [];
      const merged = await mergeRound({
        ...args,
        pool,
        store: failing("ENOSPC", 20),
        onEvent: (e) => void (e.kind === "fault" && retries.push(e.retryInMs)),
      });
      assert.equal(merged.stored.contentHash, round.resultHash, "the same bytes once space is back");
      assert.equal(retries.length, 20, "a full disk is retried until space returns");
      assert.equal(Math.max(...retries), 60_000, "backing off to a minute");
      await assert.rejects(
        mergeRound({ ...args, pool, store: failing("ENOSPC", 5), keepTrying: () => false }),
        MergeCalledOffError,
      );
      await assert.rejects(mergeRound({ ...args, pool, store: failing("EIO", 20) }), /i\/o error/);
    } finally {
      await pool.close();
    }
  });

  it("lets the operator merge again a round whose merge failed on the coordinator's side", async () => {
    const fed = fx.federationId;
    storing.fail = "BUG";
    storing.times = 1;
    for (const c of fx.clients) {
      assert.equal((await submitUpdate(fx.client, fed, c, 2)).accepted, true);
    }
    await waitFor("round 2 failed", () => fx.service.coordinator.rounds(fed)[1]?.round.state === "failed");
    const failed = fx.service.coordinator.rounds(fed)[1].round;
    assert.equal(failed.mergeFault, "coordinator");
    assert.match(failed.failure ?? "", /merge failed: a bug in storing the result/);
    const retry = (round: number) =>
      call(
        fx.operator.retryMerge,
        fx.operator,
        create(RetryMergeRequestSchema, { federationId: fed, round }),
        fx.operatorMd,
      );
    const res = (await retry(2)) as RetryMergeResponse;
    assert.equal(res.round?.number, 2);
    await waitFor(
      "round 2 published",
      () => fx.service.coordinator.rounds(fed)[1]?.round.state === "published",
    );
    const r2 = fx.service.coordinator.rounds(fed)[1].round;
    assert.equal(r2.failure, undefined);
    assert.equal((await fetchRound(fx.client, fx.clients[0].token, fed, 2)).contentHash, r2.resultHash);
    assert.equal(fx.service.coordinator.updates(fed, 2).length, 2, "with every update it had accepted");
    // A published round, or one its clients failed, is not merged again.
    await expectError(retry(2), grpc.status.FAILED_PRECONDITION, "ROUND_STATE", /round 2 is published/);
  });
});
