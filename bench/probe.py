"""A Lightning callback the benchmark appends to a generated project's run (``--trainer.callbacks+=probe.BenchProbe``).

It reads clocks only: per training epoch, the time from the epoch's start to the end of each
training step (the training phase), the time of each step's LightningModule ``optimizer_step`` (which
runs ``training_step``: forward, loss, metrics and ``self.log``; then backward and the optimizer's
update: what is left of the step is Lightning's loop and hooks around it and the batch's loading), the
whole epoch up to the next one's start (validation,
checkpoints, logging included), the samples trained, the validation accuracy and a checksum of the
first batch's labels (to check that the raw loop saw the same batches). Written as JSON to
``$BENCH_PROBE_OUT`` when training ends.
"""
import json
import os
import time

import torch
from pytorch_lightning import Callback


def label_checksum(labels: torch.Tensor) -> int:
    """An order-sensitive checksum of a batch's labels."""
    return int((labels.long().cpu() * torch.arange(1, len(labels) + 1)).sum())


class BenchProbe(Callback):
    def __init__(self):
        self.epochs = []

    def _close_epoch(self) -> None:
        if self.epochs and "epoch_s" not in self.epochs[-1]:
            self.epochs[-1]["epoch_s"] = time.perf_counter() - self.epochs[-1]["start"]

    def on_train_start(self, trainer, pl_module) -> None:
        step = pl_module.optimizer_step

        def timed_step(*args, **kwargs):
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize(pl_module.device)  # the batch's loading is not the step's
            start = time.perf_counter()
            step(*args, **kwargs)
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize(pl_module.device)
            self.epochs[-1]["computes"].append(time.perf_counter() - start)

        pl_module.optimizer_step = timed_step

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._close_epoch()
        self.epochs.append({"start": time.perf_counter(), "samples": 0, "step_ends": [], "computes": []})

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.epochs[-1]["first_batch"] = label_checksum(batch[1])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)  # as baselines.py times its steps
        epoch = self.epochs[-1]
        epoch["train_s"] = time.perf_counter() - epoch["start"]
        epoch["step_ends"].append(epoch["train_s"])
        epoch["samples"] += len(batch[1])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        accuracy = trainer.callback_metrics.get("val/acc")
        self.epochs[-1]["val_acc"] = None if accuracy is None else float(accuracy)

    def on_train_end(self, trainer, pl_module) -> None:
        self._close_epoch()
        for epoch in self.epochs:
            epoch.pop("start")
        with open(os.environ["BENCH_PROBE_OUT"], "w") as f:
            json.dump({"epochs": self.epochs}, f)
