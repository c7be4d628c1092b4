import os
import tempfile
import unittest
from types import SimpleNamespace

from tributary_client import Ack, AdapterFiles, Result, Round, TributaryCallback, run_federated
from tributary_client.errors import NotFoundError, RoundFailedError


class FakeClient:
    """Records what a training loop asks of the client."""

    def __init__(self, fail_round=None, fold=False):
        self.calls = []
        self.number = 0
        self.fail_round = fail_round
        self.fold = fold
        self.federation_id = "fed"

    def join(self, federation_id):
        self.calls.append(("join", federation_id))
        policy = SimpleNamespace(fold_into_base=self.fold)
        return SimpleNamespace(federation=SimpleNamespace(policy=policy))

    def global_adapter(self, out_dir, round=None, rank=None):
        self.calls.append(("global_adapter", round, rank))
        if round == self.fail_round:
            raise NotFoundError("NOT_FOUND", f"round {round} has no adapter")
        os.makedirs(out_dir, exist_ok=True)
        return Result(round, "cd" * 32, out_dir, "grpc", AdapterFiles("{}", b""))

    def next_round(self, timeout=None):
        self.number += 1
        self.calls.append(("next_round", self.number))
        return Round("fed", self.number, "open", ["c1"], 0, "", "")

    def submit(self, number, adapter_dir, *, samples, metrics=None, update_id=None):
        self.calls.append(("submit", number, os.path.basename(adapter_dir), samples, dict(metrics or {})))
        return Ack(f"u{number}", number, False, "ab" * 32, 10, 1)

    def wait_for_result(self, number, out_dir, timeout=None, rank=None):
        self.calls.append(("wait", number) if rank is None else ("wait", number, rank))
        if number == self.fail_round:
            raise RoundFailedError(number, "failed", "no quorum")
        os.makedirs(out_dir, exist_ok=True)
        return Result(number, "cd" * 32, out_dir, "grpc", AdapterFiles("{}", b""))


class StandInModel:
    def __init__(self):
        self.saved = []

    def save_pretrained(self, directory):
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "adapter_config.json"), "w") as f:
            f.write("{}")
        self.saved.append(directory)


class StandInTrainer:
    """Calls callbacks the way transformers.Trainer does at the end of train()."""

    def __init__(self, model, callbacks):
        self.model, self.callbacks = model, callbacks
        self.state = SimpleNamespace(log_history=[{"loss": 0.5, "step": 10}, {"train_runtime": 1.0}])

    def train(self):
        control = SimpleNamespace()
        for cb in self.callbacks:
            control = cb.on_train_end(SimpleNamespace(), self.state, control, model=self.model) or control


class CallbackTest(unittest.TestCase):
    def test_submits_after_each_train_and_loads_the_merged_adapter(self):
        with tempfile.TemporaryDirectory() as d:
            client, model, loaded = FakeClient(), StandInModel(), []
            cb = TributaryCallback(
                client,
                samples=lambda state: 1200,
                adapter_dir=os.path.join(d, "adapter"),
                global_dir=os.path.join(d, "global"),
                load=lambda m, directory: loaded.append((m, directory)),
            )
            trainer = StandInTrainer(model, [cb])
            trainer.train()
            trainer.train()
            self.assertEqual(
                [c for c in client.calls if c[0] == "submit"],
                [("submit", 1, "adapter", 1200, {"loss": 0.5}), ("submit", 2, "adapter", 1200, {"loss": 0.5})],
            )
            self.assertEqual([os.path.basename(p) for _, p in loaded], ["round-1", "round-2"])
            self.assertTrue(all(m is model for m, _ in loaded))
            self.assertEqual(len(cb.rounds), 2)

    def test_needs_the_model(self):
        cb = TributaryCallback(FakeClient(), samples=1)
        with self.assertRaisesRegex(ValueError, "needs the model"):
            cb.on_train_end(None, None, None)


class RunFederatedTest(unittest.TestCase):
    def test_trains_from_the_latest_merged_adapter_and_goes_on_after_a_failed_round(self):
        with tempfile.TemporaryDirectory() as d:
            client = FakeClient(fail_round=2)
            seen = []

            def train(global_dir, r):
                seen.append((r.number, None if global_dir is None else os.path.basename(global_dir)))
                return os.path.join(d, f"a{r.number}"), 100

            outcomes = run_federated(client, train, rounds=3, work_dir=d)
            self.assertEqual(seen, [(1, None), (2, "global-round-1"), (3, "global-round-1")])
            self.assertEqual([o.error is None for o in outcomes], [True, False, True])
            self.assertIsInstance(outcomes[1].error, RoundFailedError)


    def test_folding_into_the_base_hands_over_every_merged_adapter_and_no_global(self):
        with tempfile.TemporaryDirectory() as d:
            client = FakeClient(fail_round=2, fold=True)
            seen = []

            def train(global_dir, r, folded):
                seen.append((r.number, global_dir, [os.path.basename(f) for f in folded]))
                return os.path.join(d, f"a{r.number}"), 100

            run_federated(client, train, rounds=3, work_dir=d)
            self.assertEqual(
                seen,
                [(1, None, []), (2, None, ["folded-round-1"]), (3, None, ["folded-round-1"])],
            )
            self.assertIn(("global_adapter", 1, 0), client.calls)
            # The whole merged delta, to fold: not a rank variant.
            self.assertIn(("wait", 1, 0), client.calls)


if __name__ == "__main__":
    unittest.main()
