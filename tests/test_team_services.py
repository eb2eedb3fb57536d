"""A team's services, each against the real thing, as the generated README's "A team's services" section prints
them: optuna workers sharing a study on a real PostgreSQL server (two at once, one killed mid-trial, the server
gone mid-study) and an MLflow tracking server that a version trains, resumes and tests against. Streaming data
from a shared disk or a bucket is in test_streaming_data.py."""
import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
from conftest import bake, code_blocks, readme_section, run_python
from services import MlflowServer, Postgres

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("team_services")]  # one worker: shared servers

TINY = ("--trainer.max_epochs=2 --trainer.limit_train_batches=3 --trainer.limit_val_batches=2 "
        "--trainer.limit_test_batches=2 --trainer.enable_progress_bar=false --trainer.enable_model_summary=false")
LONG = TINY.replace("--trainer.max_epochs=2", "--trainer.max_epochs=200")  # minutes: a trial to stop midway
POSTGRES, MLFLOW = "One optuna study in PostgreSQL.", "An MLflow tracking server."  # the README's paragraphs
HEARTBEAT = 2  # seconds; a trial silent for twice that is failed by the next worker


@pytest.fixture(scope="module")
def project(cookies_session):
    return bake(cookies_session, dataset="digits", model="mlp", hparam_search="optuna")


def paragraph(project, title: str) -> str:
    """The section's paragraph headed ``**title**`` with its code, up to the next such heading."""
    text = readme_section((project / "README.md").read_text(), "A team's services")
    start = text.index(f"**{title}**")
    following = text.find("\n**", start + 1)
    return text[start:following if following != -1 else None]


def printed(project, title: str, starts: str) -> str:
    """The README line that starts with ``starts`` in paragraph ``title``'s bash blocks, its comment cut off."""
    lines = [line for block in code_blocks(paragraph(project, title), "bash") for line in block.splitlines()]
    [line] = [line for line in lines if line.startswith(starts)]
    return line.split("  #")[0].strip()


def as_argv(line: str, **replace) -> list:
    """A README command line as an argument list for this interpreter, with its placeholders replaced."""
    for placeholder, value in replace.items():
        line = line.replace(placeholder, value)
    argv = shlex.split(line)
    assert argv[0] == "python", line
    return [sys.executable, *argv[1:]]


# ----------------------------------------------------------------------------------------- optuna on PostgreSQL

@pytest.fixture(scope="module")
def postgres():
    server = Postgres()
    if server.why_not:
        pytest.skip(server.why_not)
    server.create()
    yield server
    server.remove()


def worker(project, postgres, experiment, trials, train_args=TINY):
    """sh/optuna_search.py as the README prints it, against the test's server, started in the background."""
    argv = as_argv(printed(project, POSTGRES, "python sh/optuna_search.py -e team"),
                   **{"postgresql://me@db.lab.example/optuna": postgres.url, "-e team": f"-e {experiment}",
                      "--trials 20": f"--trials {trials}"})
    argv += ["--heartbeat", str(HEARTBEAT), "-o", train_args]
    return subprocess.Popen(argv, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def study(postgres, name):
    import optuna

    return optuna.load_study(study_name=name, storage=postgres.url.replace("postgresql:", "postgresql+psycopg:"))


def manifest(project, experiment, version):
    path = project / "res" / experiment / version / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_two_workers_share_one_postgresql_study_each_trial_a_version_and_report_s_best_is_the_study_s(
        project, postgres):
    workers = [worker(project, postgres, "team", 2) for _ in range(2)]
    outputs = [w.communicate(timeout=900) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trials = study(postgres, "team").trials
    assert sorted(trial.number for trial in trials) == [0, 1, 2, 3]  # no trial number twice
    assert {trial.state.name for trial in trials} <= {"COMPLETE", "PRUNED"}
    versions = [trial.user_attrs["version"] for trial in trials]
    assert sorted(versions) == [f"version_{k}" for k in range(4)]
    for trial in trials:
        version = trial.user_attrs["version"]
        assert f"optuna trial {trial.number} of study team" in (project / "config" / "team" / version /
                                                               "detail_desc.txt").read_text()
        assert manifest(project, "team", version)["status"] == {"COMPLETE": "finished", "PRUNED": "pruned"}[
            trial.state.name]
    reported = run_python(["sh/report.py", "-e", "team"], project)
    assert reported.returncode == 0, reported.stderr
    with open(project / "res" / "team" / "report" / "groups.csv", newline="") as f:
        groups = list(csv.DictReader(f))
    completed = [trial for trial in trials if trial.state.name == "COMPLETE"]
    best = max(float(group["best val/acc mean"]) for group in groups if group["best val/acc mean"])
    assert best == pytest.approx(max(trial.value for trial in completed), abs=1e-6)
    assert best == pytest.approx(study(postgres, "team").best_value, abs=1e-6)


def test_a_worker_killed_mid_trial_leaves_a_trial_the_next_worker_marks_failed(project, postgres):
    killed = worker(project, postgres, "kill", 1, LONG)
    history = project / "res" / "kill" / "version_0" / "history.csv"
    wait_for(lambda: history.exists() and history.read_text().count("\n") >= 2, 300, "the trial's first epochs")
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    # the trial's fit stops with its worker (SIGTERM when its parent dies) and is recorded interrupted
    wait_for(lambda: manifest(project, "kill", "version_0").get("status") == "interrupted", 120, "the fit to stop")
    assert study(postgres, "kill").trials[0].state.name == "RUNNING"
    time.sleep(2 * HEARTBEAT + 1)
    following = worker(project, postgres, "kill", 1)
    out, err = following.communicate(timeout=900)
    assert following.returncode == 0, out + err
    assert "trial 0 (version_0): failed: its worker stopped sending heartbeats" in out
    trials = study(postgres, "kill").trials
    assert [(t.number, t.state.name) for t in trials][0] == (0, "FAIL")
    assert trials[1].state.name in ("COMPLETE", "PRUNED") and trials[1].user_attrs["version"] == "version_1"
    resumed = run_python(["sh/run.py", "-e", "kill", "-v", "0", "--resume", "-o", TINY], project)
    assert resumed.returncode == 0, resumed.stdout[-2000:]  # the interrupted version is a version like any other


def test_a_server_gone_mid_study_is_one_line_and_loses_no_finished_trial(project, postgres):
    gone = worker(project, postgres, "gone", 3, TINY.replace("max_epochs=2", "max_epochs=8"))
    try:
        first_done = project / "res" / "gone" / "version_1" / "history.csv"  # trial 1 under way: trial 0 was told
        wait_for(lambda: first_done.exists(), 600, "the second trial")
        postgres.stop("immediate")
        out, err = gone.communicate(timeout=600)
    finally:
        if postgres.pg_ctl and not postgres_answers(postgres):
            postgres.start()
    assert gone.returncode == 1, out[-2000:] + err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and f"the study database {postgres.url} stopped answering" in errors[0], err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    trials = study(postgres, "gone").trials
    assert trials[0].state.name in ("COMPLETE", "PRUNED") and trials[0].user_attrs["version"] == "version_0"
    assert manifest(project, "gone", "version_0")["status"] in ("finished", "pruned")
    assert manifest(project, "gone", "version_1")["status"] in ("finished", "pruned")  # trained on, unpruned


def postgres_answers(postgres) -> bool:
    from services import answers

    return answers(postgres.port)


# --------------------------------------------------------------------------------------- an MLflow tracking server

VERSION_0 = ["-c", "config/baseline/share.yaml", "-c", "config/baseline/version_0/version.yaml"]
FAST = ["--trainer.limit_train_batches=3", "--trainer.limit_val_batches=2", "--trainer.limit_test_batches=2",
        "--trainer.enable_progress_bar=false", "--trainer.log_every_n_steps=1"]


@pytest.fixture(scope="module")
def mlflow_project(cookies_session):
    return bake(cookies_session, dataset="digits", model="mlp", logger="mlflow", hparam_search="none")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    yield server
    server.stop()


def test_a_version_trains_resumes_and_tests_against_an_mlflow_server_and_its_client_reads_it_back(
        mlflow_project, mlflow_server):
    from mlflow.tracking import MlflowClient

    project, env = mlflow_project, {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    setting = printed(project, MLFLOW, "echo \"MLFLOW_TRACKING_URI=").replace("http://mlflow.lab.example:5000",
                                                                     mlflow_server.url)
    subprocess.run(setting, shell=True, cwd=project, check=True)
    assert f"MLFLOW_TRACKING_URI={mlflow_server.url}" in (project / ".env").read_text()
    argv = as_argv(printed(project, MLFLOW, "python sh/run.py -e baseline -v 0"))
    trained = subprocess.run([*argv, "-o", " ".join(["--trainer.max_epochs=1", *FAST])], cwd=project, env=env,
                             capture_output=True, text=True, timeout=900)
    assert trained.returncode == 0, trained.stdout[-3000:]

    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment = client.get_experiment_by_name("baseline")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == "version_0" and found.info.status == "FINISHED"
    assert found.data.params["backbone"] == "mlp" and found.data.params["num_classes"] == "10"
    assert {"train/loss_epoch", "val/acc", "test/acc"} <= set(found.data.metrics)
    assert len(client.get_metric_history(found.info.run_id, "train/loss_step")) == 3
    resumed = run_python(["main.py", "fit", *VERSION_0, *FAST, "--trainer.max_epochs=2", "--ckpt_path", "last"],
                         project, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    tested = run_python(["main.py", "test", *VERSION_0, *FAST, "--ckpt_path", "last"], project, env=env)
    assert tested.returncode == 0, tested.stderr[-3000:]
    (again,) = client.search_runs([experiment.experiment_id])  # the resume and the test logged into that run
    assert again.info.run_id == found.info.run_id
    assert len(client.get_metric_history(found.info.run_id, "train/loss_step")) == 6
    assert len(client.get_metric_history(found.info.run_id, "test/acc")) == 3  # after each fit, and the test
    assert not (project / "res" / "mlflow.db").exists()  # nothing went to the local store

    mlflow_server.stop()
    refused = run_python(["main.py", "fit", "-c", "config/baseline/share.yaml", "--run.version=version_7", *FAST],
                         project, env=env, timeout=120)
    assert refused.returncode == 1, refused.stderr[-3000:]
    errors = [line for line in refused.stderr.splitlines() if line.startswith("ERROR:")]
    assert errors == [f"ERROR: the MLflow tracking server {mlflow_server.url} (MLFLOW_TRACKING_URI) does not answer "
                      "([Errno 111] Connection refused); start it, correct the address, or unset MLFLOW_TRACKING_URI "
                      "to log into res/mlflow.db"], refused.stderr[-3000:]
    assert "Traceback" not in refused.stderr and not (project / "res" / "baseline" / "version_7").exists()
