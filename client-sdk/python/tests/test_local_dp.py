import json
import struct
import unittest

import numpy as np

from tributary_client.adapter import AdapterFiles
from tributary_client.local_dp import LocalDp, local_epsilon, privatize_adapter
from tributary_client.privacy import epsilon_of

A = "base_model.model.layers.0.q_proj.lora_A.weight"
B = "base_model.model.layers.0.q_proj.lora_B.weight"


def safetensors(tensors):
    header, blobs, at = {}, [], 0
    for name, dtype, values in tensors:
        raw = np.asarray(values, dtype="<f4").tobytes() if dtype == "F32" else (
            (np.asarray(values, dtype=np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        )
        header[name] = {"dtype": dtype, "shape": [len(values)], "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    text = json.dumps(header)
    text += " " * ((8 - (8 + len(text)) % 8) % 8)
    return struct.pack("<Q", len(text)) + text.encode() + b"".join(blobs)


def tensors_of(data):
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, info in header.items():
        a, b = (8 + n + o for o in info["data_offsets"])
        raw = data[a:b]
        out[name] = (
            np.frombuffer(raw, dtype="<f4").astype(np.float64)
            if info["dtype"] == "F32"
            else (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        )
    return out


def adapter(n, dtype_b="F32"):
    a = [np.sin(i) * 0.5 for i in range(n)]
    b = [np.cos(i) * 0.25 for i in range(n)]
    return AdapterFiles("{}", safetensors([(A, "F32", a), (B, dtype_b, b)]))


class LocalDpTest(unittest.TestCase):
    """The same checks as the TypeScript SDK's local-dp.test.ts."""

    def test_clips_as_one_vector_exactly_keeping_the_header(self):
        ad = adapter(64)
        before = tensors_of(ad.safetensors)
        norm = float(np.sqrt(sum(float(np.dot(v, v)) for v in before.values())))
        out, report = privatize_adapter(ad, LocalDp(1.0, 0.0))
        self.assertAlmostEqual(report.norm, norm, places=9)
        self.assertTrue(report.clipped)
        for name, v in tensors_of(out.safetensors).items():
            np.testing.assert_array_equal(v, (before[name] * (1 / norm)).astype(np.float32).astype(np.float64))
        (n,) = struct.unpack("<Q", ad.safetensors[:8])
        self.assertEqual(out.safetensors[: 8 + n], ad.safetensors[: 8 + n])
        same, small = privatize_adapter(ad, LocalDp(1e6, 0.0))
        self.assertEqual(same.safetensors, ad.safetensors)
        self.assertFalse(small.clipped)

    def test_noise_has_standard_deviation_z_c(self):
        ad = adapter(40000, "BF16")
        out, report = privatize_adapter(ad, LocalDp(1e6, 1e-6), key=b"\x07" * 32)
        self.assertAlmostEqual(report.sigma, 1.0)
        d = tensors_of(out.safetensors)[A] - tensors_of(ad.safetensors)[A]
        self.assertLess(abs(d.mean()), 0.02)
        self.assertLess(abs(d.std() - 1), 0.02)
        again, _ = privatize_adapter(ad, LocalDp(1e6, 1e-6))
        third, _ = privatize_adapter(ad, LocalDp(1e6, 1e-6))
        self.assertNotEqual(again.safetensors, third.safetensors)
        with self.assertRaises(ValueError):
            privatize_adapter(ad, LocalDp(0, 1))

    def test_epsilon_is_the_accountant_at_sampling_rate_one(self):
        self.assertEqual(local_epsilon([], 1e-5), 0)
        self.assertEqual(local_epsilon([(1.5, 10)], 1e-5), epsilon_of(1, 1.5, 10, 1e-5))
        mixed = local_epsilon([(1.5, 10), (3, 5)], 1e-5)
        self.assertTrue(local_epsilon([(1.5, 10)], 1e-5) < mixed < local_epsilon([(1.5, 10)], 1e-5) + local_epsilon([(3, 5)], 1e-5))


if __name__ == "__main__":
    unittest.main()
