"""main.py fit records manifest.json and history.csv, never overwrites a run unless asked, and resumes one."""
import csv
import importlib.metadata
import json
import math
import socket

import pytest
import torch

from conftest import MONITOR, PROJECT_ROOT, TEST_METRIC, model_class
from main import main

EXAMPLE = str(PROJECT_ROOT / "config" / "example.yaml")


def history(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_fit_records_its_run_refuses_to_overwrite_it_and_resumes_it(tmp_path, fast_args, capsys):
    run_dir = tmp_path / "res" / "example" / "version_0"
    assert main(["fit", "-c", EXAMPLE, *fast_args, "--trainer.max_epochs=2"]) == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["exit_status"] == 0 and manifest["error"] is None
    assert manifest["command"][1:4] == [str(PROJECT_ROOT / "main.py"), "fit", "-c"]
    assert manifest["seed"] == 2022 and manifest["config"]["seed_everything"] == 2022
    assert manifest["config"]["trainer"]["max_epochs"] == 2
    assert {"python", "torch", "pytorch_lightning", "torchmetrics"} <= set(manifest["software"]) and manifest["devices"]
    installed = importlib.metadata.version("torch")  # the distribution's version, without torch's +cu suffix
    assert manifest["software"]["requirements"]["torch"] == installed
    assert f"torch=={installed}" in (run_dir / "environment.txt").read_text().splitlines()
    assert manifest["host"] == socket.gethostname()
    assert manifest["start_time"] <= manifest["end_time"] and manifest["duration_s"] > 0
    rows = history(run_dir)
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert all(math.isfinite(float(row[MONITOR])) and row["train/loss_epoch"] for row in rows)

    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    capsys.readouterr()
    assert main(["fit", "-c", EXAMPLE, *fast_args, "--trainer.max_epochs=2"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "already holds a run's results" in errors[0] and "--run.overwrite true" in errors[0]
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before

    assert main(["test", "-c", EXAMPLE, *fast_args, "--ckpt_path", "last"]) == 0
    assert TEST_METRIC in json.loads((run_dir / "metrics.json").read_text())["tests"]["last.ckpt"]
    assert main(["fit", "-c", EXAMPLE, *fast_args, "--trainer.max_epochs=3", "--ckpt_path", "last"]) == 0
    assert "tests" not in json.loads((run_dir / "metrics.json").read_text())  # it scored last.ckpt before the resume
    assert [row["epoch"] for row in history(run_dir)] == ["0", "1", "2"]
    assert history(run_dir)[:2] == rows  # the resumed run continued the history
    resumed = json.loads((run_dir / "manifest.json").read_text())
    assert resumed["status"] == "finished" and resumed["resumed_from"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert [attempt["status"] for attempt in resumed["earlier_attempts"]] == ["finished"]
    assert sorted(p.name for p in (tmp_path / "res" / "example").iterdir()) == ["version_0"]

    (run_dir / "checkpoints" / "stale.ckpt").write_text("from the old run")
    (run_dir / "run.log").write_text("sh/run.py's log of this run\n")
    assert main(["fit", "-c", EXAMPLE, *fast_args, "--trainer.max_epochs=1", "--run.overwrite", "true"]) == 0
    assert [row["epoch"] for row in history(run_dir)] == ["0"]
    assert json.loads((run_dir / "manifest.json").read_text())["earlier_attempts"] == []
    assert not (run_dir / "checkpoints" / "stale.ckpt").exists()  # the old results were removed first
    assert (run_dir / "run.log").read_text() == "sh/run.py's log of this run\n"  # the runner's log was kept


def test_last_checkpoint_is_the_last_epoch_even_when_the_best_is_older(tmp_path, fast_args):
    run_dir = tmp_path / "res" / "example" / "version_0"
    # lr 0: the model never changes, so its score never improves after the first epoch
    assert main(["fit", "-c", EXAMPLE, *fast_args, "--trainer.max_epochs=3", "--optimizer.init_args.lr=0"]) == 0
    fit = json.loads((run_dir / "metrics.json").read_text())["fit"]
    assert [p.name for p in (run_dir / "checkpoints").glob("epoch*.ckpt")] == [
        "epoch000-%s%.4f.ckpt" % (MONITOR.replace("/", "_"), fit["best_score"])]
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert (last["epoch"], last["global_step"]) == (2, fit["global_step"])  # the end of the third epoch


def test_a_fit_that_raises_is_recorded_as_failed(tmp_path, fast_args, monkeypatch):
    def broken_step(self, batch, batch_idx):
        raise RuntimeError("a bug in training_step")

    monkeypatch.setattr(model_class(), "training_step", broken_step)
    run_dir = tmp_path / "res" / "example" / "version_0"
    with pytest.raises(RuntimeError, match="a bug in training_step"):  # a bug keeps its traceback
        main(["fit", "-c", EXAMPLE, *fast_args])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["exit_status"] == 1
    assert "a bug in training_step" in manifest["error"] and manifest["end_time"]
