"""Local differential privacy, for nodes that trust no server, as the TypeScript SDK does it
(``client-sdk/src/local-dp.ts``): before upload, every value the adapter releases (every
tensor of ``adapter_model.safetensors``) is clipped as one vector to L2 norm ``clip_norm``
and given Gaussian noise of standard deviation ``noise_multiplier * clip_norm`` from a secret
key (SHAKE-256 of the key and the tensor's name, a cryptographic stream), then written back
in its own dtype under the same header. Each such update is one Gaussian mechanism of
multiplier ``noise_multiplier``; ``local_epsilon`` composes them with the same accountant.
Needs numpy (``python3-numpy``)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

from .adapter import AdapterFiles
from .privacy import composed_rdp, privacy_spent


@dataclass(frozen=True)
class LocalDp:
    """What local DP applies to an update."""

    clip_norm: float
    noise_multiplier: float


@dataclass(frozen=True)
class LocalDpReport:
    """What local DP did to one update: its norm before clipping, whether it was clipped,
    and the noise's standard deviation."""

    norm: float
    clipped: bool
    sigma: float


def _numpy():
    try:
        import numpy as np
    except ImportError as err:  # pragma: no cover - numpy is a Debian package away
        raise RuntimeError("local DP needs numpy: apt-get install python3-numpy (or pip install numpy)") from err
    return np


def _decode(np, raw: bytes, dtype: str):
    if dtype == "F32":
        return np.frombuffer(raw, dtype="<f4").astype(np.float64)
    if dtype == "F16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float64)
    if dtype == "BF16":
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    raise ValueError(f"local DP: dtype {dtype}, expected F32, F16 or BF16")


def _encode(np, values, dtype: str) -> bytes:
    if dtype == "F32":
        return values.astype("<f4").tobytes()
    if dtype == "F16":
        return values.astype("<f2").tobytes()
    # BF16: round to nearest, ties to even, from the float32 bits.
    bits = values.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(values)
    rounded[nan] = 0x7FC0
    return rounded.astype("<u2").tobytes()


def _gaussian(np, key: bytes, label: str, count: int, std: float):
    stream = hashlib.shake_256(key + b"\x00" + label.encode("utf-8")).digest(8 * ((count + 1) // 2))
    words = np.frombuffer(stream, dtype="<u4").astype(np.float64)
    u1 = (words[0::2] + 1) / 4294967296.0
    u2 = words[1::2] / 4294967296.0
    r = std * np.sqrt(-2 * np.log(u1))
    out = np.empty(2 * len(u1))
    out[0::2] = r * np.cos(2 * np.pi * u2)
    out[1::2] = r * np.sin(2 * np.pi * u2)
    return out[:count]


def privatize_adapter(
    adapter: AdapterFiles, dp: LocalDp, key: Optional[bytes] = None
) -> Tuple[AdapterFiles, LocalDpReport]:
    """``adapter`` with local DP applied; ``key`` is the noise's secret (32 fresh random bytes
    by default; pass one only to reproduce a test)."""
    if not dp.clip_norm > 0:
        raise ValueError(f"local DP: clip_norm must be > 0, got {dp.clip_norm}")
    if not dp.noise_multiplier >= 0:
        raise ValueError(f"local DP: noise_multiplier must be >= 0, got {dp.noise_multiplier}")
    np = _numpy()
    key = os.urandom(32) if key is None else key
    data = adapter.safetensors
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    tensors: Dict[str, Tuple[str, int, int]] = {
        name: (info["dtype"], base + info["data_offsets"][0], base + info["data_offsets"][1])
        for name, info in header.items()
        if name != "__metadata__"
    }
    values = {name: _decode(np, data[a:b], dtype) for name, (dtype, a, b) in tensors.items()}
    norm = float(np.sqrt(sum(float(np.dot(v, v)) for v in values.values())))
    factor = dp.clip_norm / norm if norm > dp.clip_norm else 1.0
    sigma = dp.noise_multiplier * dp.clip_norm
    out = bytearray(data)
    for name, (dtype, a, b) in tensors.items():
        v = values[name] * factor
        if sigma > 0:
            v = v + _gaussian(np, key, name, len(v), sigma)
        out[a:b] = _encode(np, v, dtype)
    return AdapterFiles(adapter.config_json, bytes(out)), LocalDpReport(norm, factor < 1, sigma)


def local_epsilon(history: Sequence[Tuple[float, int]], delta: float) -> float:
    """The ε a node has spent at ``delta`` after its local-DP updates: ``history`` lists
    ``(noise_multiplier, updates)`` (sampling rate 1: every update is released)."""
    steps = [(1.0, z, count) for z, count in history if count > 0]
    if not steps:
        return 0.0
    return privacy_spent(composed_rdp(steps), delta)[0]
