import contextlib
import io
import unittest

from tributary_client.cli import main


class CliHelpTest(unittest.TestCase):
    """--help works for every action of ``python -m tributary_client`` (as for the TypeScript CLI)."""

    def test_every_action_answers_help_with_its_usage(self):
        for args in ([], ["join"], ["submit"], ["wait"], ["fetch"], ["status"]):
            for flag in ("--help", "-h"):
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    code = main(args + [flag], env={})
                self.assertEqual(code, 0, args)
                self.assertIn("usage:", out.getvalue())
                self.assertIn("--samples", out.getvalue())


if __name__ == "__main__":
    unittest.main()
