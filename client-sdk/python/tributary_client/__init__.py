"""Tributary client for Python trainers (PEFT, transformers, TRL).

Take part in a federated LoRA fine-tuning federation with a few lines in the
training loop. Pure Python over ``grpcio`` and ``protobuf``::

    import tributary_client

    with tributary_client.connect("coordinator:7070", token) as client:
        client.join("support-bot")
        for _ in range(10):
            r = client.next_round()
            model.save_pretrained("adapter")            # after local training
            client.submit(r.number, "adapter", samples=len(train_set))
            client.wait_for_result(r.number, "global")  # merged PEFT adapter, sha256-checked

or hand a training function to :func:`run_federated`, or add
:class:`TributaryCallback` to a ``transformers.Trainer``. ``python -m
tributary_client`` is the command line.
"""

from ._status import FieldViolation, StatusDetails, decode_status, status_details_of
from .adapter import (
    AdapterFiles,
    AdapterSchema,
    ModuleShape,
    adapter_rank,
    adapter_schema,
    read_adapter,
    sha256_hex,
    write_adapter,
)
from .callback import TributaryCallback, load_merged_adapter
from .client import CHUNK_BYTES, Ack, Client, JoinInfo, Result, Round, connect, default_update_id
from .local_dp import LocalDp, LocalDpReport, local_epsilon, privatize_adapter
from .waiting import Waiting, describe_waiting
from .errors import (
    AuthenticationError,
    ConflictingUpdateError,
    IntegrityError,
    InternalError,
    InvalidUpdateError,
    NotFoundError,
    NotInCohortError,
    PermissionDeniedError,
    PreconditionError,
    QuotaExceededError,
    RoundFailedError,
    StaleRoundError,
    TributaryError,
    UnavailableError,
    UpdateTooLargeError,
    from_rpc_error,
    is_transient,
)
from .federated import RoundOutcome, TrainResult, run_buffered, run_federated
from .ids import ID_RULES, id_problem, is_valid_id

__version__ = "0.1.0"

__all__ = [
    "LocalDp",
    "LocalDpReport",
    "local_epsilon",
    "privatize_adapter",
    "Waiting",
    "describe_waiting",
    "CHUNK_BYTES",
    "Ack",
    "AdapterFiles",
    "AdapterSchema",
    "AuthenticationError",
    "Client",
    "ConflictingUpdateError",
    "FieldViolation",
    "ID_RULES",
    "IntegrityError",
    "InternalError",
    "InvalidUpdateError",
    "JoinInfo",
    "ModuleShape",
    "NotFoundError",
    "NotInCohortError",
    "PermissionDeniedError",
    "PreconditionError",
    "QuotaExceededError",
    "Result",
    "Round",
    "RoundFailedError",
    "RoundOutcome",
    "StaleRoundError",
    "StatusDetails",
    "TrainResult",
    "TributaryCallback",
    "TributaryError",
    "UnavailableError",
    "UpdateTooLargeError",
    "adapter_schema",
    "connect",
    "decode_status",
    "default_update_id",
    "from_rpc_error",
    "id_problem",
    "is_transient",
    "is_valid_id",
    "load_merged_adapter",
    "read_adapter",
    "adapter_rank",
    "run_federated",
    "run_buffered",
    "sha256_hex",
    "status_details_of",
    "write_adapter",
]
