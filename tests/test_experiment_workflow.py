"""The experiment workflow as a new user meets it, in one project baked with dataset=digits and optuna.

A 2 x 2 grid with 2 seeds is written by hparams.py and run two at a time by run.py (one version
deliberately broken), then summarised by report.py; a run killed mid-training is finished with
--resume; two runners share an experiment; two optuna workers share one SQLite study.
Training is tiny (a few batches) so the whole file stays within a few minutes on 2 CPU cores.
"""
import csv
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml
from conftest import bake, run_python

pytestmark = pytest.mark.slow

TINY = ("--trainer.max_epochs=2 --trainer.limit_train_batches=3 --trainer.limit_val_batches=2 "
        "--trainer.limit_test_batches=2 --trainer.enable_progress_bar=false --trainer.enable_model_summary=false")


@pytest.fixture(scope="module")
def project(cookies_session):
    return bake(cookies_session, dataset="digits", model="mlp", hparam_search="optuna")


def script(project, name):
    return str(project / "sh" / name)


def manifest(project, experiment, k):
    return json.loads((project / "res" / experiment / f"version_{k}" / "manifest.json").read_text())


def wait_until_unlocked(lock_file, timeout=60):
    fd = os.open(lock_file, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                assert time.monotonic() < deadline, f"{lock_file} still locked"
                time.sleep(0.05)
    finally:
        os.close(fd)


def started(output, experiment):
    """Version numbers a runner's output says it started."""
    return [int(line.split(f"{experiment}/version_")[1].split(",")[0].split()[0])
            for line in output.splitlines() if "] started " in line]


def test_grid_runs_two_at_a_time_a_broken_version_fails_alone_and_the_report_averages_seeds(project, tmp_path):
    created = run_python([script(project, "hparams.py"), "-e", "grid", "-s", "config/search/grid.yaml"], project)
    assert created.returncode == 0, created.stderr
    assert created.stdout.count("created config/grid/version_") == 8
    broken = project / "config" / "grid" / "version_5" / "version.yaml"
    broken.write_text(broken.read_text() + "model:\n  init_args:\n    label_smoothing: 2.0\n")  # fails in training

    runner = run_python([script(project, "run.py"), "-e", "grid", "--all_ver", "--jobs", "2", "-o", TINY], tmp_path)
    assert runner.returncode == 1, runner.stdout[-3000:] + runner.stderr[-3000:]  # from another folder
    assert sorted(started(runner.stdout, "grid")) == list(range(8))
    assert re.search(r"\] failed +grid/version_5 ", runner.stdout)
    assert len(re.findall(r"\] finished +grid/version_", runner.stdout)) == 7
    assert "grid/version_5  failed" in runner.stdout and "grid/version_4  finished" in runner.stdout  # the table
    for k in range(8):
        record = manifest(project, "grid", k)
        assert record["status"] == ("failed" if k == 5 else "finished"), (k, record["error"])
        assert (project / "res" / "grid" / f"version_{k}" / "run.log").read_text().startswith("$ ")
    assert "label_smoothing" in manifest(project, "grid", 5)["error"]
    history = (project / "res" / "grid" / "version_0" / "history.csv").read_text().splitlines()
    assert len(history) == 3  # a header and the 2 epochs asked for with -o

    summary = run_python([script(project, "report.py"), "-e", "grid"], tmp_path)
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout.count("±") >= 6 and "failed" in summary.stdout
    out = project / "res" / "grid" / "report"
    with open(out / "runs.csv", newline="") as f:
        statuses = [row["status"] for row in csv.DictReader(f)]
    assert statuses == ["finished"] * 5 + ["failed"] + ["finished"] * 2
    with open(out / "groups.csv", newline="") as f:
        groups = list(csv.DictReader(f))
    # 3 pairs of seeds finished; version_4 and the broken version_5 (its own override) stand alone
    assert sorted(g["finished"] for g in groups) == ["0", "1", "2", "2", "2"]
    for png in ("curves.png", "val-acc_vs_optimizer.init_args.lr.png", "val-acc_vs_data.init_args.batch_size.png"):
        assert (out / png).read_bytes().startswith(b"\x89PNG")


def test_a_run_killed_mid_training_finishes_with_resume_in_the_same_logger_version(project):
    long = TINY.replace("max_epochs=2", "max_epochs=30") + " --run.test_after_fit=false"
    run_dir = project / "res" / "baseline" / "version_0"
    command = [sys.executable, script(project, "run.py"), "-e", "baseline", "-v", "0", "-o", long]
    runner = subprocess.Popen(command, cwd=project, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and runner.poll() is None:
        rows = (run_dir / "history.csv").read_text().splitlines() if (run_dir / "history.csv").exists() else []
        if len(rows) > 3 and (run_dir / "checkpoints" / "last.ckpt").exists():
            break
        time.sleep(0.05)
    assert runner.poll() is None, "the run ended before it could be killed"
    os.killpg(runner.pid, signal.SIGKILL)  # run.py and the training process, as a crash or `kill -9` would
    runner.wait()
    wait_until_unlocked(run_dir / ".lock")  # the dying processes close their files
    assert manifest(project, "baseline", 0)["status"] == "running"

    blocked = run_python([script(project, "run.py"), "-e", "baseline", "-v", "0", "-o", long], project)
    assert blocked.returncode == 1 and "killed run left results: --resume continues it" in blocked.stdout
    resumed = run_python([script(project, "run.py"), "-e", "baseline", "-v", "0", "-o", long, "--resume"], project)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "resume from checkpoints/last.ckpt" in resumed.stdout

    record = manifest(project, "baseline", 0)
    assert record["status"] == "finished" and record["resumed_from"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert [attempt["status"] for attempt in record["earlier_attempts"]] == ["killed"]
    with open(run_dir / "history.csv", newline="") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(30))
    assert len(list(run_dir.glob("events.out.tfevents.*"))) >= 2  # both attempts logged into version_0
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["version_0"]


def test_two_runners_on_one_experiment_never_run_a_version_twice(project):
    created = run_python([script(project, "structure.py"), "-e", "pair", "-v", "3", "--quiet"], project)
    assert created.returncode == 0, created.stderr
    command = [sys.executable, script(project, "run.py"), "-e", "pair", "--all_ver", "-o", TINY]
    runners = [subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [runner.communicate(timeout=600)[0] for runner in runners]
    assert [runner.returncode for runner in runners] == [0, 0], outputs
    assert sorted(started(outputs[0], "pair") + started(outputs[1], "pair")) == [0, 1, 2]
    assert "running elsewhere" in "".join(outputs) or "finished (--rerun" in "".join(outputs)
    for k in range(3):
        record = manifest(project, "pair", k)
        assert record["status"] == "finished" and record["earlier_attempts"] == []


def test_optuna_workers_share_one_sqlite_study_and_each_trial_is_a_version(project):
    command = [sys.executable, script(project, "optuna_search.py"), "-e", "opt", "-s", "config/search/optuna.yaml",
               "--trials", "2", "-o", TINY]
    workers = [subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs

    import optuna

    study = optuna.load_study(study_name="opt", storage=f"sqlite:///{project / 'res' / 'opt' / 'optuna.db'}")
    assert len(study.trials) == 4
    assert {trial.state.name for trial in study.trials} <= {"COMPLETE", "PRUNED"}
    assert sorted(trial.user_attrs["version"] for trial in study.trials) == [f"version_{k}" for k in range(4)]
    for trial in study.trials:
        version_yaml = project / "config" / "opt" / trial.user_attrs["version"] / "version.yaml"
        version = yaml.safe_load(version_yaml.read_text())
        assert version["optimizer"]["init_args"]["lr"] == pytest.approx(trial.params["optimizer.init_args.lr"])
        [pruning] = version["trainer"]["callbacks+"]
        assert pruning["init_args"]["trial_number"] == trial.number
        assert len(trial.intermediate_values) >= 1  # reported by the callback inside the training run
        recorded = manifest(project, "opt", int(trial.user_attrs["version"].split("_")[1]))["status"]
        assert recorded == {"COMPLETE": "finished", "PRUNED": "pruned"}[trial.state.name]
    summary = run_python([script(project, "report.py"), "-e", "opt"], project)
    assert summary.returncode == 0 and "optimizer.init_args.lr" in summary.stdout, summary.stderr
    figures = {path.name for path in (project / "res" / "opt" / "report").glob("optuna_*.png")}
    if sum(trial.state.name == "COMPLETE" for trial in study.trials) >= 2:  # optuna's plots need two finished
        assert figures == {"optuna_opt_history.png", "optuna_opt_importances.png"}
        assert "optuna study opt: importances " in summary.stdout
    else:
        assert not figures and "too few for its plots" in summary.stdout


def test_the_search_scripts_own_tests_pass_in_an_optuna_project(project):
    own = run_python(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_hparams.py",
                      "tests/test_optuna_search.py", "tests/test_report.py", "tests/test_run.py"], project)
    assert own.returncode == 0, own.stdout[-3000:] + own.stderr[-3000:]
