import unittest

import grpc

from tests.helpers import FakeRpcError, status_bytes
from tributary_client import (
    InternalError,
    InvalidUpdateError,
    NotInCohortError,
    PreconditionError,
    StaleRoundError,
    UnavailableError,
    decode_status,
    from_rpc_error,
    is_transient,
)


class DecodeStatusTest(unittest.TestCase):
    def test_decodes_error_info_bad_request_and_skips_other_details(self):
        data = status_bytes(
            3,
            "bad tensor",
            "INVALID_TENSOR",
            {"tensor": "m.lora_A.weight", "client_id": "c1"},
            [("m.lora_A.weight", "has NaN")],
            extra_any=True,
        )
        s = decode_status(data)
        self.assertEqual((s.code, s.message, s.reason, s.domain), (3, "bad tensor", "INVALID_TENSOR", "tributary.dev"))
        self.assertEqual(s.metadata, {"tensor": "m.lora_A.weight", "client_id": "c1"})
        self.assertEqual([(v.field, v.description) for v in s.field_violations], [("m.lora_A.weight", "has NaN")])

    def test_refuses_what_is_not_protobuf(self):
        with self.assertRaises(ValueError):
            decode_status(b"\x0a\xff\xff\xff\xff\x0f")


class ErrorMappingTest(unittest.TestCase):
    def test_chooses_the_class_from_the_reason_not_the_text(self):
        err = FakeRpcError(
            grpc.StatusCode.FAILED_PRECONDITION,
            "any words",
            status_bytes(9, "any words", "STALE_ROUND", {"round": "1", "current_round": "2"}),
        )
        e = from_rpc_error(err)
        self.assertIsInstance(e, StaleRoundError)
        self.assertEqual((e.code, e.reason, e.current_round), ("FAILED_PRECONDITION", "STALE_ROUND", 2))
        cohort = from_rpc_error(
            FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "x", status_bytes(9, "x", "NOT_IN_COHORT"))
        )
        self.assertIsInstance(cohort, NotInCohortError)
        text_only = from_rpc_error(
            FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "round 1 is not open for updates; the current round is 2")
        )
        self.assertIs(type(text_only), PreconditionError)

    def test_invalid_update_names_the_tensor(self):
        e = from_rpc_error(
            FakeRpcError(
                grpc.StatusCode.INVALID_ARGUMENT, "NaN", status_bytes(3, "NaN", "INVALID_TENSOR", {"tensor": "t"})
            )
        )
        self.assertIsInstance(e, InvalidUpdateError)
        self.assertEqual(e.tensor, "t")

    def test_retries_dropped_connections_but_not_internal_errors(self):
        for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            self.assertTrue(is_transient(FakeRpcError(code, "x")), code)
        for code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INVALID_ARGUMENT):
            self.assertFalse(is_transient(FakeRpcError(code, "x")), code)
        self.assertIsInstance(from_rpc_error(FakeRpcError(grpc.StatusCode.INTERNAL, "x")), InternalError)
        self.assertIsInstance(from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "x")), UnavailableError)
        resume = FakeRpcError(
            grpc.StatusCode.FAILED_PRECONDITION, "x", status_bytes(9, "x", "RESUME_OFFSET_MISMATCH")
        )
        self.assertTrue(is_transient(resume))


if __name__ == "__main__":
    unittest.main()
