import assert from "node:assert/strict";
import { test } from "node:test";
import { coordinatorTarget, coordinatorTargetProblem } from "./coordinator-target.ts";

test("one address is the target; several IP addresses become one ipv4/ipv6 target; names are refused in a list", () => {
  assert.equal(coordinatorTarget("coordinator:7070"), "coordinator:7070");
  assert.equal(coordinatorTarget("10.0.0.5:7070, 10.0.0.6:7071"), "ipv4:10.0.0.5:7070,10.0.0.6:7071");
  assert.equal(coordinatorTarget("[::1]:7070,[fe80::1]:7070"), "ipv6:[::1]:7070,[fe80::1]:7070");
  assert.match(coordinatorTargetProblem("a:1,b:2") ?? "", /must be given as IP addresses/);
  assert.match(coordinatorTargetProblem("10.0.0.1:1,[::1]:2") ?? "", /mixes IPv4 and IPv6/);
  assert.match(coordinatorTargetProblem("10.0.0.1:1,") ?? "", /empty address/);
  assert.throws(() => coordinatorTarget("10.0.0.1,10.0.0.2:7070"), /"10.0.0.1" is not host:port/);
});
