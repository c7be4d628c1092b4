import unittest

import tributary_client as tc
from tributary_client.errors import TributaryError


class SamplesRequiredTest(unittest.TestCase):
    """A federation whose method weights by sample counts (JoinResponse.weights_by_samples)
    gets no update without one: the client refuses before reading or sending anything,
    as the TypeScript SDK does."""

    def test_refuses_a_submit_without_samples_when_the_federation_weights_by_them(self):
        client = tc.connect("127.0.0.1:9", "trb_" + "x" * 40)
        try:
            client.federation_id = "fed-a"
            client._weights_by_samples = True
            with self.assertRaises(TributaryError) as cm:
                client.submit(1, "/nonexistent/adapter")
            self.assertEqual(cm.exception.code, "SAMPLES_REQUIRED")
            self.assertIn("samples=N", cm.exception.details)
            # With a count it goes on (and fails only on the missing adapter directory).
            with self.assertRaises(Exception) as other:
                client.submit(1, "/nonexistent/adapter", samples=10)
            self.assertNotEqual(getattr(other.exception, "code", None), "SAMPLES_REQUIRED")
        finally:
            client.close()


if __name__ == "__main__":
    unittest.main()
