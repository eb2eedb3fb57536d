"""Tables: bundled sets and CSV / Parquet files read, encoded with statistics of the training rows only (saved in
every checkpoint), learnt as classification or regression, and predicted in the target's own terms."""
import csv
import importlib.util

import pytest
import torch

from conftest import PROJECT_ROOT
from contract import ConfigError, DatasetNotFoundError
from data import TabularDataModule
from fakes import write_table
from main import main
from model import TabularModel

EXAMPLE = str(PROJECT_ROOT / "config" / "example.yaml")


def test_bundled_sets_know_their_task():
    cancer, diabetes = TabularDataModule("breast_cancer"), TabularDataModule("diabetes")
    assert (cancer.task, cancer.num_classes, cancer.num_features) == ("classification", 2, 30)
    assert cancer.target_scale is None
    assert (diabetes.task, diabetes.num_classes, diabetes.num_features) == ("regression", None, 10)
    mean, std = diabetes.target_scale
    assert 100 < mean < 200 and std > 10
    assert sorted(TabularDataModule("wine").classes) == ["0", "1", "2"]


def test_the_encoding_is_fitted_on_the_training_rows_only(tmp_path):
    table = write_table(tmp_path / "table.csv")
    dm = TabularDataModule(str(table), target="label")
    train = dm.table.iloc[dm.rows["train"]]
    assert dm.encoding.means == pytest.approx(train[["size", "weight"]].mean().tolist())
    assert dm.encoding.means != pytest.approx(dm.table[["size", "weight"]].mean().tolist())
    assert dm.categorical == ["colour"] and dm.num_features == 2 + 3  # two numbers, three colours one-hot
    assert not set(dm.rows["test"]) & set(dm.rows["train"] + dm.rows["val"])
    x, y = dm.dataset("train").tensors
    assert x.shape == (len(dm.rows["train"]), 5) and abs(float(x[:, 0].mean())) < 1e-5 and y.dtype == torch.long
    unseen = dm.table.iloc[:2].assign(colour="purple")
    assert torch.equal(dm.encoding.features(unseen)[:, 2:], torch.zeros(2, 3))  # an unseen category: no colour


def test_bad_tables_are_one_clear_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="table .*nowhere.csv not found: put a .csv or .parquet file"):
        TabularDataModule("nowhere.csv", target="label")
    table = write_table(tmp_path / "table.csv")
    with pytest.raises(ConfigError, match="has no column 'price'"):
        TabularDataModule(str(table), target="price")
    with pytest.raises(ConfigError, match="names no column"):
        TabularDataModule(str(table))


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="Parquet needs pyarrow")
def test_a_parquet_table_reads_like_its_csv(tmp_path):
    import pandas as pd

    table = write_table(tmp_path / "table.csv")
    pd.read_csv(table).to_parquet(tmp_path / "table.parquet")
    from_csv, from_parquet = (TabularDataModule(str(path), target="label")
                              for path in (table, tmp_path / "table.parquet"))
    assert torch.equal(from_csv.dataset("val").tensors[0], from_parquet.dataset("val").tensors[0])


def test_regression_predicts_in_the_target_s_units():
    model = TabularModel(num_features=3, num_classes=None, target_scale=(150.0, 50.0))
    prediction = model(torch.zeros(4, 3))
    assert prediction.shape == (4,) and float((prediction - 150.0).abs().max()) < 200.0
    loss = model.training_step((torch.zeros(4, 3), torch.full((4,), 150.0)), 0)
    assert torch.isfinite(loss)


def test_a_checkpoint_carries_the_encoding_and_predict_writes_classes_with_probabilities(tmp_path, fast_args):
    table = write_table(tmp_path / "table.csv")
    args = [*fast_args, f"--data.init_args.source={table}", "--data.init_args.target=label",
            "--data.init_args.task=classification", "--run.monitor=val/acc", "--run.mode=max"]
    assert main(["fit", "-c", EXAMPLE, *args]) == 0
    run_dir = tmp_path / "res" / "example" / "version_0"
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["TabularDataModule"]["encoding"]["categories"] == {"colour": ["blue", "green", "red"]}
    assert main(["predict", "-c", EXAMPLE, *args, "--ckpt_path", "last"]) == 0
    with open(run_dir / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["sample_id", "predicted", "prob_big", "prob_small"]
    assert {row["predicted"] for row in rows} <= {"big", "small"} and len(rows) == 24  # 20 % of 120 rows


def test_regression_predictions_are_values(tmp_path, fast_args):
    args = [*fast_args, "--data.init_args.source=diabetes", "--data.init_args.target=null",
            "--data.init_args.task=null",
            "--run.monitor=val/mse", "--run.mode=min"]
    assert main(["fit", "-c", EXAMPLE, *args]) == 0
    assert main(["predict", "-c", EXAMPLE, *args, "--ckpt_path", "best"]) == 0
    with open(tmp_path / "res" / "example" / "version_0" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["sample_id", "predicted"] and len(rows) == 88  # 20 % of 442 patients
    assert all(0.0 < float(row["predicted"]) < 1000.0 for row in rows)
