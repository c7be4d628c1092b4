"""``run_federated``: the whole training-node loop in one call."""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

from .client import Ack, Client, Result, Round
from .errors import NotFoundError, PreconditionError, RoundFailedError, TributaryError


@dataclass(frozen=True)
class TrainResult:
    """What a training function returns: the PEFT directory it wrote, and its sample count."""

    adapter_dir: str
    samples: int
    metrics: Mapping[str, float] = field(default_factory=dict)


TrainReturn = Union[TrainResult, Tuple[str, int], Dict[str, object]]
TrainFn = Callable[..., TrainReturn]


@dataclass(frozen=True)
class RoundOutcome:
    """One round of ``run_federated``: the acknowledgement and merged result, or the error."""

    round: int
    ack: Optional[Ack] = None
    result: Optional[Result] = None
    error: Optional[TributaryError] = None


def _as_train_result(value: TrainReturn) -> TrainResult:
    if isinstance(value, TrainResult):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        return TrainResult(str(value[0]), int(value[1]))
    if isinstance(value, dict):
        return TrainResult(
            str(value["adapter_dir"]), int(value["samples"]), dict(value.get("metrics") or {})  # type: ignore[arg-type]
        )
    raise TypeError("train_fn must return TrainResult, (adapter_dir, samples) or {'adapter_dir', 'samples', 'metrics'}")


def run_federated(
    client: Client,
    train_fn: TrainFn,
    rounds: int,
    *,
    federation_id: Optional[str] = None,
    work_dir: str = "tributary-rounds",
    timeout: Optional[float] = None,
) -> List[RoundOutcome]:
    """Runs ``rounds`` rounds: wait for a round this client is selected for, call
    ``train_fn(global_dir, round)`` (``global_dir``: a PEFT directory holding the latest
    merged adapter, ``None`` before the first merge), submit what it wrote, wait for the
    merged adapter. A round that fails, is aborted or closes before the update got in is
    reported in its outcome's ``error`` and the loop goes on.

    In a federation that folds into the base (``RoundPolicy.fold_into_base``, FLoRA),
    ``global_dir`` is ``None`` (train fresh LoRA factors) and a ``train_fn`` taking a third
    argument receives every merged adapter so far, as PEFT directories in round order, to
    merge into the base weights first (PEFT: load each, ``merge_and_unload()``).

    >>> outcomes = run_federated(client, lambda init, r: (train(init), 1200), rounds=10)  # doctest: +SKIP
    """
    info = client.join(federation_id or client.federation_id or "")
    fold = info.federation.policy.fold_into_base
    wants_folded = len(inspect.signature(train_fn).parameters) >= 3
    outcomes: List[RoundOutcome] = []
    global_dir: Optional[str] = None
    folded: List[str] = []
    folded_up_to = 0
    for _ in range(rounds):
        r = client.next_round(timeout=timeout)
        if fold:
            # Every merged adapter before this round, in order (failed rounds have none).
            while folded_up_to < r.number - 1:
                folded_up_to += 1
                try:
                    out = os.path.join(work_dir, f"folded-round-{folded_up_to}")
                    folded.append(client.global_adapter(out, round=folded_up_to, rank=0).directory)
                except NotFoundError:
                    pass
            global_dir = None
        raw = train_fn(global_dir, r, list(folded)) if wants_folded else train_fn(global_dir, r)  # type: ignore[call-arg]
        trained = _as_train_result(raw)
        try:
            ack = client.submit(r.number, trained.adapter_dir, samples=trained.samples, metrics=trained.metrics)
            out = os.path.join(work_dir, f"global-round-{r.number}")
            # Folding clients take the round's whole merged delta into their base (rank 0).
            result = client.wait_for_result(r.number, out, timeout=timeout, **({"rank": 0} if fold else {}))
        except (RoundFailedError, PreconditionError) as err:
            outcomes.append(RoundOutcome(r.number, error=err))
            continue
        global_dir = result.directory
        outcomes.append(RoundOutcome(r.number, ack=ack, result=result))
    return outcomes


def run_buffered(
    client: Client,
    train_fn: TrainFn,
    updates: int,
    *,
    federation_id: Optional[str] = None,
    work_dir: str = "tributary-rounds",
    timeout: Optional[float] = None,
) -> List[RoundOutcome]:
    """The asynchronous loop of a federation with buffered rounds (FedBuff): ``updates``
    times, fetch the latest global adapter, call ``train_fn(global_dir, round)`` (``round``:
    the open round, which the update names as the version it starts from), submit, and start
    again at once without waiting for the merge. The coordinator folds each full buffer into
    the global adapter, weighing each update by its staleness; an update past the
    federation's max staleness is refused and reported in its outcome's ``error``.

    >>> outcomes = run_buffered(client, lambda init, r: (train(init), 300), updates=50)  # doctest: +SKIP
    """
    if federation_id is not None and client.federation_id is None:
        client.join(federation_id)
    outcomes: List[RoundOutcome] = []
    global_dir: Optional[str] = None
    for _ in range(updates):
        r = client.next_round(timeout=timeout)
        try:
            # The whole global adapter (rank 0), rewritten in place: each update trains from the latest.
            global_dir = client.global_adapter(os.path.join(work_dir, "global"), rank=0).directory
        except NotFoundError:
            pass  # nothing folded yet: train from scratch
        trained = _as_train_result(train_fn(global_dir, r))
        try:
            ack = client.submit(r.number, trained.adapter_dir, samples=trained.samples, metrics=trained.metrics)
        except PreconditionError as err:
            outcomes.append(RoundOutcome(r.number, error=err))
            continue
        outcomes.append(RoundOutcome(ack.round, ack=ack))
    return outcomes
