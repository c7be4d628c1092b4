"""Decoding the machine-readable error details of a failed call.

The coordinator sends a ``google.rpc.Status`` in the ``grpc-status-details-bin``
trailer whose ``details`` hold a ``google.rpc.ErrorInfo`` (``reason`` from
``tributary.v1.ErrorReason``, domain ``tributary.dev``, string ``metadata``)
and, for bad input, a ``google.rpc.BadRequest``. The three messages are small
and fixed, so they are decoded here from the protobuf wire format directly:
no googleapis package is needed (Debian has none), and nothing is registered
in protobuf's default descriptor pool that could clash with one.

Field numbers: ``Status{code=1 int32, message=2 string, details=3 repeated Any}``,
``Any{type_url=1, value=2}``, ``ErrorInfo{reason=1, domain=2, metadata=3 map}``,
``BadRequest{field_violations=1}``, ``FieldViolation{field=1, description=2}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

#: The trailer that carries the encoded ``google.rpc.Status``.
STATUS_DETAILS_KEY = "grpc-status-details-bin"
#: ``ErrorInfo.domain`` of every Tributary error.
ERROR_DOMAIN = "tributary.dev"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"


@dataclass(frozen=True)
class FieldViolation:
    """One ``google.rpc.BadRequest.FieldViolation``: the field or tensor at fault."""

    field: str
    description: str


@dataclass(frozen=True)
class StatusDetails:
    """The decoded ``google.rpc.Status`` of a failed call."""

    code: int = 0
    message: str = ""
    reason: Optional[str] = None
    domain: Optional[str] = None
    metadata: Dict[str, str] = field(default_factory=dict)
    field_violations: List[FieldViolation] = field(default_factory=list)


def _varint(buf: bytes, i: int) -> Tuple[int, int]:
    shift = 0
    result = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes) -> Iterator[Tuple[int, int, object]]:
    """Yields ``(field number, wire type, value)``: an int for varints, bytes for length-delimited fields."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, wire, value
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field")
            yield number, wire, buf[i : i + n]
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _text(v: object) -> str:
    return bytes(v).decode("utf-8")  # type: ignore[arg-type]


def decode_status(data: bytes) -> StatusDetails:
    """Decodes the ``grpc-status-details-bin`` trailer (other detail types are ignored).

    Raises ``ValueError`` when ``data`` is not a protobuf message.
    """
    code, message = 0, ""
    reason = domain = None
    metadata: Dict[str, str] = {}
    violations: List[FieldViolation] = []
    for number, wire, value in _fields(data):
        if number == 1 and wire == 0:
            code = int(value)  # type: ignore[arg-type]
        elif number == 2 and wire == 2:
            message = _text(value)
        elif number == 3 and wire == 2:
            type_url, payload = "", b""
            for n, w, v in _fields(value):  # type: ignore[arg-type]
                if n == 1 and w == 2:
                    type_url = _text(v)
                elif n == 2 and w == 2:
                    payload = bytes(v)  # type: ignore[arg-type]
            if type_url == ERROR_INFO_TYPE and reason is None:
                reason, domain = "", ""
                for n, w, v in _fields(payload):
                    if w != 2:
                        continue
                    if n == 1:
                        reason = _text(v)
                    elif n == 2:
                        domain = _text(v)
                    elif n == 3:
                        key = val = ""
                        for nn, ww, vv in _fields(v):  # type: ignore[arg-type]
                            if ww == 2 and nn == 1:
                                key = _text(vv)
                            elif ww == 2 and nn == 2:
                                val = _text(vv)
                        metadata[key] = val
            elif type_url == BAD_REQUEST_TYPE:
                for n, w, v in _fields(payload):
                    if n != 1 or w != 2:
                        continue
                    f = d = ""
                    for nn, ww, vv in _fields(v):  # type: ignore[arg-type]
                        if ww == 2 and nn == 1:
                            f = _text(vv)
                        elif ww == 2 and nn == 2:
                            d = _text(vv)
                    violations.append(FieldViolation(f, d))
    return StatusDetails(code, message, reason, domain, metadata, violations)


def status_details_of(err: object) -> Optional[StatusDetails]:
    """The details of a ``grpc.RpcError``, or ``None`` when it carries none."""
    trailing = getattr(err, "trailing_metadata", None)
    if trailing is None:
        return None
    try:
        items = trailing() or ()
    except Exception:  # noqa: BLE001 - not a call error
        return None
    for key, value in items:
        if key == STATUS_DETAILS_KEY:
            try:
                return decode_status(value if isinstance(value, bytes) else value.encode("latin-1"))
            except ValueError:
                return None
    return None
