"""Baked projects work: their own tests pass, a real fit writes its results, configs parse everywhere."""
import csv
import json
import os
import shlex
import sys

import pytest
from conftest import bake, run_python
from test_bake_choices import CASE_IDS, CASES, family_of

pytestmark = pytest.mark.slow

# A representative subset: every task, every image dataset, every model of the image classifier, every logger and
# search choice appears at least once. Their own slow tests (every debug preset trained) run once, in
# tests/test_choices_run.py.
REPRESENTATIVE = [
    {},
    {"dataset": "digits", "model": "cnn", "logger": "csv", "hparam_search": "optuna"},
    {"dataset": "cifar10", "model": "mlp", "logger": "none", "hparam_search": "none"},
    {"dataset": "fashion_mnist", "model": "cnn", "logger": "mlflow"},
    {"dataset": "imagefolder", "model": "cnn", "logger": "wandb"},
    {"task": "autoencoder"},
    {"task": "tabular", "dataset": "diabetes", "logger": "csv"},
    {"task": "text_classification", "dataset": "jsonl", "model": "bag"},
]
FAST_TRAINER = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=2",
                "--trainer.limit_test_batches=2", "--trainer.enable_progress_bar=false"]
MONITORS = {"image_classification": ("val/acc", "max"), "autoencoder": ("val/loss", "min"),
            "tabular": ("val/acc", "max"), "regression": ("val/mse", "min"), "text_classification": ("val/acc", "max")}
OFFLINE = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "WANDB_MODE": "offline"}


def fake_data_args(project, answers, tmp_path):
    """Write a tiny dataset with the project's own test helpers; return main.py arguments using it."""
    sys.path.insert(0, str(project / "tests"))
    try:
        import fakes
    finally:
        sys.path.pop(0)
        sys.modules.pop("fakes", None)  # the next bake has its own
    task, dataset, _ = family_of(answers)
    root = tmp_path / "datasets"
    if task == "text_classification":
        fakes.write_texts(root, dataset)
        return [f"--data.init_args.train_file={root / f'train.{dataset}'}",
                f"--data.init_args.test_file={root / f'test.{dataset}'}"]
    if task == "tabular" and dataset == "csv":
        return [f"--data.init_args.source={fakes.write_table(root / 'table.csv')}"]
    writers = {"mnist": lambda: fakes.write_mnist(root, "MNIST"),
               "fashion_mnist": lambda: fakes.write_mnist(root, "FashionMNIST"),
               "cifar10": lambda: fakes.write_cifar10(root),
               "imagefolder": lambda: fakes.write_imagefolder(root)}
    if dataset not in writers:
        return []  # bundled with scikit-learn
    writers[dataset]()
    return [f"--data.init_args.data_dir={root}"]


@pytest.mark.parametrize("answers", REPRESENTATIVE, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()) or "defaults")
def test_project_tests_pass_and_a_version_trains(cookies, tmp_path, answers):
    project = bake(cookies, **answers)
    own_tests = run_python(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"], project, env=OFFLINE)
    assert own_tests.returncode == 0, own_tests.stdout[-3000:] + own_tests.stderr[-3000:]

    data_args = fake_data_args(project, answers, tmp_path)
    fit = run_python(["main.py", "fit", "-c", "config/baseline/share.yaml", "-c", "config/baseline/version_0/version.yaml",
                      *data_args, *FAST_TRAINER], project, env=OFFLINE)
    assert fit.returncode == 0, fit.stderr[-3000:]

    run_dir = project / "res" / "baseline" / "version_0"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "config.yaml").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    monitor, mode = MONITORS[family_of(answers)[0] if family_of(answers)[1] != "diabetes" else "regression"]
    assert (metrics["fit"]["status"], metrics["fit"]["monitor"], metrics["fit"]["mode"]) == ("finished", monitor, mode)
    assert "test/" + monitor.split("/")[1] in metrics["test"]
    predicted = run_python(["main.py", "predict", "-c", "config/baseline/share.yaml", "-c",
                            "config/baseline/version_0/version.yaml", *data_args, "--ckpt_path", "best"], project,
                           env=OFFLINE)
    assert predicted.returncode == 0 and (run_dir / "predictions.csv").read_text().startswith("sample_id,"), \
        predicted.stderr[-3000:]
    logger = answers.get("logger", "tensorboard")
    if logger == "tensorboard":
        assert list(run_dir.glob("events.out.tfevents.*"))
    elif logger == "csv":
        assert (run_dir / "metrics.csv").is_file()
    elif logger == "wandb":
        assert (run_dir / "wandb").is_dir()
    elif logger == "mlflow":
        assert (project / "res" / "mlflow.db").is_file()

    # the experiment's second version through sh/run.py (the first is finished), then the report
    runner = run_python(["sh/run.py", "-e", "baseline", "--all_ver", "-o", shlex.join([*data_args, *FAST_TRAINER])],
                        project, env=OFFLINE)
    assert runner.returncode == 0 and "skipped: finished" in runner.stdout, runner.stdout[-3000:]
    report = run_python(["sh/report.py", "-e", "baseline"], project, env=OFFLINE)
    assert report.returncode == 0, report.stderr[-3000:]
    with open(project / "res" / "baseline" / "report" / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    assert [run["status"] for run in runs] == ["finished", "finished"] and all(run[f"best {monitor}"] for run in runs)


def test_missing_mnist_gives_one_clear_line(cookies):
    project = bake(cookies)
    fit = run_python(["main.py", "fit", "-c", "config/example.yaml"], project, env=OFFLINE)
    assert fit.returncode == 1
    last = fit.stderr.strip().splitlines()[-1]
    assert last.startswith("ERROR: MNIST files not found in") and "train-images-idx3-ubyte" in last
    assert "Traceback" not in fit.stderr


# Every bake's two configs and `main.py fit --help`, checked in one process: the project's modules are unloaded
# between bakes, Lightning stays imported (LightningCLI exits after printing).
PRINT_CONFIGS = """
import contextlib, io, os, sys
PROJECT_MODULES = ("main", "contract", "data", "model", "runtime")
for project in sys.argv[1:]:
    os.chdir(project)
    sys.path.insert(0, project)  # as `python main.py` has it: the configs' class paths import from the project
    try:
        from main import main
        for configs in (["config/example.yaml"], ["config/baseline/share.yaml", "config/baseline/version_0/version.yaml"]):
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed), contextlib.suppress(SystemExit):
                main(["fit", *[arg for config in configs for arg in ("-c", config)], "--print_config"])
            assert "class_path: model." in printed.getvalue(), (configs, printed.getvalue()[-2000:])
        helped = io.StringIO()
        with contextlib.redirect_stdout(helped), contextlib.suppress(SystemExit):
            main(["fit", "--help"])
        assert "--trainer.max_epochs" in helped.getvalue() and "--run.experiment" in helped.getvalue(), "fit --help"
        print("ok", project, flush=True)
    except BaseException as error:  # noqa: BLE001 - reported per bake, the others still checked
        print("FAILED", project, repr(error)[:3000], flush=True)
    sys.path.remove(project)
    for name in [name for name in sys.modules if name.split(".")[0] in PROJECT_MODULES]:
        del sys.modules[name]
"""


def test_every_choice_gives_a_valid_lightning_config_and_fit_help(cookies):
    projects = {str(bake(cookies, **answers)): case for answers, case in zip(CASES, CASE_IDS)}
    printed = run_python(["-c", PRINT_CONFIGS, *projects], projects and next(iter(projects)), timeout=1200)
    results = {line.split(" ", 2)[1]: line for line in printed.stdout.splitlines()
               if line.startswith(("ok ", "FAILED "))}
    failed = {projects[path]: line for path, line in results.items() if line.startswith("FAILED")}
    assert printed.returncode == 0 and not failed, failed or printed.stderr[-3000:]
    assert len(results) == len(projects), printed.stdout[-3000:]
