"""PEFT adapter directories (``adapter_config.json`` + ``adapter_model.safetensors``,
as ``model.save_pretrained()`` writes them): reading, writing atomically, the
SHA-256 content hash, and the module shapes a ``join`` declares."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass
from typing import Dict, List, Optional

CONFIG_FILE = "adapter_config.json"
SAFETENSORS_FILE = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."
_LORA = re.compile(r"^(.+)\.lora_([AB])(?:\.([^.]+))?\.weight$")


@dataclass(frozen=True)
class AdapterFiles:
    """An adapter in memory: the ``adapter_config.json`` text and the safetensors bytes."""

    config_json: str
    safetensors: bytes

    @property
    def content_hash(self) -> str:
        """SHA-256 of the safetensors bytes, 64 lower-case hex digits (the protocol's one hash form)."""
        return sha256_hex(self.safetensors)


@dataclass(frozen=True)
class ModuleShape:
    """One LoRA module as ``join`` declares it (name without ``base_model.model.``)."""

    name: str
    d_in: int
    d_out: int
    max_rank: int


@dataclass(frozen=True)
class AdapterSchema:
    """What an adapter looks like: base model, modules, dtype (``"F32"``, ``"F16"``, ``"BF16"``)."""

    base_model_id: Optional[str]
    modules: List[ModuleShape]
    dtype: Optional[str]


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def read_adapter(directory: str) -> AdapterFiles:
    """Reads a PEFT adapter directory."""
    with open(os.path.join(directory, CONFIG_FILE), "r", encoding="utf-8") as f:
        config_json = f.read()
    with open(os.path.join(directory, SAFETENSORS_FILE), "rb") as f:
        safetensors = f.read()
    return AdapterFiles(config_json, safetensors)


def _write_atomically(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_adapter(directory: str, adapter: AdapterFiles) -> None:
    """Writes a PEFT adapter directory, each file atomically (a reader never sees half a file)."""
    os.makedirs(directory, exist_ok=True)
    _write_atomically(os.path.join(directory, SAFETENSORS_FILE), adapter.safetensors)
    _write_atomically(os.path.join(directory, CONFIG_FILE), adapter.config_json.encode("utf-8"))


def adapter_schema(adapter: AdapterFiles) -> AdapterSchema:
    """The schema of an adapter from its config and safetensors header (``lora_A`` is
    ``[r, in]``, ``lora_B`` is ``[out, r]``). Raises ``ValueError`` naming the problem."""
    data = adapter.safetensors
    if len(data) < 8:
        raise ValueError(f"{SAFETENSORS_FILE}: {len(data)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{SAFETENSORS_FILE}: header length {n} runs past the end of the file")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
        config = json.loads(adapter.config_json)
    except ValueError as err:
        raise ValueError(f"adapter: unreadable JSON: {err}") from err
    modules: Dict[str, Dict[str, int]] = {}
    dtype: Optional[str] = None
    for key, info in header.items():
        m = _LORA.match(key)
        if key == "__metadata__" or m is None or not key.startswith(PEFT_PREFIX):
            continue
        shape = info.get("shape") if isinstance(info, dict) else None
        if not isinstance(shape, list) or len(shape) != 2:
            continue
        dtype = dtype or info.get("dtype")
        entry = modules.setdefault(m.group(1)[len(PEFT_PREFIX) :], {})
        if m.group(2) == "A":
            entry.update(rank=shape[0], d_in=shape[1])
        else:
            entry["d_out"] = shape[0]
    if not modules:
        raise ValueError("adapter: no base_model.model.<module>.lora_A/lora_B tensors")
    shapes = []
    for name in sorted(modules):
        e = modules[name]
        if not {"rank", "d_in", "d_out"} <= e.keys():
            raise ValueError(f"adapter: module {name} lacks its lora_A or lora_B tensor")
        shapes.append(ModuleShape(name, e["d_in"], e["d_out"], e["rank"]))
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    return AdapterSchema(base if isinstance(base, str) else None, shapes, dtype if dtype in ("F32", "F16", "BF16") else None)


def adapter_rank(config_json: str) -> Optional[int]:
    """The rank an adapter trains at, from its ``adapter_config.json``: its ``r``, or the
    largest of ``r`` and its ``rank_pattern`` values; ``None`` when the config does not say."""
    try:
        config = json.loads(config_json)
    except ValueError:
        return None
    if not isinstance(config, dict):
        return None
    pattern = config.get("rank_pattern")
    values = [config.get("r")] + (list(pattern.values()) if isinstance(pattern, dict) else [])
    ranks = [v for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0]
    return max(ranks) if ranks else None
