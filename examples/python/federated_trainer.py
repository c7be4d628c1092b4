#!/usr/bin/env python3
"""A training node in Python: LoRA fine-tuning of a frozen linear "base model" on
private data, round after round, through ``tributary_client.run_federated``.

It reads the federation's adapter schema at join time and, for every module
listed there, trains LoRA factors ``A`` (``[r, d_in]``) and ``B`` (``[d_out, r]``)
on a synthetic regression task of its own (the node's data never leaves it),
writes them as a PEFT adapter directory, and starts each round from the merged
adapter it receives. With PEFT and transformers, the same loop is
``model.save_pretrained(dir)`` after ``trainer.train()`` — or the
``TributaryCallback`` (see client-sdk/python/README.md).

  PYTHONPATH=client-sdk/python python3 examples/python/federated_trainer.py \\
      --coordinator 127.0.0.1:7070 --token-file node.token --federation support-bot --rounds 5

Needs numpy (Debian: python3-numpy) and the client's grpcio + protobuf.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

import tributary_client as tc


def write_peft(directory, tensors, config):
    """Writes ``adapter_model.safetensors`` (F32) and ``adapter_config.json``."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    tc.write_adapter(directory, tc.AdapterFiles(json.dumps(config), struct.pack("<Q", len(text)) + text + b"".join(blobs)))


def read_peft(directory):
    """The LoRA factors (float64) and the LoRA scaling of a PEFT adapter directory."""
    adapter = tc.read_adapter(directory)
    (n,) = struct.unpack("<Q", adapter.safetensors[:8])
    header = json.loads(adapter.safetensors[8 : 8 + n])
    sizes = {"F32": ("<f4", 4), "F16": ("<f2", 2)}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = adapter.safetensors[8 + n + begin : 8 + n + end]
        if info["dtype"] == "BF16":
            values = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view("<f4")
        else:
            values = np.frombuffer(raw, sizes[info["dtype"]][0])
        tensors[name] = values.astype(np.float64).reshape(info["shape"])
    config = json.loads(adapter.config_json)
    return tensors, config["lora_alpha"] / config["r"]


class Node:
    """One node's private task: y = (W0 + ΔW_i) x for each module, ΔW_i its own shift."""

    def __init__(self, modules, base_model, rank, seed, samples):
        rng = np.random.default_rng(seed)
        shared = np.random.default_rng(12345)  # the frozen base and the task all nodes share
        self.modules, self.base_model, self.rank, self.samples = modules, base_model, rank, samples
        self.tasks = {}
        for m in modules:
            base = shared.normal(0, 1 / np.sqrt(m.d_in), (m.d_out, m.d_in))
            common = shared.normal(0, 0.3 / np.sqrt(m.d_in), (m.d_out, 2)) @ shared.normal(0, 1, (2, m.d_in))
            own = rng.normal(0, 0.1 / np.sqrt(m.d_in), (m.d_out, 1)) @ rng.normal(0, 1, (1, m.d_in))
            x = rng.normal(0, 1, (samples, m.d_in))
            self.tasks[m.name] = (base, x, x @ (base + common + own).T)

    def loss(self, factors, scaling):
        total = 0.0
        for m in self.modules:
            base, x, y = self.tasks[m.name]
            a, b = factors[m.name]
            total += float(np.mean((x @ (base + scaling * b @ a).T - y) ** 2))
        return total / len(self.modules)

    def train(self, factors, scaling, steps=200, lr=0.05):
        """Gradient descent on A and B (the base stays frozen)."""
        for m in self.modules:
            base, x, y = self.tasks[m.name]
            a, b = factors[m.name]
            for _ in range(steps):
                err = x @ (base + scaling * b @ a).T - y  # [n, d_out]
                grad_w = scaling * err.T @ x / len(x)  # d loss / d (B A), up to 2
                a, b = a - lr * b.T @ grad_w, b - lr * grad_w @ a.T
            factors[m.name] = (a, b)
        return factors


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--coordinator", default="127.0.0.1:7070")
    p.add_argument("--token-file", required=True)
    p.add_argument("--federation", required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--work-dir", default="federated-trainer")
    args = p.parse_args()
    token = open(args.token_file).read().strip()

    with tc.connect(args.coordinator, token) as client:
        info = client.join(args.federation)
        schema = info.federation.schema
        # Train at the federation's merge rank, so the merged adapter (written at that
        # rank) is where the next round starts from.
        max_rank = min(m.max_rank for m in schema.modules)
        rank = min(info.federation.merge.rank or max_rank, max_rank)
        modules = [tc.ModuleShape(m.name, m.d_in, m.d_out, rank) for m in schema.modules]
        node = Node(modules, schema.base_model_id, rank, args.seed, args.samples)
        rng = np.random.default_rng(args.seed)
        alpha = 2.0 * rank
        start = {m.name: (rng.normal(0, 1 / np.sqrt(m.d_in), (rank, m.d_in)), np.zeros((m.d_out, rank))) for m in modules}
        config = {
            "peft_type": "LORA",
            "base_model_name_or_path": schema.base_model_id,
            "r": rank,
            "lora_alpha": alpha,
            "target_modules": sorted({m.name.rsplit(".", 1)[-1] for m in modules}),
        }
        print(f"{info.client_id}: joined {args.federation}; {len(modules)} modules at rank {rank}", flush=True)

        def train(global_dir, r):
            if global_dir is None:
                factors, scaling = dict(start), alpha / rank
            else:
                tensors, scaling = read_peft(global_dir)
                factors = {
                    m.name: (
                        tensors[f"base_model.model.{m.name}.lora_A.weight"],
                        tensors[f"base_model.model.{m.name}.lora_B.weight"],
                    )
                    for m in modules
                }
            before = node.loss(factors, scaling)
            factors = node.train(factors, scaling)
            after = node.loss(factors, scaling)
            out = os.path.join(args.work_dir, f"round-{r.number}")
            tensors = {}
            for m in modules:
                a, b = factors[m.name]
                tensors[f"base_model.model.{m.name}.lora_A.weight"] = a
                # Written at this node's own scaling alpha / r.
                tensors[f"base_model.model.{m.name}.lora_B.weight"] = b * (scaling / (alpha / rank))
            write_peft(out, tensors, config)
            print(f"round {r.number}: local loss {before:.4f} -> {after:.4f}", flush=True)
            return tc.TrainResult(out, args.samples, {"loss": after})

        outcomes = tc.run_federated(client, train, args.rounds, work_dir=args.work_dir, timeout=300)
        for o in outcomes:
            if o.error is not None:
                print(f"round {o.round}: {o.error}", flush=True)
            else:
                tensors, scaling = read_peft(o.result.directory)
                merged = {
                    m.name: (
                        tensors[f"base_model.model.{m.name}.lora_A.weight"],
                        tensors[f"base_model.model.{m.name}.lora_B.weight"],
                    )
                    for m in modules
                }
                print(f"round {o.round}: merged adapter {o.result.content_hash[:12]}, loss on my data {node.loss(merged, scaling):.4f}", flush=True)
        return 0 if all(o.error is None for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
