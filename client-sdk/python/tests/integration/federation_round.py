"""A full round with three Python clients against a real coordinator, driven by
test/python-client.test.ts (which starts the coordinator and nats-server and
passes a JSON spec as argv[1]). Two clients use the library from threads, the
third the ``python -m tributary_client`` command line; then a stale round and a
bad update must raise their typed errors. Prints one JSON object."""

import json
import os
import subprocess
import sys
import threading

import tributary_client as tc

spec = json.load(open(sys.argv[1]))
coordinator, federation = spec["coordinator"], spec["federation"]
clients = spec["clients"]
out = {"hashes": {}, "acks": {}}
errors = []


def library_client(i):
    c = clients[i]
    try:
        with tc.connect(coordinator, c["token"]) as client:
            info = client.join(federation, c["dir"])
            r = client.next_round(timeout=30)
            if i == 1:
                # FroM does not weight by sample counts: submit needs none (the count is sent as 0).
                assert info.weights_by_samples is False, info
                ack = client.submit(r.number, c["dir"], metrics={"loss": 0.5})
            else:
                ack = client.submit(r.number, c["dir"], samples=100 * (i + 1), metrics={"loss": 0.5})
            res = client.wait_for_result(r.number, os.path.join(spec["work"], c["id"]), timeout=60)
            out["hashes"][c["id"]] = res.content_hash
            out["acks"][c["id"]] = {"round": ack.round, "duplicate": ack.duplicate, "liveness": info.liveness_timeout}
    except Exception as err:  # reported to the Node test
        errors.append(f"{c['id']}: {type(err).__name__}: {err}")


def cli_client(i):
    c = clients[i]
    env = {**os.environ, "TRIBUTARY_CLIENT_STATE": os.path.join(spec["work"], "cli-state.json")}
    token_file = os.path.join(spec["work"], "cli.token")
    with open(token_file, "w") as f:
        f.write(c["token"])
    base = [sys.executable, "-m", "tributary_client"]
    steps = [
        ["join", "--coordinator", coordinator, "--federation", federation, "--token-file", token_file, "--adapter", c["dir"]],
        ["submit", "--samples", str(100 * (i + 1)), "--timeout", "30", c["dir"]],
        ["wait", "--timeout", "60", "--out", os.path.join(spec["work"], c["id"]), "--json"],
    ]
    for step in steps:
        p = subprocess.run(base + step, env=env, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            errors.append(f"{c['id']} cli {step[0]}: exit {p.returncode}: {p.stderr.strip()}")
            return
        last = p.stdout.strip()
    out["hashes"][c["id"]] = json.loads(last)["contentHash"]


threads = [threading.Thread(target=library_client, args=(0,)), threading.Thread(target=library_client, args=(1,))]
threads.append(threading.Thread(target=cli_client, args=(2,)))
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    print(json.dumps({"errors": errors}))
    sys.exit(1)

# A stale round and a bad update, each a typed exception chosen from the error details.
c = clients[0]
with tc.connect(coordinator, c["token"]) as client:
    client.join(federation)
    try:
        client.submit(1, c["dir"], samples=1, update_id="late-for-round-1")
        out["stale"] = "accepted"
    except tc.StaleRoundError as err:
        out["stale"] = {"class": type(err).__name__, "current_round": err.current_round, "reason": err.reason}
    r = client.next_round(timeout=30)
    try:
        client.submit(r.number, spec["bad_dir"], samples=1)
        out["invalid"] = "accepted"
    except tc.InvalidUpdateError as err:
        out["invalid"] = {"class": type(err).__name__, "tensor": err.tensor, "reason": err.reason, "round": r.number}
print(json.dumps(out))
