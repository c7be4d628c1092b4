"""``python -m tributary_client``: the same actions, flags, state file and exit codes as
the ``tributary-client`` command, for Python environments without Node.js.

Exit codes: 0 ok, 1 refused or failed for good (or an unusable adapter), 2 usage
error, 3 the round failed or was aborted, 4 timed out, 5 coordinator unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from .adapter import adapter_rank, read_adapter
from .client import CHUNK_BYTES, Client, Round, connect
from .errors import RoundFailedError, TributaryError, UnavailableError
from .local_dp import LocalDp, local_epsilon
from .waiting import describe_waiting

DEFAULT_STATE_FILE = os.path.join(".tributary", "client.json")


def _load_state(path: str) -> Dict[str, Any]:
    try:
        with open(path, "r", encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}
    if not isinstance(doc, dict):
        raise TributaryError("USAGE", f"{path}: not a tributary client state file (expected a JSON object)")
    return doc


def _save_state(path: str, state: Dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tributary_client",
        description="Take part in a Tributary federation with PEFT adapter directories.",
        epilog="Exit codes: 0 ok, 1 refused/failed, 2 usage, 3 round failed or aborted, 4 timed out, 5 unreachable.",
    )
    p.add_argument("action", choices=["join", "submit", "wait", "fetch", "status"])
    p.add_argument("adapter_dir", nargs="?", help="the PEFT adapter directory (submit)")
    p.add_argument("--coordinator", help="coordinator gRPC address [TRIBUTARY_COORDINATOR]")
    p.add_argument("--token-file", help="file holding this client's token")
    p.add_argument("--token", help="the token itself [TRIBUTARY_TOKEN]")
    p.add_argument("--federation", help="federation id [TRIBUTARY_FEDERATION]")
    p.add_argument("--nats-url", help="NATS URL the coordinator announces on [TRIBUTARY_NATS_URL]")
    p.add_argument("--tls-ca", help="connect over TLS, trusting this CA [TRIBUTARY_TLS_CA]")
    p.add_argument("--tls-cert", help="mutual TLS: this client's certificate; no token needed then [TRIBUTARY_TLS_CERT]")
    p.add_argument("--tls-key", help="mutual TLS: the key of --tls-cert [TRIBUTARY_TLS_KEY]")
    p.add_argument("--state", help=f"state file (default {DEFAULT_STATE_FILE}) [TRIBUTARY_CLIENT_STATE]")
    p.add_argument("--retries", type=int, default=5, help="retries of a failing call (default 5)")
    p.add_argument("--json", action="store_true", help="print results as one JSON object per line")
    p.add_argument("--adapter", help="join: check this adapter against the schema now")
    p.add_argument("--round", type=int, help="submit/wait/fetch: the round")
    p.add_argument(
        "--rank",
        type=int,
        help="wait/fetch: receive the merged adapter truncated to this rank where clients train at "
        "different ranks (default: the rank of the adapter last submitted; 0 = the whole adapter)",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        help="submit: training samples behind the update; required when the federation weights "
        "updates by them (FedAvg, FedIT, median), else sent as 0 when left out",
    )
    p.add_argument("--local-dp-clip", type=float, help="submit: local DP, clip the update to this L2 norm")
    p.add_argument("--local-dp-noise", type=float, help="submit: local DP, Gaussian noise of this x the clip norm")
    p.add_argument("--local-dp-delta", type=float, default=1e-5, help="submit: local DP, the delta epsilon is reported at")
    p.add_argument("--metric", action="append", default=[], help="submit: NAME=VALUE (repeatable)")
    p.add_argument("--update-id", help="submit: idempotency key (default: derived from round and content)")
    p.add_argument("--timeout", type=float, help="submit/wait: seconds to wait")
    p.add_argument("--out", help="wait/fetch: directory to write the merged adapter to")
    return p


class _Usage(Exception):
    pass


def _resolve(args: argparse.Namespace, env: Dict[str, str], state: Dict[str, Any]) -> Dict[str, Any]:
    token_file = args.token_file or (None if args.token else state.get("tokenFile"))
    token = args.token or env.get("TRIBUTARY_TOKEN") or state.get("token")
    if token_file is not None:
        with open(token_file, "r", encoding="utf-8") as f:
            token = f.read().strip()
    federation = args.federation or env.get("TRIBUTARY_FEDERATION") or state.get("federation")

    def path_of(given: Optional[str], saved: Optional[str]) -> Optional[str]:
        return os.path.abspath(given) if given else saved

    tls_ca = path_of(args.tls_ca or env.get("TRIBUTARY_TLS_CA"), state.get("tlsCa"))
    tls_cert = path_of(args.tls_cert or env.get("TRIBUTARY_TLS_CERT"), state.get("tlsCert"))
    tls_key = path_of(args.tls_key or env.get("TRIBUTARY_TLS_KEY"), state.get("tlsKey"))
    if (tls_cert is None) != (tls_key is None):
        raise _Usage("--tls-cert and --tls-key go together: pass both (or neither)")
    # With a client certificate the token may be left out: the certificate identifies the client.
    if not token and tls_cert is None:
        raise _Usage(
            "no token: pass --token-file FILE or --token TOKEN (or set TRIBUTARY_TOKEN), "
            "or a client certificate with --tls-cert/--tls-key"
        )
    if not federation:
        raise _Usage("no federation: pass --federation ID (or set TRIBUTARY_FEDERATION)")
    return {
        "coordinator": args.coordinator or env.get("TRIBUTARY_COORDINATOR") or state.get("coordinator") or "127.0.0.1:7070",
        "token": token or "",
        "token_file": os.path.abspath(token_file) if token_file else None,
        "federation": federation,
        "nats": args.nats_url or env.get("TRIBUTARY_NATS_URL") or state.get("natsUrl"),
        "tls_ca": tls_ca,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
    }


def _waiting_printer(args: argparse.Namespace):
    """Prints each ``Waiting`` report as a line on stderr (none with --json)."""
    if args.json:
        return None
    return lambda w: print(describe_waiting(w), file=sys.stderr, flush=True)


def _progress_printer(args: argparse.Namespace, verb: str):
    """Prints transfer progress on stderr: a line per 10 % of a long transfer, and at least
    every 2 s (none with --json), as the TypeScript CLI does."""
    if args.json:
        return None
    state = {"step": -1, "at": time.monotonic()}

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        decile = 10 if total == 0 else (done * 10) // total
        long = total >= 4 * CHUNK_BYTES
        if (long and decile > state["step"]) or now - state["at"] >= 2.0 or (done == total and decile > state["step"]):
            state["step"], state["at"] = decile, now
            unit, div = ("MiB", 1024 * 1024) if total >= 1024 * 1024 else ("KiB", 1024)
            print(f"{verb} {done / div:.1f} of {total / div:.1f} {unit} ({decile * 10}%)", file=sys.stderr, flush=True)

    return report


def _print(args: argparse.Namespace, text: str, doc: Dict[str, Any]) -> None:
    print(json.dumps(doc) if args.json else text, flush=True)


def _describe(r: Optional[Round]) -> str:
    if r is None:
        return "no round yet"
    return f"round {r.number} {r.state} ({r.accepted_updates} updates)"


def _run(args: argparse.Namespace, env: Dict[str, str]) -> int:
    state_path = args.state or env.get("TRIBUTARY_CLIENT_STATE") or DEFAULT_STATE_FILE
    state = _load_state(state_path)
    conn = _resolve(args, env, state)
    client: Client = connect(
        conn["coordinator"],
        conn["token"],
        nats=conn["nats"],
        tls_ca=conn["tls_ca"],
        tls_cert=conn["tls_cert"],
        tls_key=conn["tls_key"],
        retries=args.retries,
    )
    try:
        info = client.join(conn["federation"], args.adapter if args.action == "join" else None)
        saved = {
            "coordinator": conn["coordinator"],
            "federation": conn["federation"],
            "clientId": info.client_id,
            **({"tokenFile": conn["token_file"]} if conn["token_file"] else {"token": conn["token"]} if conn["token"] else {}),
            **({"natsUrl": conn["nats"]} if conn["nats"] else {}),
            **({"tlsCa": conn["tls_ca"]} if conn["tls_ca"] else {}),
            **({"tlsCert": conn["tls_cert"], "tlsKey": conn["tls_key"]} if conn["tls_cert"] else {}),
            **({"lastSubmittedRound": state["lastSubmittedRound"]} if "lastSubmittedRound" in state else {}),
            **({"lastSubmittedRank": state["lastSubmittedRank"]} if "lastSubmittedRank" in state else {}),
            **({"localDp": state["localDp"]} if "localDp" in state else {}),
        }
        if args.action == "join":
            _save_state(state_path, saved)
            _print(
                args,
                f"joined {conn['federation']} as {info.client_id}; {_describe(info.current_round)}"
                + (f"; no round open: {info.waiting_reason}" if info.waiting_reason else ""),
                {"clientId": info.client_id, "federation": conn["federation"], "round": info.current_round.number if info.current_round else None},
            )
        elif args.action == "status":
            r = client.current_round()
            _print(args, _describe(r), {"round": r.number if r else None, "state": r.state if r else None})
        elif args.action == "submit":
            if not args.adapter_dir:
                raise _Usage("submit needs the adapter directory")
            metrics = {}
            for m in args.metric:
                name, eq, value = m.partition("=")
                if not eq:
                    raise _Usage(f"--metric expects NAME=VALUE, got {m!r}")
                metrics[name] = float(value)
            if args.samples is None and info.weights_by_samples:
                raise _Usage(
                    f'submit needs --samples N: federation "{conn["federation"]}" weights updates by their '
                    f"training sample counts ({info.federation.merge.method})"
                )
            number = (
                args.round
                if args.round is not None
                else client.next_round(timeout=args.timeout, on_waiting=_waiting_printer(args)).number
            )
            dp = None
            if args.local_dp_clip is not None or args.local_dp_noise is not None:
                if not args.local_dp_clip or args.local_dp_noise is None:
                    raise _Usage("local DP needs --local-dp-clip C (> 0) and --local-dp-noise Z")
                dp = LocalDp(args.local_dp_clip, args.local_dp_noise)
            ack = client.submit(
                number,
                args.adapter_dir,
                samples=args.samples,
                metrics=metrics,
                update_id=args.update_id,
                on_progress=_progress_printer(args, "uploaded"),
                local_dp=dp,
            )
            spent = dict(state.get("localDp", {}))
            if dp is not None:
                spent[str(dp.noise_multiplier)] = spent.get(str(dp.noise_multiplier), 0) + 1
            rank = adapter_rank(read_adapter(args.adapter_dir).config_json)
            _save_state(
                state_path,
                {
                    **saved,
                    "lastSubmittedRound": ack.round,
                    **({"lastSubmittedRank": rank} if rank is not None else {}),
                    **({"localDp": spent} if spent else {}),
                },
            )
            if dp is not None and not args.json:
                eps = local_epsilon([(float(z), n) for z, n in spent.items()], args.local_dp_delta)
                r = ack.local_dp
                print(
                    f"local DP: norm {r.norm:.4g}{f' clipped to {dp.clip_norm}' if r.clipped else ''}, noise sigma = {r.sigma:.4g}; "
                    f"this client's epsilon = {eps:.4f} at delta = {args.local_dp_delta} over its local-DP updates",
                    file=sys.stderr,
                )
            _print(
                args,
                f"round {ack.round}: update {ack.update_id} {'already stored' if ack.duplicate else 'stored'} ({ack.size} bytes, sha256 {ack.content_hash})",
                {"round": ack.round, "updateId": ack.update_id, "duplicate": ack.duplicate, "size": ack.size, "contentHash": ack.content_hash},
            )
        elif args.action in ("wait", "fetch"):
            if args.action == "fetch" and not args.out:
                raise _Usage("fetch needs --out DIR")
            out = args.out or os.path.join(".tributary", "global")
            # --rank R, else the rank of the adapter this client last submitted (0 = the whole adapter).
            rank = args.rank if args.rank is not None else state.get("lastSubmittedRank")
            if args.action == "fetch":
                res = client.global_adapter(
                    out, round=args.round, on_download=_progress_printer(args, "downloaded"), rank=rank
                )
            else:
                number = args.round or state.get("lastSubmittedRound")
                if number is None:
                    cur = client.current_round()
                    number = cur.number if cur is not None else 1
                if not args.json:
                    print(f"waiting for round {number} to be merged…", file=sys.stderr, flush=True)
                res = client.wait_for_result(
                    int(number),
                    out,
                    timeout=args.timeout,
                    on_waiting=_waiting_printer(args),
                    on_download=_progress_printer(args, "downloaded"),
                    rank=rank,
                )
            _print(
                args,
                f"{res.round} {res.content_hash}",
                {"round": res.round, "contentHash": res.content_hash, "dir": res.directory, "rank": res.rank},
            )
        return 0
    finally:
        client.close(stay_joined=True)


def main(argv: Optional[Sequence[str]] = None, env: Optional[Dict[str, str]] = None) -> int:
    """Runs the CLI; returns the exit code (nothing is raised)."""
    parser = _parser()
    try:
        args = parser.parse_intermixed_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    name = f"tributary_client {args.action}"
    try:
        return _run(args, dict(os.environ if env is None else env))
    except _Usage as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 2
    except RoundFailedError as err:
        print(f"{name}: {err.details}", file=sys.stderr)
        return 3
    except TimeoutError as err:
        print(f"{name}: timed out ({err})", file=sys.stderr)
        return 4
    except UnavailableError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 5
    except (TributaryError, OSError, ValueError) as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 1
