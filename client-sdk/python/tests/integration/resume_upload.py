"""Resume after a connection killed mid-upload, driven by test/python-client.test.ts:
client 1 uploads a multi-MiB adapter through a throttled proxy the Node test cuts
mid-upload; client 2 only joins (so the round opens). Prints the ack as JSON."""

import json
import sys

import tributary_client as tc

spec = json.load(open(sys.argv[1]))
first = tc.connect(spec["proxy"], spec["clients"][0]["token"], retries=8)
second = tc.connect(spec["coordinator"], spec["clients"][1]["token"])
try:
    first.join(spec["federation"])
    second.join(spec["federation"])
    r = first.next_round(timeout=30)
    print(json.dumps({"uploading": r.number}), flush=True)
    ack = first.submit(r.number, spec["clients"][0]["dir"], samples=10)
    print(json.dumps({"round": ack.round, "update_id": ack.update_id, "attempts": ack.attempts, "resumed_from": ack.resumed_from,
                      "content_hash": ack.content_hash, "duplicate": ack.duplicate}), flush=True)
finally:
    first.close()
    second.close()
