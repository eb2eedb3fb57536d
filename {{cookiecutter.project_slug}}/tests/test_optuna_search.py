"""Optuna search: the pruning callback reports to its trial and stops a pruned one; the search's helpers."""
from types import SimpleNamespace

import optuna
import pytest
import torch

import optuna_search
from _experiments import UsageError, ensure_experiment
from _runner import Outcome
from _search import load_spec
from conftest import PROJECT_ROOT
from contract import ConfigError
from runtime.errors import masked
from runtime.optuna_trials import OptunaPruning, make_pruner, open_storage, was_pruned

optuna.logging.set_verbosity(optuna.logging.WARNING)
PRUNER = {"median": {"n_startup_trials": 1}}


@pytest.fixture
def study(tmp_path):
    """A study on SQLite holding one finished trial that scored 0.9 at every epoch."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize", pruner=make_pruner(PRUNER))
    done = study.ask()
    for epoch in range(3):
        done.report(0.9, epoch)
    study.tell(done, 0.9)
    return study, url


def validate(callback, score, epoch=0):
    """One validation epoch seen by the callback; returns the (fake) trainer."""
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, world_size=1, should_stop=False,
                              current_epoch=epoch, callback_metrics={"val/acc": torch.tensor(score)})
    if epoch == 0:
        callback.on_fit_start(trainer, None)
    callback.on_validation_end(trainer, None)
    return trainer


def test_a_trial_worse_than_the_median_is_reported_and_stopped(study):
    study, url = study
    trial = study.ask()
    callback = OptunaPruning(url, "s", trial.number, monitor="val/acc", pruner=PRUNER)
    trainer = validate(callback, 0.5)
    assert trainer.should_stop and was_pruned(url, trial) and callback.run_status == "pruned"
    assert study.get_trials()[trial.number].intermediate_values == {0: 0.5}


def test_a_good_trial_keeps_training_and_reports_every_epoch(study):
    study, url = study
    trial = study.ask()
    callback = OptunaPruning(url, "s", trial.number, monitor="val/acc", pruner=PRUNER)
    assert not any(validate(callback, score, epoch).should_stop for epoch, score in enumerate((0.92, 0.95)))
    assert callback.run_status is None
    assert study.get_trials()[trial.number].intermediate_values == pytest.approx({0: 0.92, 1: 0.95})
    assert not was_pruned(url, trial)


def test_rerunning_a_finished_trial_trains_without_reporting(study):
    study, url = study
    trainer = validate(OptunaPruning(url, "s", 0, monitor="val/acc", pruner=PRUNER), 0.1)
    assert not trainer.should_stop
    assert study.get_trials()[0].intermediate_values == {0: 0.9, 1: 0.9, 2: 0.9}


def test_pruner_settings():
    assert isinstance(make_pruner("none"), optuna.pruners.NopPruner)
    assert isinstance(make_pruner("median"), optuna.pruners.MedianPruner)
    assert make_pruner({"median": {"n_startup_trials": 7}})._n_startup_trials == 7
    for bad in ("hyperband", {"median": {"nope": 1}}, {"median": 1}):
        with pytest.raises(ValueError):
            make_pruner(bad)


def test_storage_url_is_absolute_and_waits_for_other_workers(tmp_path):
    experiment = tmp_path / "config" / "exp"
    experiment.mkdir(parents=True)
    (experiment / "share.yaml").write_text(f"run:\n  res_dir: {tmp_path / 'res'}\n")
    assert optuna_search.storage_url(None, experiment, []) == f"sqlite:///{tmp_path}/res/exp/optuna.db?timeout=60"
    assert optuna_search.storage_url("sqlite:///db/s.db", experiment, []) == f"sqlite:///{PROJECT_ROOT}/db/s.db?timeout=60"
    assert optuna_search.storage_url("postgresql://host/db", experiment, []) == "postgresql://host/db"


def test_a_storage_url_with_a_password_is_refused_since_version_yaml_files_would_hold_it():
    with pytest.raises(UsageError, match="the URL holds a password.*~/.pgpass"):
        optuna_search.check_storage("postgresql://me:secret@host/db")
    optuna_search.check_storage("postgresql://me@host/db")  # the password in ~/.pgpass: fine
    optuna_search.check_storage(None)


@pytest.mark.parametrize("url,message", [
    ("nosuchdb://host/db", "unknown database kind 'nosuchdb'"),
    ("just words", "not a database URL"),
    ("sqlite:////no/such/folder/study.db", "the database does not answer"),
    ("postgresql+nosuchdriver://me@host/db", "unknown database kind"),
    ("mssql+pymssql://me@localhost:1/db", "its database driver is not installed"),
], ids=["unknown scheme", "malformed", "unreachable", "unknown driver", "driver missing"])
def test_a_storage_that_cannot_work_is_one_line_before_anything_is_written(tmp_path, url, message):
    config = tmp_path / "config"
    with pytest.raises(UsageError, match=f"--storage .*: {message}"):
        optuna_search.main(["-e", "opt", "-c", str(config), "--storage", url, "--trials", "1"])
    assert not config.exists()


def test_a_password_in_a_url_is_masked_in_what_is_shown():
    assert masked("postgresql://me:secret@host:5432/db") == "postgresql://me:***@host:5432/db"
    assert masked("sqlite:///res/opt/optuna.db") == "sqlite:///res/opt/optuna.db"
    with pytest.raises(ConfigError) as refused:
        open_storage("nosuchdb://me:secret@host/db")
    assert "secret" not in str(refused.value) and "me:***@host" in str(refused.value)


def test_trial_value_is_the_best_metric_of_its_history(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("epoch,step,val/acc,val/loss\n0,3,0.5,2.0\n1,6,0.7,1.5\n2,9,0.6,1.6\n")
    assert optuna_search.objective_value(history, "val/acc", "maximize") == 0.7
    assert optuna_search.objective_value(history, "val/loss", "minimize") == 1.5
    assert optuna_search.objective_value(history, "val/f1", "maximize") is None


def test_the_objective_is_the_experiment_s_run_monitor_and_mode(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("pruner: none\noptimizer.init_args.lr: {log_uniform: [1.0e-4, 1.0e-1]}\n")
    config = {"run": {"monitor": "val/mse", "mode": "min"}}
    assert optuna_search.objective(load_spec(spec, optuna_search.SETTINGS), config) == ("val/mse", "minimize", "none")
    spec.write_text(spec.read_text() + "metric: val/acc\ndirection: maximize\n")
    with pytest.raises(UsageError, match="metric and direction moved to the experiment's config: .*run.monitor"):
        optuna_search.objective(load_spec(spec, optuna_search.SETTINGS), config)


def test_a_first_trial_that_fails_stops_the_search_with_its_error_line(tmp_path, monkeypatch, study):
    study, url = study
    experiment, _ = ensure_experiment("exp", tmp_path / "config", PROJECT_ROOT / "config" / "template.yaml")
    share = experiment / "share.yaml"
    share.write_text(share.read_text().replace("  res_dir: res\n", f"  res_dir: {tmp_path / 'res'}\n", 1))
    error = "exit 1: ERROR: run.monitor val/accuracy was not logged by validation (it logged: val/acc, val/loss)"

    def failed(versions, *args, **kwargs):
        [version] = versions
        return [Outcome(version, "failed", error)]

    monkeypatch.setattr(optuna_search, "run_versions", failed)
    fresh = optuna.create_study(study_name="fresh", storage=url, direction="maximize")
    distributions = {"optimizer.init_args.lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    with pytest.raises(UsageError, match=r"trial 0 failed and no trial has finished: .*val/accuracy was not logged"):
        optuna_search.run_trial(fresh, distributions, experiment, url, "val/accuracy", "maximize", PRUNER, [])
    assert fresh.get_trials()[-1].state.name == "FAIL"
