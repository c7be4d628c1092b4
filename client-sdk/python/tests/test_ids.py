import unittest

from tributary_client.ids import ID_RULES, id_problem, is_valid_id


class IdRulesTest(unittest.TestCase):
    """The same cases as @tributary/protocol's ids.test.ts."""

    KINDS = ("federation_id", "client_id", "update_id")

    def test_accepts_path_and_subject_safe_ids(self):
        for kind in self.KINDS:
            for ok in ("a", "A-b_9", "x" * 128):
                self.assertIsNone(id_problem(kind, ok), f"{kind} {ok}")
        self.assertTrue(is_valid_id("update_id", "r3-1f2e.v2"))
        self.assertTrue(is_valid_id("client_id", "node.eu-1"))

    def test_refuses_naming_field_and_rule(self):
        for kind in self.KINDS:
            for bad in ("", ".", "..", "a:b", "a/b", "x" * 129, 7, None, "é", "a\n"):
                problem = id_problem(kind, bad)
                self.assertIsNotNone(problem, f"{kind} {bad!r}")
                self.assertTrue(problem.startswith(f"{kind} "), problem)
                self.assertTrue(problem.endswith(ID_RULES[kind]), problem)

    def test_dots_only_out_of_federation_ids(self):
        self.assertIn("NATS subject token", id_problem("federation_id", "a.b"))
        self.assertIsNone(id_problem("client_id", "a.b"))

    def test_quotes_a_short_prefix(self):
        problem = id_problem("update_id", "y" * 100_000 + ":")
        self.assertLess(len(problem), 200)
        self.assertIn("(100001 characters)", problem)


if __name__ == "__main__":
    unittest.main()
