"""One Python client given two coordinators (``ip:port,ip:port``), driven by
test/sdk-failover.test.ts: it joins (through the first), prints "joined",
waits for a line on stdin (the test kills that coordinator meanwhile), then
submits to round 1 and waits for the merged adapter — through the other
coordinator. Prints one JSON object."""

import json
import sys

import tributary_client as tc

spec = json.load(open(sys.argv[1]))
with tc.connect(spec["coordinators"], spec["token"]) as client:
    client.join(spec["federation"], spec["dir"])
    print("joined", flush=True)
    sys.stdin.readline()
    r = client.next_round(timeout=30)
    ack = client.submit(r.number, spec["dir"], samples=spec["samples"])
    res = client.wait_for_result(1, spec["out"], timeout=60)
    print(json.dumps({"round": ack.round, "duplicate": ack.duplicate, "hash": res.content_hash}), flush=True)
