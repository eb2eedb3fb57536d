"""Tables: a CSV or Parquet file of yours, or one of scikit-learn's bundled sets (no network needed):
``breast_cancer`` and ``wine`` (classification), ``diabetes`` (regression).

    source: breast_cancer | wine | diabetes | path/to/table.csv | path/to/table.parquet
    target: the column to predict; features: the columns to use (default: every other one)

Numeric features are standardised and categorical ones one-hot encoded, with statistics fitted on the
training split only; the fitted encoding travels in every checkpoint (the datamodule's ``state_dict``),
so ``main.py test`` and ``predict`` encode with exactly it. A fixed share of the rows (``test_fraction``,
its own seed) is the test split; validation is carved from the rest.
"""
from dataclasses import asdict, dataclass, field
from typing import Literal, Optional

import torch
from torch.utils.data import TensorDataset

from contract import ConfigError, DatasetNotFoundError, project_path

from ._common import ResearchDataModule, split_indices

BUNDLED = {"breast_cancer": ("load_breast_cancer", "classification"), "wine": ("load_wine", "classification"),
           "diabetes": ("load_diabetes", "regression")}
TEST_SPLIT_SEED = 0  # the test rows never change with the user's split_seed


def read_table(source: str, target: Optional[str]):
    """(the table as a pandas DataFrame, its target column, the task of a bundled set or None)."""
    import pandas as pd

    if source in BUNDLED:
        import sklearn.datasets

        loader, task = BUNDLED[source]
        frame = getattr(sklearn.datasets, loader)(as_frame=True).frame
        return frame, target or "target", task
    path = project_path(source)
    if not path.is_file():
        raise DatasetNotFoundError(f"table {path} not found: put a .csv or .parquet file there (a header row, one "
                                   f"row per sample), or set data.init_args.source to one of {', '.join(BUNDLED)}")
    if not target:
        raise ConfigError("data.init_args.target names no column: say which column of the table to predict")
    if path.suffix.lower() == ".parquet":
        try:
            return pd.read_parquet(path), target, None
        except ImportError as error:
            raise ConfigError(f"reading {path.name} needs a Parquet engine: pip install pyarrow ({error})") from None
    return pd.read_csv(path), target, None


@dataclass
class TableEncoding:
    """Features as the model sees them: numeric columns standardised, categorical ones one-hot; the target as
    class indices (``classes``) or standardised values (``target_mean``, ``target_std``)."""

    numeric: list = field(default_factory=list)
    means: list = field(default_factory=list)
    stds: list = field(default_factory=list)
    categories: dict = field(default_factory=dict)  # column -> the categories seen in training
    classes: Optional[list] = None
    target_mean: Optional[float] = None
    target_std: Optional[float] = None

    @classmethod
    def fit(cls, frame, features: list, categorical: list, target: str, task: str) -> "TableEncoding":
        numeric = [column for column in features if column not in categorical]
        values = frame[numeric].astype("float64")
        encoding = cls(numeric, values.mean().fillna(0.0).tolist(), values.std().fillna(1.0).replace(0.0, 1.0).tolist(),
                       {column: sorted(frame[column].astype(str).unique()) for column in categorical})
        if task == "classification":
            encoding.classes = sorted(frame[target].astype(str).unique())
        else:
            encoding.target_mean, encoding.target_std = float(frame[target].mean()), float(frame[target].std() or 1.0)
        return encoding

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(values) for values in self.categories.values())

    def features(self, frame) -> torch.Tensor:
        """(N, width) float32 features; a missing number becomes the training mean, an unseen category zeros."""
        import pandas as pd

        numeric = (frame[self.numeric].astype("float64") - self.means) / self.stds
        parts = [numeric.fillna(0.0)]
        for column, values in self.categories.items():
            parts.append(pd.get_dummies(pd.Categorical(frame[column].astype(str), categories=values), dtype="float64"))
        return torch.tensor(pd.concat([part.reset_index(drop=True) for part in parts], axis=1).to_numpy(),
                            dtype=torch.float32)

    def targets(self, frame, target: str) -> torch.Tensor:
        if self.classes is None:
            return torch.tensor(frame[target].astype("float64").to_numpy(), dtype=torch.float32)
        labels = frame[target].astype(str)
        unseen = sorted(set(labels) - set(self.classes))
        if unseen:
            raise ConfigError(f"column {target} holds {', '.join(unseen[:3])}, a class the training rows never had")
        return torch.tensor(labels.map({name: i for i, name in enumerate(self.classes)}).to_numpy(), dtype=torch.long)


class TableDataset(TensorDataset):
    """Encoded rows; ``sample_ids`` are their row numbers in the table (predictions.csv's first column)."""

    def __init__(self, *tensors, sample_ids: list):
        super().__init__(*tensors)
        self.sample_ids = sample_ids


class TabularDataModule(ResearchDataModule):
    """Classification or regression on one table (module docstring)."""

    links = ("num_features", "num_classes", "target_scale")  # contract point 1

    def __init__(self, source: str = "breast_cancer", target: Optional[str] = None,
                 features: Optional[list[str]] = None, categorical: Optional[list[str]] = None,
                 task: Optional[Literal["classification", "regression"]] = None, batch_size: int = 64,
                 val_fraction: float = 0.2, split_seed: int = 42, test_fraction: float = 0.2,
                 predict_file: Optional[str] = None, fold: Optional[int] = None, n_folds: Optional[int] = None):
        """
        Args:
            source: a bundled set (breast_cancer, wine, diabetes) or a .csv / .parquet file (relative to the project).
            target: the column to predict (a bundled set's is ``target``).
            features: the columns to learn from (default: every column but the target).
            categorical: the features to one-hot encode (default: those that are not numbers).
            task: classification or regression (default: the bundled set's; for a file, classification when
                the target is text or has at most 20 distinct whole numbers).
            batch_size: rows per batch.
            val_fraction: share of the non-test rows kept for validation.
            split_seed: seed of the train/validation split.
            test_fraction: share of the rows held out for test (a fixed seed: it never moves).
            predict_file: a table without (or with) the target for ``main.py predict`` (default: the test split).
            fold: with ``n_folds``, validate on this fold of a fixed k-fold split of the training data.
            n_folds: the number of folds (sh/hparams.py --folds writes both).
        """
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, split_seed=split_seed, fold=fold,
                         n_folds=n_folds)
        if not 0.0 < test_fraction < 1.0:
            raise ConfigError(f"data.init_args.test_fraction must be between 0 and 1, got {test_fraction!r}")
        table, self.target, bundled_task = read_table(source, target)
        if self.target not in table.columns:
            columns = ", ".join(map(str, table.columns))
            raise ConfigError(f"table {source} has no column {self.target!r} (columns: {columns})")
        self.feature_columns = list(features) if features else [c for c in table.columns if c != self.target]
        missing = [c for c in self.feature_columns + list(categorical or []) if c not in table.columns]
        if missing:
            raise ConfigError(f"table {source} has no column {', '.join(map(repr, missing))}")
        self.task = task or bundled_task or self.guess_task(table[self.target])
        self.categorical = list(categorical) if categorical is not None else [
            c for c in self.feature_columns if table[c].dtype.kind not in "biuf"]
        rest, test = split_indices(len(table), test_fraction, TEST_SPLIT_SEED)
        classes = table[self.target].iloc[rest.tolist()].astype(str) if self.task == "classification" else None
        train, val = self.train_val_indices(len(rest), None if classes is None else classes.factorize()[0])
        self.rows = {"train": rest[train].tolist(), "val": rest[val].tolist(), "test": test.tolist()}
        self.table, self.predict_file = table, predict_file
        self.encoding = TableEncoding.fit(table.iloc[self.rows["train"]], self.feature_columns, self.categorical,
                                          self.target, self.task)

    @staticmethod
    def guess_task(column) -> str:
        whole = column.dtype.kind in "biu" or (column.dtype.kind == "f" and (column.dropna() % 1 == 0).all())
        return "classification" if column.dtype.kind in "bOSU" or (whole and column.nunique() <= 20) else "regression"

    # the values linked into the model

    @property
    def num_features(self) -> int:
        return self.encoding.width

    @property
    def num_classes(self) -> Optional[int]:
        return len(self.encoding.classes) if self.encoding.classes is not None else None

    @property
    def classes(self) -> Optional[list]:
        return self.encoding.classes

    @property
    def target_scale(self) -> Optional[tuple[float, float]]:
        return None if self.encoding.classes is not None else (self.encoding.target_mean, self.encoding.target_std)

    # the fitted encoding, saved with every checkpoint

    def state_dict(self) -> dict:
        return {"encoding": asdict(self.encoding)}

    def load_state_dict(self, state: dict) -> None:
        self.encoding = TableEncoding(**state["encoding"])

    # splits, encoded when their loader is made (after a checkpoint's encoding is restored)

    def dataset(self, split: str) -> TableDataset:
        frame = self.table.iloc[self.rows[split]]
        x, y = self.encoding.features(frame), self.encoding.targets(frame, self.target)
        return TableDataset(x, y, sample_ids=self.rows[split])

    def train_dataloader(self):
        return self.loader(self.dataset("train"), shuffle=True)

    def val_dataloader(self):
        return self.loader(self.dataset("val"))

    def test_dataloader(self):
        return self.loader(self.dataset("test"))

    def predict_dataloader(self):
        """The rows of ``predict_file`` (its row numbers as sample ids) when it is set, else the test split."""
        if not self.predict_file:
            return self.test_dataloader()
        frame, _, _ = read_table(self.predict_file, self.target)
        missing = [c for c in self.feature_columns if c not in frame.columns]
        if missing:
            raise ConfigError(f"predict_file {self.predict_file} lacks the feature columns {', '.join(missing)}")
        return self.loader(TableDataset(self.encoding.features(frame), sample_ids=list(range(len(frame)))))
