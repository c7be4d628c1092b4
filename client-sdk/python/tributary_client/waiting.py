"""What a client is waiting on, reported every few seconds while ``next_round`` or
``wait_for_result`` waits (their ``on_waiting`` callback): the latest round, its updates
against the quorum, how many of its cohort have yet to submit, the time left to its
deadline, and, when no round is open, why not, as the coordinator says it
(``HeartbeatResponse.waiting_reason``). The same reports as the TypeScript SDK's."""

from dataclasses import dataclass
from typing import Optional

from .client import Round


@dataclass(frozen=True)
class Waiting:
    """One report of ``on_waiting``."""

    #: ``"round"`` (a round this client can submit to) or ``"result"`` (a round's merged adapter).
    waiting_for: str
    #: Accepted updates that close a round (the federation's quorum).
    quorum: int
    #: The round a result is awaited for (``waiting_for == "result"``).
    awaited_round: Optional[int] = None
    #: The latest round, if one was ever started.
    round: Optional[Round] = None
    #: Clients of the open round's cohort that have not submitted yet.
    awaiting: Optional[int] = None
    #: Seconds left to the open round's deadline.
    deadline_in: Optional[float] = None
    #: Why no round is open, when none is.
    reason: Optional[str] = None


def waiting_of(waiting_for: str, awaited_round: Optional[int], round_: Optional[Round], quorum: int,
               reason: str, now: float) -> Waiting:
    """A report from a heartbeat's answer at ``now`` (epoch seconds)."""
    is_open = round_ is not None and round_.state == "open"
    return Waiting(
        waiting_for=waiting_for,
        quorum=quorum,
        awaited_round=awaited_round,
        round=round_,
        awaiting=max(0, len(round_.cohort) - round_.accepted_updates) if is_open else None,
        deadline_in=max(0.0, round_.deadline - now) if is_open and round_.deadline is not None else None,
        reason=reason or None,
    )


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m{s % 60:02d}s"
    return f"{m // 60}h{m % 60:02d}m"


def describe_waiting(w: Waiting) -> str:
    """One line for a person, worded as the TypeScript SDK's ``describeWaiting``."""
    head = "waiting for a round" if w.waiting_for == "round" else f"waiting for round {w.awaited_round}'s merged adapter"
    r = w.round
    if r is None or r.state != "open":
        if r is not None and r.state == "merging":
            return f"{head}: round {r.number} is merging {r.accepted_updates} update(s)"
        return f"{head}: no round open: {w.reason}" if w.reason else f"{head}: no round open"
    parts = [f"{r.accepted_updates}/{w.quorum} updates (quorum {w.quorum})"]
    if w.awaiting is not None:
        parts.append(f"{w.awaiting} of {len(r.cohort)} clients still to submit")
    if w.deadline_in is not None:
        parts.append(f"{_duration(w.deadline_in)} to the deadline")
    return f"{head}: round {r.number} is open: {', '.join(parts)}"
