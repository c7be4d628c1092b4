import math
import unittest

from tributary_client.privacy import DEFAULT_ORDERS, composed_rdp, epsilon_of, log_erfc, privacy_spent, rdp_of_step


class AccountantTest(unittest.TestCase):
    """The same reference values as @tributary/protocol's rdp.test.ts (Opacus's accountant test)."""

    def test_opacus_reference(self):
        self.assertAlmostEqual(epsilon_of(0.04, 1.5, 2250, 1e-5), 7.32911117143, places=7)
        self.assertEqual(len(DEFAULT_ORDERS), 151)

    def test_log_erfc_in_the_tail(self):
        self.assertAlmostEqual(math.exp(log_erfc(3)), 2.209049699858544e-5, delta=1e-18)
        self.assertAlmostEqual(math.exp(log_erfc(10)) / 2.088487583762545e-45, 1, places=12)
        self.assertTrue(math.isfinite(log_erfc(40)))

    def test_special_cases(self):
        self.assertEqual(rdp_of_step(0, 1, 2), 0)
        self.assertEqual(rdp_of_step(0.1, 0, 2), math.inf)
        self.assertEqual(rdp_of_step(1, 2, 3), 3 / 8)
        self.assertEqual(privacy_spent([math.inf] * 151, 1e-5)[0], math.inf)
        one = composed_rdp([(0.01, 1, 1)])
        five = composed_rdp([(0.01, 1, 3), (0.01, 1, 2)])
        for a, b in zip(one, five):
            self.assertAlmostEqual(b, 5 * a, delta=1e-12 * max(1, b))


if __name__ == "__main__":
    unittest.main()
