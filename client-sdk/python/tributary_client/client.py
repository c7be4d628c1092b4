"""The Python client of a Tributary federation, over gRPC (``grpcio`` + ``protobuf``).

``connect()`` a client, ``join()`` a federation (a background thread then holds
the ``WatchRounds`` stream, so the coordinator counts this client as connected
and rounds are seen as they change), then per round: ``next_round()`` →
train → ``submit()`` → ``wait_for_result()``.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set, TypeVar, Union

import grpc

from ._gen.tributary.v1 import client_pb2, client_pb2_grpc, federation_pb2
from .adapter import AdapterFiles, adapter_rank, adapter_schema, read_adapter, sha256_hex, write_adapter
from .errors import (
    IntegrityError,
    InvalidUpdateError,
    NotFoundError,
    RoundFailedError,
    TributaryError,
    UnavailableError,
    from_rpc_error,
    is_transient,
)
from .ids import id_problem
from .targets import coordinator_target

#: Size of upload chunks (1 MiB), as the protocol recommends.
CHUNK_BYTES = 1 << 20
#: Largest message either side sends or accepts (8 MiB).
MAX_MESSAGE_BYTES = 8 << 20

_STATES = {
    federation_pb2.ROUND_STATE_OPEN: "open",
    federation_pb2.ROUND_STATE_MERGING: "merging",
    federation_pb2.ROUND_STATE_PUBLISHED: "published",
    federation_pb2.ROUND_STATE_FAILED: "failed",
    federation_pb2.ROUND_STATE_ABORTED: "aborted",
}
_TERMINAL = {"published", "failed", "aborted"}
_DTYPES = {"F32": federation_pb2.DTYPE_F32, "F16": federation_pb2.DTYPE_F16, "BF16": federation_pb2.DTYPE_BF16}

T = TypeVar("T")


@dataclass(frozen=True)
class Round:
    """A round as the coordinator last reported it."""

    federation_id: str
    number: int
    #: ``"open"``, ``"merging"``, ``"published"``, ``"failed"`` or ``"aborted"``.
    state: str
    cohort: List[str]
    accepted_updates: int
    #: SHA-256 (hex) of the merged adapter, once published.
    content_hash: str
    failure_reason: str
    #: When an open round fails without a quorum (epoch seconds), if set.
    deadline: Optional[float] = None
    #: Once published, where clients train at different ranks: ``{rank: content_hash}`` of the
    #: merged adapter truncated exactly to each smaller client rank (FlexLoRA).
    rank_variants: Dict[int, str] = field(default_factory=dict)

    @staticmethod
    def from_proto(r: federation_pb2.Round) -> "Round":
        return Round(
            r.federation_id,
            r.number,
            _STATES.get(r.state, "unspecified"),
            list(r.cohort_client_ids),
            r.accepted_updates,
            r.result_content_hash,
            r.failure_reason,
            r.deadline_time.seconds + r.deadline_time.nanos / 1e9 if r.HasField("deadline_time") else None,
            {v.rank: v.content_hash for v in r.rank_variants},
        )


@dataclass(frozen=True)
class JoinInfo:
    """What ``join`` returns."""

    client_id: str
    federation_id: str
    #: The federation's configuration (``tributary.v1.Federation``).
    federation: federation_pb2.Federation
    current_round: Optional[Round]
    #: Seconds this client counts as connected after its last call without a stream.
    liveness_timeout: float
    #: The federation's method weights updates by sample counts: ``submit`` needs ``samples``.
    weights_by_samples: bool = False
    #: Why no round is open, when none is (e.g. "1 of 2 clients connected; a round opens when 2 are").
    waiting_reason: Optional[str] = None


@dataclass(frozen=True)
class Ack:
    """The coordinator's acknowledgement of a durably stored update."""

    update_id: str
    round: int
    #: The coordinator already had this update; nothing new was stored.
    duplicate: bool
    content_hash: str
    size: int
    attempts: int
    #: The byte offset a retried upload resumed from, when it did.
    resumed_from: Optional[int] = None
    #: What local DP did (``submit(local_dp=…)``): its ``LocalDpReport``.
    local_dp: Optional[object] = None


@dataclass(frozen=True)
class Result:
    """A merged adapter written to ``directory`` (sha256-checked)."""

    round: int
    content_hash: str
    directory: str
    #: Where it came from: ``"grpc"`` (the coordinator's FetchAdapter).
    source: str
    adapter: AdapterFiles = field(repr=False)
    #: When it is a rank variant of the round's merged adapter (FlexLoRA): its rank.
    rank: Optional[int] = None


def default_update_id(round_number: int, content_hash: str, config_json: str) -> str:
    """The default idempotency key, the same as the TypeScript client's: ``r<round>-`` +
    40 hex digits of sha256(round, content hash, config). Resubmitting the same adapter
    is acknowledged as a duplicate."""
    digest = hashlib.sha256(f"{round_number}\0{content_hash}\0{config_json}".encode("utf-8")).hexdigest()
    return f"r{round_number}-{digest[:40]}"


class Client:
    """A session with a coordinator. Use ``connect()`` to create one; it is a context manager."""

    def __init__(
        self,
        coordinator: str,
        token: str,
        *,
        nats: Optional[Union[str, Sequence[str]]] = None,
        tls_ca: Optional[str] = None,
        tls_cert: Optional[str] = None,
        tls_key: Optional[str] = None,
        retries: int = 5,
        initial_backoff: float = 0.25,
        max_backoff: float = 10.0,
    ):
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls_ca is not None or tls_cert is not None:
            def read(path: Optional[str]) -> Optional[bytes]:
                if path is None:
                    return None
                with open(path, "rb") as f:
                    return f.read()

            credentials = grpc.ssl_channel_credentials(
                root_certificates=read(tls_ca), private_key=read(tls_key), certificate_chain=read(tls_cert)
            )
            self._channel = grpc.secure_channel(coordinator_target(coordinator), credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(coordinator_target(coordinator), options=options)
        self._stub = client_pb2_grpc.ClientServiceStub(self._channel)
        # With a client certificate the token may be empty: the certificate identifies the client.
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        #: NATS URL(s) the coordinator announces on. This client downloads over gRPC
        #: (``FetchAdapter``, resumable, sha256-checked) either way.
        self.nats = nats
        self._retries = retries
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._cond = threading.Condition()
        self._rounds: Dict[int, Round] = {}
        self._submitted: Set[int] = set()
        #: The rank of the last adapter submitted: the default rank results are received at.
        self._rank: Optional[int] = None
        self._watch_error: Optional[TributaryError] = None
        self._watch_thread: Optional[threading.Thread] = None
        self._watch_call: Optional[grpc.Future] = None
        self._closed = False
        self.client_id: Optional[str] = None
        self.federation_id: Optional[str] = None
        self._weights_by_samples = False

    # -- calls ---------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        base = min(self._max_backoff, self._initial_backoff * (2 ** max(0, attempt - 1)))
        return base / 2 + random.random() * base / 2

    def _call(self, what: str, fn: Callable[[int], T]) -> T:
        """Runs ``fn(attempt)``, retrying transient failures with backoff and jitter."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(attempt)
            except grpc.RpcError as err:
                if not is_transient(err):
                    raise from_rpc_error(err) from err
                if attempt > self._retries:
                    last = from_rpc_error(err)
                    raise UnavailableError(
                        last.code, f"{what}: coordinator unreachable after {attempt} tries ({last.details})"
                    ) from err
                time.sleep(self._backoff(attempt))

    def _require_joined(self) -> str:
        if self.federation_id is None:
            raise TributaryError("NOT_JOINED", "call join(federation_id) first")
        return self.federation_id

    # -- session -------------------------------------------------------------------------

    def join(self, federation_id: str, adapter_dir: Optional[str] = None) -> JoinInfo:
        """Joins ``federation_id``; with ``adapter_dir`` the coordinator checks that adapter's
        base model, module shapes and dtype against the federation's schema now. Starts the
        round watch (reconnected with backoff if it drops)."""
        problem = id_problem("federation_id", federation_id)
        if problem is not None:
            raise TributaryError("INVALID_ARGUMENT", problem)
        req = client_pb2.JoinRequest(federation_id=federation_id)
        if adapter_dir is not None:
            try:
                schema = adapter_schema(read_adapter(adapter_dir))
            except ValueError as err:
                raise TributaryError("INVALID_ARGUMENT", str(err)) from err
            req.base_model_id = schema.base_model_id or ""
            for m in schema.modules:
                req.modules.add(name=m.name, d_in=m.d_in, d_out=m.d_out, max_rank=m.max_rank)
            if schema.dtype is not None:
                req.dtype = _DTYPES[schema.dtype]
        res = self._call(f"join {federation_id}", lambda _: self._stub.Join(req, metadata=self._metadata))
        self.client_id = res.client_id
        self.federation_id = federation_id
        current = Round.from_proto(res.current_round) if res.HasField("current_round") else None
        if current is not None:
            self._record(current)
        self._start_watch(federation_id)
        timeout = res.liveness_timeout.seconds + res.liveness_timeout.nanos / 1e9
        self._weights_by_samples = res.weights_by_samples
        return JoinInfo(
            res.client_id, federation_id, res.federation, current, timeout, res.weights_by_samples, res.waiting_reason or None
        )

    def _record(self, r: Round) -> None:
        with self._cond:
            self._rounds[r.number] = r
            self._cond.notify_all()

    def _start_watch(self, federation_id: str) -> None:
        if self._watch_thread is not None:
            return
        req = client_pb2.WatchRoundsRequest(federation_id=federation_id)

        def run() -> None:
            attempt = 0
            while not self._closed:
                try:
                    call = self._stub.WatchRounds(req, metadata=self._metadata)
                    self._watch_call = call
                    for msg in call:
                        attempt = 0
                        self._record(Round.from_proto(msg.round))
                    attempt += 1
                except grpc.RpcError as err:
                    if self._closed:
                        return
                    if not is_transient(err):
                        with self._cond:
                            self._watch_error = from_rpc_error(err)
                            self._cond.notify_all()
                        return
                    attempt += 1
                time.sleep(self._backoff(attempt))

        self._watch_thread = threading.Thread(target=run, name="tributary-watch", daemon=True)
        self._watch_thread.start()

    def heartbeat(self) -> float:
        """Tells the coordinator this client is alive without a stream; returns the liveness timeout (s)."""
        res = self._heartbeat()
        return res.liveness_timeout.seconds + res.liveness_timeout.nanos / 1e9

    def _heartbeat(self) -> client_pb2.HeartbeatResponse:
        federation_id = self._require_joined()
        req = client_pb2.HeartbeatRequest(federation_id=federation_id)
        res = self._call("heartbeat", lambda _: self._stub.Heartbeat(req, metadata=self._metadata))
        if res.HasField("current_round"):
            self._record(Round.from_proto(res.current_round))
        return res

    def _report_waiting(self, on_waiting, waiting_for: str, awaited_round: Optional[int]) -> None:
        """One ``on_waiting`` report, from a heartbeat; a failed heartbeat reports nothing."""
        from .waiting import waiting_of

        try:
            res = self._stub.Heartbeat(
                client_pb2.HeartbeatRequest(federation_id=self._require_joined()), metadata=self._metadata, timeout=10
            )
        except Exception:  # the wait itself fails, or carries on, on its own
            return
        current = Round.from_proto(res.current_round) if res.HasField("current_round") else None
        on_waiting(waiting_of(waiting_for, awaited_round, current, res.quorum, res.waiting_reason, time.time()))

    def close(self, stay_joined: bool = False) -> None:
        """Ends the session. With ``stay_joined`` a heartbeat goes first, so the coordinator
        keeps counting this client as connected for its liveness timeout from now."""
        if self._closed:
            return
        try:
            if stay_joined and self.federation_id is not None:
                self.heartbeat()
        finally:
            self._closed = True
            if self._watch_call is not None:
                self._watch_call.cancel()
            self._channel.close()
            with self._cond:
                self._cond.notify_all()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- rounds --------------------------------------------------------------------------

    def current_round(self) -> Optional[Round]:
        """The latest round seen, if any."""
        with self._cond:
            return self._rounds[max(self._rounds)] if self._rounds else None

    def _wait(
        self,
        ready: Callable[[], Optional[T]],
        timeout: Optional[float],
        what: str,
        report: Optional[Callable[[], None]] = None,
        every: float = 5.0,
    ) -> T:
        """Waits until ``ready()`` gives something; calls ``report`` (outside the lock) after a
        second and then every ``every`` s while waiting."""
        deadline = None if timeout is None else time.monotonic() + timeout
        next_report = time.monotonic() + min(1.0, every)
        while True:
            with self._cond:
                got = ready()
                if got is not None:
                    return got
                if self._watch_error is not None:
                    raise self._watch_error
                if self._closed:
                    raise TributaryError("CLOSED", "the client was closed")
                now = time.monotonic()
                left = None if deadline is None else deadline - now
                if left is not None and left <= 0:
                    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
                step = left if left is not None else 1.0
                if report is not None:
                    step = min(step, max(0.0, next_report - now))
                self._cond.wait(timeout=step)
                due = report is not None and time.monotonic() >= next_report and ready() is None
            if due and report is not None:
                report()
                next_report = time.monotonic() + every

    def next_round(
        self,
        timeout: Optional[float] = None,
        on_waiting: Optional[Callable[["Waiting"], None]] = None,
        waiting_every: float = 5.0,
    ) -> Round:
        """The next OPEN round whose cohort includes this client and that it has not
        submitted to (the current one if so). Raises ``TimeoutError`` after ``timeout`` s.
        ``on_waiting`` gets a ``Waiting`` report every ``waiting_every`` s while it waits
        (first after a second): why no round is open, or the open round's progress;
        ``tributary_client.describe_waiting`` words it."""
        self._require_joined()

        def ready() -> Optional[Round]:
            for n in sorted(self._rounds):
                r = self._rounds[n]
                # An empty cohort (buffered rounds) is open to every enrolled client.
                if r.state == "open" and (not r.cohort or self.client_id in r.cohort) and n not in self._submitted:
                    return r
            return None

        report = None if on_waiting is None else (lambda: self._report_waiting(on_waiting, "round", None))
        return self._wait(ready, timeout, "an open round with this client in its cohort", report, waiting_every)

    # -- uploads -------------------------------------------------------------------------

    def submit(
        self,
        round_number: int,
        adapter_dir: Union[str, AdapterFiles],
        *,
        samples: Optional[int] = None,
        metrics: Optional[Mapping[str, float]] = None,
        update_id: Optional[str] = None,
        on_progress: Optional[Callable[[int, int], None]] = None,
        local_dp: Optional["LocalDp"] = None,
    ) -> Ack:
        """Uploads an update for ``round_number`` in 1 MiB chunks; returns once the coordinator
        has durably stored it. A dropped connection is retried, resuming from the bytes the
        coordinator already holds (``GetUploadStatus``), under the same update id.

        ``samples`` (training samples behind the update) is required when the federation
        weights updates by sample counts (``JoinInfo.weights_by_samples``: FedAvg, FedIT, the
        geometric median; ``TributaryError`` ``SAMPLES_REQUIRED`` otherwise); with other
        methods a missing count is sent as 0, as the TypeScript SDK does.
        ``on_progress(sent, total)`` is called as the bytes go out. ``local_dp`` (a
        ``LocalDp``) clips the update and adds Gaussian noise before it leaves this machine
        (``local_dp.py``; fresh noise each call, so a repeated submit is a new update)."""
        federation_id = self._require_joined()
        if samples is None and self._weights_by_samples:
            raise TributaryError(
                "SAMPLES_REQUIRED",
                f'federation "{federation_id}" weights updates by their training sample counts: '
                "pass submit(round, adapter, samples=N)",
            )
        adapter = read_adapter(adapter_dir) if isinstance(adapter_dir, str) else adapter_dir
        dp_report = None
        if local_dp is not None:
            # Local DP: only the clipped, noised update leaves this machine.
            from .local_dp import privatize_adapter

            adapter, dp_report = privatize_adapter(adapter, local_dp)
        data = adapter.safetensors
        content_hash = sha256_hex(data)
        uid = update_id or default_update_id(round_number, content_hash, adapter.config_json)
        problem = id_problem("update_id", uid)
        if problem is not None:
            raise InvalidUpdateError("INVALID_ARGUMENT", problem)
        state = {"attempts": 0, "resumed_from": None}

        def attempt(n: int) -> client_pb2.SubmitUpdateResponse:
            state["attempts"] = n
            offset = 0
            complete = False
            if n > 1:
                st = self._stub.GetUploadStatus(
                    client_pb2.GetUploadStatusRequest(federation_id=federation_id, round=round_number, update_id=uid),
                    metadata=self._metadata,
                )
                held = int(st.received_bytes)
                complete = st.complete
                # A complete upload is acknowledged again by resending its header alone.
                offset = len(data) if complete else (held if held <= len(data) else 0)
                if offset > 0:
                    state["resumed_from"] = offset
            header = client_pb2.UpdateHeader(
                federation_id=federation_id,
                round=round_number,
                client_id=self.client_id or "",
                update_id=uid,
                sample_count=max(0, int(round(samples or 0))),
                metrics=dict(metrics or {}),
                content_hash=content_hash,
                total_size=len(data),
                adapter_config_json=adapter.config_json,
                resume_offset=0 if complete else offset,
            )

            def requests() -> Iterator[client_pb2.SubmitUpdateRequest]:
                yield client_pb2.SubmitUpdateRequest(header=header)
                for pos in range(offset, len(data), CHUNK_BYTES):
                    yield client_pb2.SubmitUpdateRequest(chunk=data[pos : pos + CHUNK_BYTES])
                    if on_progress is not None:
                        on_progress(min(len(data), pos + CHUNK_BYTES), len(data))

            return self._stub.SubmitUpdate(requests(), metadata=self._metadata)

        res = self._call(f"submit round {round_number}", attempt)
        with self._cond:
            self._submitted.add(round_number)
            # Buffered rounds fold an update in the round open when it arrived.
            self._submitted.add(res.round)
            self._rank = adapter_rank(adapter.config_json) or self._rank
        return Ack(
            res.update_id,
            res.round,
            res.duplicate,
            res.content_hash,
            int(res.size),
            state["attempts"],
            state["resumed_from"],
            dp_report,
        )

    # -- results -------------------------------------------------------------------------

    def global_adapter(
        self,
        out_dir: str,
        round: Optional[int] = None,
        on_download: Optional[Callable[[int, int], None]] = None,
        rank: Optional[int] = None,
    ) -> Result:
        """Writes the merged adapter of the latest PUBLISHED round (or of ``round``) to
        ``out_dir``. Downloads resume after dropped connections; the bytes must hash to the
        announced content hash (``IntegrityError`` otherwise). ``on_download(received, total)``
        is called as the bytes arrive.

        ``rank``: where clients train at different ranks, the coordinator also keeps the merged
        adapter truncated exactly to each smaller client rank (FlexLoRA); this receives that
        variant. Default: the rank of the last adapter this client submitted; 0 = the whole
        merged adapter. A rank without a variant raises ``NotFoundError``
        (``RANK_VARIANT_NOT_FOUND``) naming the ranks there are."""
        federation_id = self._require_joined()
        parts: List[bytes] = []
        head: Dict[str, object] = {}
        want_rank = self._rank if rank is None else rank

        def attempt(_: int) -> None:
            have = sum(len(p) for p in parts)
            req = client_pb2.FetchAdapterRequest(federation_id=federation_id, offset=have)
            if "content_hash" in head:
                req.content_hash = str(head["content_hash"])
            else:
                if round is not None:
                    req.round = round
                if want_rank:
                    req.rank = want_rank
            for msg in self._stub.FetchAdapter(req, metadata=self._metadata):
                kind = msg.WhichOneof("payload")
                if kind == "header":
                    h = msg.header
                    if "content_hash" in head and head["content_hash"] != h.content_hash:
                        raise TributaryError("INTERNAL", f"resumed download switched to adapter {h.content_hash}")
                    head.update(
                        round=h.round, content_hash=h.content_hash, size=int(h.size), config=h.adapter_config_json
                    )
                elif kind == "chunk":
                    parts.append(msg.chunk)
                    if on_download is not None:
                        on_download(sum(len(p) for p in parts), int(head.get("size", 0)))

        self._call("fetch adapter", attempt)
        if "content_hash" not in head:
            raise TributaryError("INTERNAL", "FetchAdapter ended without a header")
        data = b"".join(parts)
        if len(data) != head["size"]:
            raise TributaryError("INTERNAL", f"received {len(data)} of {head['size']} bytes")
        actual = sha256_hex(data)
        if actual != head["content_hash"]:
            raise IntegrityError(
                f"round {head['round']}: the adapter's {len(data)} bytes have sha256 {actual}, "
                f"expected {head['content_hash']}",
                str(head["content_hash"]),
                actual,
            )
        adapter = AdapterFiles(str(head["config"]), data)
        write_adapter(out_dir, adapter)
        known = self._rounds.get(int(head["round"]))  # type: ignore[arg-type]
        variant = None if known is None else next((r for r, h in known.rank_variants.items() if h == actual), None)
        return Result(int(head["round"]), actual, out_dir, "grpc", adapter, variant)  # type: ignore[arg-type]

    def wait_for_result(
        self,
        round_number: int,
        out_dir: str,
        timeout: Optional[float] = None,
        on_waiting: Optional[Callable[["Waiting"], None]] = None,
        waiting_every: float = 5.0,
        on_download: Optional[Callable[[int, int], None]] = None,
        rank: Optional[int] = None,
    ) -> Result:
        """Waits for ``round_number`` to be PUBLISHED and writes its merged adapter to
        ``out_dir``. Raises ``RoundFailedError`` when it fails or is aborted, ``TimeoutError``
        after ``timeout`` s. ``on_waiting`` as for ``next_round``; ``on_download(received,
        total)`` as the adapter's bytes arrive; ``rank`` as for ``global_adapter`` (default:
        this client's own rank)."""
        self._require_joined()

        def ended() -> Optional[Round]:
            r = self._rounds.get(round_number)
            if r is not None and r.state in _TERMINAL:
                return r
            if any(n > round_number for n in self._rounds):
                return Round(self.federation_id or "", round_number, "unknown", [], 0, "", "")
            return None

        report = None if on_waiting is None else (lambda: self._report_waiting(on_waiting, "result", round_number))
        r = self._wait(ended, timeout, f"round {round_number} to end", report, waiting_every)
        if r.state in ("failed", "aborted"):
            raise RoundFailedError(round_number, r.state, r.failure_reason)
        try:
            return self.global_adapter(out_dir, round=round_number, on_download=on_download, rank=rank)
        except NotFoundError as err:
            if err.reason == "RANK_VARIANT_NOT_FOUND":
                raise
            raise RoundFailedError(round_number, "unknown", "ended without a result") from err


def connect(
    coordinator: str,
    token: str,
    *,
    nats: Optional[Union[str, Sequence[str]]] = None,
    tls_ca: Optional[str] = None,
    tls_cert: Optional[str] = None,
    tls_key: Optional[str] = None,
    retries: int = 5,
) -> Client:
    """Creates a client for the coordinator at ``host:port`` (several coordinators sharing
    one store: ``ip:port,ip:port``; the client moves to the next when one dies) with this
    client's token;
    ``tls_ca`` (a PEM file) connects over TLS trusting that CA; ``tls_cert`` / ``tls_key``
    (PEM files) present a client certificate to a coordinator that requires mutual TLS
    (the token may then be ``""``: the certificate names the client). Nothing is sent yet.

    >>> with connect("127.0.0.1:7070", token) as client:  # doctest: +SKIP
    ...     client.join("support-bot")
    """
    return Client(coordinator, token, nats=nats, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key, retries=retries)
