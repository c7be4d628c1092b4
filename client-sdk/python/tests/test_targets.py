import unittest

from tributary_client.targets import coordinator_target, coordinator_target_problem


class CoordinatorTargetTest(unittest.TestCase):
    def test_one_address_several_ips_and_refusals(self):
        self.assertEqual(coordinator_target("coordinator:7070"), "coordinator:7070")
        self.assertEqual(coordinator_target("10.0.0.5:7070, 10.0.0.6:7071"), "ipv4:10.0.0.5:7070,10.0.0.6:7071")
        self.assertEqual(coordinator_target("[::1]:7070,[fe80::1]:7070"), "ipv6:[::1]:7070,[fe80::1]:7070")
        self.assertRegex(coordinator_target_problem("a:1,b:2") or "", "must be given as IP addresses")
        self.assertRegex(coordinator_target_problem("10.0.0.1:1,[::1]:2") or "", "mixes IPv4 and IPv6")
        with self.assertRaisesRegex(ValueError, '"10.0.0.1" is not host:port'):
            coordinator_target("10.0.0.1,10.0.0.2:7070")


if __name__ == "__main__":
    unittest.main()
