"""A ``transformers.TrainerCallback`` that takes part in a federation: at the end of
each local round (``trainer.train()``) it saves the PEFT adapter, submits it to the
open round this client is selected for, waits for the merged adapter and loads it
into the model, so the next ``train()`` starts from the federation's adapter.

It is importable, and works with any trainer that calls ``on_train_end(args, state,
control, model=...)``, without ``transformers`` installed.
"""

from __future__ import annotations

import os
from typing import Any, Callable, List, Optional, Union

from .adapter import SAFETENSORS_FILE
from .client import Ack, Client, Result

try:  # pragma: no cover - depends on the environment
    from transformers import TrainerCallback as _Base
except ImportError:  # transformers is optional

    class _Base:  # type: ignore[no-redef]
        """Stand-in for ``transformers.TrainerCallback`` when transformers is not installed."""


def load_merged_adapter(model: Any, directory: str) -> None:
    """Loads the merged adapter's weights into a PEFT model (``peft.set_peft_model_state_dict``).
    The client must train at the federation's rank so the shapes and scaling match."""
    try:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file
    except ImportError as err:
        raise RuntimeError(
            "loading the merged adapter needs peft and safetensors; pass load=... to TributaryCallback"
        ) from err
    set_peft_model_state_dict(model, load_file(os.path.join(directory, SAFETENSORS_FILE)))


class TributaryCallback(_Base):
    """Submits the adapter after each ``train()`` and loads the merged one.

    :param client: a joined :class:`~tributary_client.Client`.
    :param samples: training samples behind each update (an int, or ``f(state) -> int``).
    :param adapter_dir: where the local adapter is saved (``model.save_pretrained``).
    :param global_dir: where merged adapters are written (one sub-directory per round).
    :param load: ``load(model, directory)``; default :func:`load_merged_adapter`.
    :param timeout: seconds to wait for a round / a result (``None`` = no limit).

    >>> trainer = Trainer(model=peft_model, args=args, train_dataset=ds,
    ...                   callbacks=[TributaryCallback(client, samples=len(ds))])  # doctest: +SKIP
    """

    def __init__(
        self,
        client: Client,
        *,
        samples: Union[int, Callable[[Any], int]],
        adapter_dir: str = "tributary-adapter",
        global_dir: str = "tributary-global",
        load: Optional[Callable[[Any, str], None]] = None,
        timeout: Optional[float] = None,
    ):
        super().__init__()
        self.client = client
        self.samples = samples
        self.adapter_dir = adapter_dir
        self.global_dir = global_dir
        self.load = load or load_merged_adapter
        self.timeout = timeout
        #: ``(ack, result)`` of every round this callback took part in.
        self.rounds: List[tuple] = []

    @staticmethod
    def _metrics(state: Any) -> dict:
        history = getattr(state, "log_history", None) or []
        for entry in reversed(history):
            found = {k: float(v) for k, v in entry.items() if k in ("loss", "train_loss", "eval_loss")}
            if found:
                return found
        return {}

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
        if model is None:
            raise ValueError("TributaryCallback.on_train_end needs the model (the trainer passes model=...)")
        r = self.client.next_round(timeout=self.timeout)
        model.save_pretrained(self.adapter_dir)
        samples = self.samples(state) if callable(self.samples) else self.samples
        ack: Ack = self.client.submit(r.number, self.adapter_dir, samples=int(samples), metrics=self._metrics(state))
        result: Result = self.client.wait_for_result(
            r.number, os.path.join(self.global_dir, f"round-{r.number}"), timeout=self.timeout
        )
        self.load(model, result.directory)
        self.rounds.append((ack, result))
        return control
