"""The training switches of config/switches/, stacked onto the first experiment of a digits bake, and the two
scripts for a trained version: each one's effect read back from disk (metrics.json, history.csv, checkpoints,
TensorBoard's event files, the analysis and export folders)."""
import csv
import json
import re

import pytest
import torch
from conftest import bake, run_python

pytestmark = pytest.mark.slow

QUICK = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def switch(*names) -> list:
    return [arg for name in names for arg in ("-c", f"config/switches/{name}.yaml")]


def configs(k: int) -> list:
    return ["-c", "config/baseline/share.yaml", "-c", f"config/baseline/version_{k}/version.yaml"]


def fit(project, k: int, *args, run_dir=None):
    """Train baseline/version_k (into ``run_dir`` when ``--run.version`` moves it); its metrics.json."""
    done = run_python(["main.py", "fit", *configs(k), *QUICK, *args], project)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(((run_dir or project / "res" / "baseline" / f"version_{k}") / "metrics.json").read_text())


def events(run_dir):
    """TensorBoard's view of a run folder: every event file read into one accumulator each."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulators = []
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(path), size_guidance={"histograms": 0, "scalars": 0})
        accumulator.Reload()
        accumulators.append(accumulator)
    return accumulators


@pytest.fixture(scope="module")
def project(cookies_session):
    return bake(cookies_session, dataset="digits", model="mlp")


def test_early_stopping_throughput_histograms_and_the_hparams_tab(project):
    """lr 0: the monitored score never improves, so training stops after `patience` validations."""
    args = [*switch("throughput", "histograms", "early_stopping"), "--trainer.max_epochs=8",
            "--optimizer.init_args.lr=0", "--trainer.callbacks+.patience=2"]
    runner = run_python(["sh/run.py", "-e", "baseline", "-v", "0", "-o", " ".join([*QUICK, *args])], project)
    assert runner.returncode == 0, runner.stdout[-3000:]
    assert re.search(r"baseline/version_0 +finished", runner.stdout)
    run_dir = project / "res" / "baseline" / "version_0"
    fit = json.loads((run_dir / "metrics.json").read_text())["fit"]
    stopping = fit["early_stopping"]
    assert stopping["stopped"] and stopping["reason"] == "patience_exhausted" and stopping["monitor"] == "val/acc"
    assert fit["epochs"] < 8 and stopping["stopped_epoch"] == fit["epochs"] - 1
    report = run_python(["sh/report.py", "-e", "baseline"], project)
    assert report.returncode == 0, report.stderr
    with open(run_dir.parent / "report" / "runs.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert (row["status"], row["epochs"]) == ("finished", str(fit["epochs"])) and float(row["samples_per_sec"]) > 0
    assert float(row["peak_memory_mb"]) > 50

    with open(run_dir / "history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    for column in ("train/samples_per_sec", "train/batches_per_sec", "train/flops_per_sec"):
        assert all(float(row[column]) > 0 for row in history), column

    accumulators = events(run_dir)
    histograms = {tag for accumulator in accumulators for tag in accumulator.Tags()["histograms"]}
    assert "parameters/net.head.1.weight" in histograms and "gradients/net.head.1.weight" in histograms
    from tensorboard.plugins.hparams import plugin_data_pb2

    sessions = []
    for accumulator in accumulators:
        try:
            content = accumulator.PluginTagToContent("hparams")
        except KeyError:  # no hparams in this file
            continue
        for raw in content.values():
            data = plugin_data_pb2.HParamsPluginData.FromString(raw)
            if data.HasField("session_start_info"):
                sessions.append(data.session_start_info)
    assert sessions, "no hparams session in the event files"
    hparams = dict(sessions[-1].hparams)
    assert hparams["optimizer.init_args.lr"].number_value == 0
    assert hparams["model.init_args.backbone"].string_value == "mlp"
    hp_metric = [s.value for a in accumulators if "hp_metric" in a.Tags()["scalars"] for s in a.Scalars("hp_metric")]
    assert hp_metric == [pytest.approx(fit["best_score"])]


@pytest.fixture(scope="module")
def ema_run(project):
    """baseline/version_1 with EMA and torch.compile, 3 epochs: the run analyse and export read."""
    metrics = fit(project, 1, *switch("compile", "ema"), "--trainer.max_epochs=3", "--trainer.callbacks+.decay=0.9")
    return project / "res" / "baseline" / "version_1", metrics


def test_ema_tests_the_averaged_weights_and_a_compiled_run_s_checkpoint_loads_uncompiled(project, ema_run):
    run_dir, metrics = ema_run
    best = metrics["fit"]["best_model_path"]
    assert metrics["fit"]["tested_weights"] == f"ema weights of {best.rsplit('/', 1)[1]}"
    saved = torch.load(best, map_location="cpu", weights_only=False)
    averaged, raw = saved["state_dict"], saved["current_model_state"]
    assert not any(key.startswith("_orig_mod") for key in averaged)  # compiled in place: the keys are the model's
    assert any(not torch.equal(averaged[key], raw[key]) for key in averaged)  # the test scored other weights
    retest = run_python(["main.py", "test", *configs(1), *QUICK, "--ckpt_path", "best"], project)
    assert retest.returncode == 0, retest.stderr[-3000:]  # no compile this time
    again = json.loads((run_dir / "metrics.json").read_text())["tests"][best.rsplit("/", 1)[1]]
    assert again["test/acc"] == pytest.approx(metrics["test"]["test/acc"])


def test_swa_saves_its_average_and_that_is_what_is_tested_even_compiled(project):
    run_dir = project / "res" / "baseline" / "swa"
    metrics = fit(project, 1, *switch("swa"), "--trainer.max_epochs=3", "--trainer.callbacks+.swa_epoch_start=0.5",
                  "--run.version=swa", run_dir=run_dir)
    assert metrics["fit"]["tested_weights"] == "swa weights of swa.ckpt"
    swa = run_dir / "checkpoints" / "swa.ckpt"
    assert swa.is_file()
    compiled = run_python(["main.py", "test", *configs(1), *QUICK, *switch("compile"), "--run.version=swa",
                           "--ckpt_path", str(swa)], project)
    assert compiled.returncode == 0, compiled.stderr[-3000:]  # an uncompiled run's checkpoint, tested compiled
    assert json.loads((run_dir / "metrics.json").read_text())["tests"]["swa.ckpt"]["test/acc"] == pytest.approx(
        metrics["test"]["test/acc"], abs=1e-4)


def test_analyze_writes_every_classification_plot_with_its_numbers(project, ema_run):
    run_dir, _ = ema_run
    done = run_python(["sh/analyze.py", "-e", "baseline", "-v", "1"], project)
    assert done.returncode == 0, done.stderr[-3000:]
    analysis = run_dir / "analysis"
    summary = json.loads((analysis / "analysis.json").read_text())
    assert summary["kind"] == "classification" and summary["samples"] == 359
    assert 0 <= summary["expected_calibration_error"] <= 1
    for name in ("confusion_matrix", "per_class", "reliability", "mistakes", "features_pca"):
        assert (analysis / f"{name}.png").read_bytes().startswith(b"\x89PNG"), name
    for name in ("confusion_matrix.csv", "per_class.csv", "calibration.json", "mistakes.csv", "features_pca.csv"):
        assert (analysis / name).stat().st_size > 0, name
    with open(analysis / "confusion_matrix.csv", newline="") as f:
        assert sum(int(v) for row in list(csv.reader(f))[1:] for v in row[1:]) == 359


def test_export_writes_three_formats_that_agree_with_eager_pytorch(project, ema_run):
    run_dir, _ = ema_run
    done = run_python(["sh/export.py", "-e", "baseline", "-v", "1"], project)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    record = json.loads((run_dir / "export" / "export.json").read_text())
    assert set(record["formats"]) == {"torchscript", "onnx", "exported"} and record["std"]
    for name, check in record["formats"].items():
        assert (run_dir / "export" / check["file"]).stat().st_size > 0
        assert check["passed"] and check["max_abs_diff"] <= 1e-4 and check["top1_agreement"] == 1.0, (name, check)


def test_analyze_of_a_regression_draws_predictions_against_truth_and_residuals(cookies):
    project = bake(cookies, task="tabular", dataset="diabetes")
    fit(project, 0, "--trainer.max_epochs=5")
    done = run_python(["sh/analyze.py", "-e", "baseline", "-v", "0"], project)
    assert done.returncode == 0, done.stderr[-3000:]
    analysis = project / "res" / "baseline" / "version_0" / "analysis"
    summary = json.loads((analysis / "analysis.json").read_text())
    assert summary["kind"] == "regression" and summary["samples"] == 88
    for name in ("predicted_vs_true.png", "residuals.png"):
        assert (analysis / name).read_bytes().startswith(b"\x89PNG")
    with open(analysis / "predicted_vs_true.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 88
