import json
import os
import tempfile
import unittest

from tests.helpers import safetensors
from tributary_client import AdapterFiles, ModuleShape, adapter_schema, read_adapter, sha256_hex, write_adapter
from tributary_client.client import default_update_id


class AdapterTest(unittest.TestCase):
    def test_schema_from_the_header(self):
        data = safetensors(
            {
                "base_model.model.layers.0.q_proj.lora_A.weight": ("BF16", [4, 64]),
                "base_model.model.layers.0.q_proj.lora_B.weight": ("BF16", [32, 4]),
                "base_model.model.layers.0.v_proj.lora_A.default.weight": ("BF16", [8, 64]),
                "base_model.model.layers.0.v_proj.lora_B.default.weight": ("BF16", [16, 8]),
            }
        )
        schema = adapter_schema(AdapterFiles(json.dumps({"base_model_name_or_path": "m/x"}), data))
        self.assertEqual(schema.base_model_id, "m/x")
        self.assertEqual(schema.dtype, "BF16")
        self.assertEqual(
            schema.modules,
            [ModuleShape("layers.0.q_proj", 64, 32, 4), ModuleShape("layers.0.v_proj", 64, 16, 8)],
        )

    def test_refuses_what_is_not_a_lora_adapter(self):
        with self.assertRaisesRegex(ValueError, "no base_model.model"):
            adapter_schema(AdapterFiles("{}", safetensors({"model.embed.weight": ("F32", [4, 4])})))
        with self.assertRaisesRegex(ValueError, "shorter than the 8-byte header"):
            adapter_schema(AdapterFiles("{}", b"abc"))
        with self.assertRaisesRegex(ValueError, "lacks its lora_A or lora_B"):
            adapter_schema(
                AdapterFiles("{}", safetensors({"base_model.model.m.lora_A.weight": ("F32", [2, 4])}))
            )

    def test_round_trips_a_directory_and_hashes_as_the_protocol_says(self):
        with tempfile.TemporaryDirectory() as d:
            a = AdapterFiles('{"r": 4}', b"\x00\x01\x02")
            write_adapter(os.path.join(d, "out"), a)
            self.assertEqual(read_adapter(os.path.join(d, "out")), a)
            self.assertEqual(sorted(os.listdir(os.path.join(d, "out"))), ["adapter_config.json", "adapter_model.safetensors"])
        self.assertEqual(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")

    def test_default_update_id_matches_the_typescript_client(self):
        # Same formula as client-sdk/src/upload.ts defaultUpdateId.
        uid = default_update_id(3, "ab" * 32, "{}")
        self.assertRegex(uid, r"^r3-[0-9a-f]{40}$")
        self.assertEqual(uid, default_update_id(3, "ab" * 32, "{}"))
        self.assertNotEqual(uid, default_update_id(4, "ab" * 32, "{}"))


if __name__ == "__main__":
    unittest.main()
