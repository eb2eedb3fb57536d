"""``main.py predict`` writes ``<run_dir>/predictions.csv``: sample id, predicted class, one probability per class.

Safe under DDP: every rank appends the rows of its own batches to a part file beside the CSV;
after the last batch rank 0 merges the parts in input order, keeps one row per sample id (a
distributed sampler may give a sample to two ranks) and removes the parts. Several nodes need
``res/`` on a filesystem they share. Sample ids come from the dataset's ``sample_ids`` (file paths
for ``--data.init_args.predict_dir``), else they are the sample's index in the predict set.
"""
import csv
import io
from pathlib import Path

from pytorch_lightning.callbacks import BasePredictionWriter

from .files import write_text_atomic


def _predict_dataset(trainer, dataloader_idx: int):
    loaders = trainer.predict_dataloaders
    loader = loaders[dataloader_idx] if isinstance(loaders, (list, tuple)) else loaders
    return loader.dataset


class PredictionCSVWriter(BasePredictionWriter):
    """Write the ``{"pred": (N,), "probs": (N, classes)}`` outputs of ``predict_step`` to one CSV file."""

    def __init__(self, path):
        super().__init__(write_interval="batch")
        self.path = Path(path)
        self._part = self._writer = None

    def _part_path(self, rank: int) -> Path:
        return self.path.with_name(f".{self.path.stem}.rank{rank}.csv")

    def on_predict_epoch_start(self, trainer, pl_module) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._part = open(self._part_path(trainer.global_rank), "w", newline="")
        self._writer = csv.writer(self._part)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx) -> None:
        sample_ids = getattr(_predict_dataset(trainer, dataloader_idx), "sample_ids", None)
        predicted = prediction["pred"].tolist()
        probabilities = prediction["probs"].float().cpu().tolist()
        for index, label, probs in zip(batch_indices, predicted, probabilities):
            self._writer.writerow([index, index if sample_ids is None else sample_ids[index], label, *probs])

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        self._part.close()
        trainer.strategy.barrier("predictions_written")
        if trainer.is_global_zero:
            self._merge(trainer.world_size, getattr(trainer.datamodule, "classes", None))
        trainer.strategy.barrier("predictions_merged")

    def _merge(self, world_size: int, class_names) -> None:
        rows = {}
        for rank in range(world_size):
            part = self._part_path(rank)
            with open(part, newline="") as f:
                for index, sample_id, *values in csv.reader(f):
                    rows.setdefault(sample_id, (int(index), values))
            part.unlink()
        num_classes = len(next(iter(rows.values()))[1]) - 1 if rows else 0
        names = list(class_names) if class_names else [str(k) for k in range(num_classes)]
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["sample_id", "predicted", *(f"prob_{name}" for name in names)])
        for sample_id, (_, (predicted, *probs)) in sorted(rows.items(), key=lambda item: item[1][0]):
            writer.writerow([sample_id, names[int(predicted)], *probs])
        write_text_atomic(self.path, text.getvalue())
