"""Test helpers: protobuf wire encoding of google.rpc.Status, tiny PEFT adapters, fake RpcErrors."""

from __future__ import annotations

import json
import struct
from typing import Dict, List, Optional, Sequence, Tuple

import grpc


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def ld(number: int, payload: bytes) -> bytes:
    return varint((number << 3) | 2) + varint(len(payload)) + payload


def status_bytes(
    code: int,
    message: str,
    reason: Optional[str] = None,
    metadata: Optional[Dict[str, str]] = None,
    violations: Sequence[Tuple[str, str]] = (),
    extra_any: bool = False,
) -> bytes:
    out = varint(1 << 3) + varint(code) + ld(2, message.encode())
    if extra_any:
        out += ld(3, ld(1, b"type.googleapis.com/google.rpc.RetryInfo") + ld(2, b"\x0a\x02\x08\x01"))
    if reason is not None:
        info = ld(1, reason.encode()) + ld(2, b"tributary.dev")
        for k, v in (metadata or {}).items():
            info += ld(3, ld(1, k.encode()) + ld(2, v.encode()))
        out += ld(3, ld(1, b"type.googleapis.com/google.rpc.ErrorInfo") + ld(2, info))
    if violations:
        bad = b"".join(ld(1, ld(1, f.encode()) + ld(2, d.encode())) for f, d in violations)
        out += ld(3, ld(1, b"type.googleapis.com/google.rpc.BadRequest") + ld(2, bad))
    return out


class FakeRpcError(grpc.RpcError):
    """A grpc.RpcError as a failed call raises it."""

    def __init__(self, code: grpc.StatusCode, details: str, status: Optional[bytes] = None):
        super().__init__(details)
        self._code, self._details, self._status = code, details, status

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return (("grpc-status-details-bin", self._status),) if self._status is not None else ()


def safetensors(tensors: Dict[str, Tuple[str, List[int]]]) -> bytes:
    """A safetensors file of zero-filled tensors ``name -> (dtype, shape)``."""
    sizes = {"F32": 4, "F16": 2, "BF16": 2}
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(offset)
