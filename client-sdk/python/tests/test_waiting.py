import unittest

from tributary_client import Round, Waiting, describe_waiting
from tributary_client.waiting import waiting_of


class WaitingTest(unittest.TestCase):
    """The same wording as the TypeScript SDK's describeWaiting."""

    def test_no_round_open_says_why(self):
        w = waiting_of("round", None, None, 2, "1 of 2 clients connected; a round opens when 2 are", 0.0)
        self.assertEqual(w, Waiting("round", 2, reason="1 of 2 clients connected; a round opens when 2 are"))
        self.assertEqual(
            describe_waiting(w), "waiting for a round: no round open: 1 of 2 clients connected; a round opens when 2 are"
        )

    def test_an_open_round_reports_updates_cohort_and_deadline(self):
        r = Round("f", 3, "open", ["a", "b", "c"], 1, "", "", 1000.0 + 252)
        w = waiting_of("result", 3, r, 2, "", 1000.0)
        self.assertEqual((w.awaiting, w.deadline_in, w.reason), (2, 252.0, None))
        self.assertEqual(
            describe_waiting(w),
            "waiting for round 3's merged adapter: round 3 is open: 1/2 updates (quorum 2), "
            "2 of 3 clients still to submit, 4m12s to the deadline",
        )

    def test_a_merging_round(self):
        r = Round("f", 3, "merging", ["a", "b"], 2, "", "")
        self.assertEqual(
            describe_waiting(waiting_of("result", 3, r, 2, "", 0.0)),
            "waiting for round 3's merged adapter: round 3 is merging 2 update(s)",
        )


if __name__ == "__main__":
    unittest.main()
