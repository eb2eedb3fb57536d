"""``main.py predict --ckpt_path best|last`` writes one row per input to predictions.csv; validate scores one."""
import csv

import pytest

import data
from conftest import PROJECT_ROOT, quick_run_args
from main import main

EXPERIMENT = "{{ cookiecutter.experiment_name }}"
CONFIGS = ["-c", str(PROJECT_ROOT / "config" / EXPERIMENT / "share.yaml"),
           "-c", str(PROJECT_ROOT / "config" / EXPERIMENT / "version_0" / "version.yaml")]


@pytest.fixture(scope="module")
def module_trained(module_run):
    """A version trained once for a few steps, for the tests of this module; returns its run folder."""
    folder, args = module_run
    assert main(["fit", *CONFIGS, *args, "--run.test_after_fit=false"]) == 0
    return folder / "res" / EXPERIMENT / "version_0"


@pytest.fixture
def trained(module_trained, module_run):
    """The module's trained run folder, without what an earlier test predicted into it."""
    (module_trained / "predictions.csv").unlink(missing_ok=True)
    return module_trained


@pytest.fixture
def fast_args(module_run):
    """The quick-run arguments of the module's trained run (its results folder)."""
    return module_run[1]


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def count_test_samples(data_dir) -> int:
    dm = getattr(data, "{{ cookiecutter.__dataset_class }}")(**({} if data_dir is None else {"data_dir": str(data_dir)}))
    dm.prepare_data()
    dm.setup("test")
    return len(dm.test_set)


@pytest.mark.parametrize("ckpt_path", ["best", "last"])
def test_predict_writes_one_row_per_test_sample(trained, fast_args, module_run, ckpt_path):
    assert main(["predict", *CONFIGS, *fast_args, "--ckpt_path", ckpt_path]) == 0
    rows = read_rows(trained / "predictions.csv")
    assert len(rows) == count_test_samples(module_run[0] / "datasets")
    assert [row["sample_id"] for row in rows] == [str(i) for i in range(len(rows))]
    probabilities = [float(v) for k, v in rows[0].items() if k.startswith("prob_")]
    assert abs(sum(probabilities) - 1.0) < 1e-4
    probabilities = {k[len("prob_"):]: float(v) for k, v in rows[0].items() if k.startswith("prob_")}
    assert rows[0]["predicted"] == max(probabilities, key=probabilities.get)
    assert not list(trained.glob(".predictions.*"))  # the per-rank parts are merged away


def test_predict_dir_images_are_predicted_with_their_paths_as_ids(trained, fast_args, tmp_path):
    from PIL import Image

    folder = tmp_path / "new_images"
    (folder / "batch2").mkdir(parents=True)
    Image.new("RGB", (40, 30), "white").save(folder / "a.png")
    Image.new("L", (12, 12), 128).save(folder / "b.jpg")
    Image.new("RGB", (8, 8), "black").save(folder / "batch2" / "c.png")
    (folder / "notes.txt").write_text("not an image")

    assert main(["predict", *CONFIGS, *fast_args, "--ckpt_path", "last", f"--data.init_args.predict_dir={folder}"]) == 0
    rows = read_rows(trained / "predictions.csv")
    assert [row["sample_id"] for row in rows] == ["a.png", "b.jpg", "batch2/c.png"]


def test_predict_without_a_checkpoint_is_one_clear_error(trained, fast_args, capsys):
    assert main(["predict", *CONFIGS, *fast_args]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("ERROR: predict needs --ckpt_path")


def test_best_of_an_untrained_version_is_one_clear_error(tmp_path, data_dir, capsys):
    assert main(["predict", *CONFIGS, *quick_run_args(tmp_path, data_dir), "--ckpt_path", "best"]) == 1
    assert "records no best checkpoint; train this version first" in capsys.readouterr().err


def test_ranks_parts_are_merged_in_input_order_without_duplicates(tmp_path):
    """Two DDP ranks, played one after the other: a sample padded onto both ranks is written once."""
    from types import SimpleNamespace

    import torch

    from runtime.callbacks import PredictionWriter

    dataset = SimpleNamespace(sample_ids=["a.png", "b.png", "c.png"])
    path = tmp_path / "predictions.csv"
    shares = {1: [[1], [0]], 0: [[2], [0]]}  # rank 1 sees b, a; rank 0 sees c, a (a: sampler padding)
    for rank in (1, 0):  # rank 0 merges last, after its barrier
        trainer = SimpleNamespace(global_rank=rank, is_global_zero=rank == 0, world_size=2, datamodule=None,
                                  predict_dataloaders=SimpleNamespace(dataset=dataset),
                                  strategy=SimpleNamespace(barrier=lambda name: None))
        writer = PredictionWriter(path)
        writer.on_predict_epoch_start(trainer, None)
        for batch_idx, indices in enumerate(shares[rank]):
            probs = torch.tensor([[0.2, 0.8]] if indices[0] % 2 else [[0.9, 0.1]])
            prediction = {"predicted": probs.argmax(1), "prob": probs}
            writer.write_on_batch_end(trainer, None, prediction, indices, None, batch_idx, 0)
        writer.on_predict_epoch_end(trainer, None)

    rows = read_rows(path)
    assert [(row["sample_id"], row["predicted"]) for row in rows] == [("a.png", "0"), ("b.png", "1"), ("c.png", "0")]
    assert list(rows[0]) == ["sample_id", "predicted", "prob_0", "prob_1"]
    assert not list(tmp_path.glob(".predictions.*"))


def test_validate_scores_a_checkpoint_and_leaves_the_training_record_alone(trained, fast_args, capsys):
    record = {name: (trained / name).read_bytes() for name in ("config.yaml", "metrics.json", "manifest.json")}
    assert main(["validate", *CONFIGS, *fast_args, "--ckpt_path", "best"]) == 0
    assert "val/acc" in capsys.readouterr().out  # Lightning's table of the validation scores
    assert {name: (trained / name).read_bytes() for name in record} == record
