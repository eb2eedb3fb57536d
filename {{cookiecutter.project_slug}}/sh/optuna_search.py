#!/usr/bin/env python
"""Optuna search where every trial is an experiment version, trained the way sh/run.py trains it.

    python sh/optuna_search.py -e optuna_lr -s config/search/optuna.yaml --trials 20
    python sh/optuna_search.py -e optuna_lr -s config/search/optuna.yaml --trials 20   # in a 2nd terminal: a 2nd worker
    python sh/optuna_search.py -e optuna_lr --storage postgresql://host/db --trials 20  # workers on several machines
    python sh/report.py -e optuna_lr

The study (named after the experiment unless --study) lives in res/<exp>/optuna.db unless
--storage names another database (a team's PostgreSQL: ``postgresql://user@host/db``, with the driver
from ``pip install "psycopg[binary]"``); workers started with the same study and storage share it, on one
machine or many. A worker records a heartbeat for its trial every --heartbeat seconds: a trial whose worker
died (killed, its machine lost) is marked failed by the next worker that asks for one, and its version is
left ``interrupted``, to resume with sh/run.py. A database that stops answering ends the worker with one line;
what the study recorded stays in it.
Each trial samples the spec's search space, becomes a new version_k whose version.yaml holds
the sampled values and the pruning callback (runtime/optuna_trials.py), and runs through
sh/run.py's runner (lock, run.log, manifest). The objective is the experiment's ``run.monitor``,
maximised or minimised as ``run.mode`` says: a trial's value is its best in history.csv.
"""
import argparse
import math
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import optuna
from optuna.trial import TrialState

from _experiments import (
    ArgumentParser,
    UsageError,
    Version,
    add_version,
    check_experiment_name,
    ensure_experiment,
    exit_on_usage_error,
    experiment_results_dir,
    merged_configs,
    project_path,
    shown,
    split_main_args,
)
from _runner import run_versions
from _search import check_keys, describe, load_spec, overrides_yaml
from contract import ConfigError
from runtime.errors import masked
from runtime.optuna_trials import database_error, database_errors, make_pruner, open_storage, was_pruned
from runtime.run_folder import DONE, read_csv

SETTINGS = ("pruner", "metric", "direction")  # metric and direction: only to say they moved to run.monitor/mode
PRUNING_CALLBACK = "runtime.optuna_trials.OptunaPruning"


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-e", "--ex_name", required=True,
                        help="experiment the trials become versions of (created if new)")
    parser.add_path_argument("-s", "--spec", default="config/search/optuna.yaml",
                             help="search space and objective (YAML)")
    parser.add_argument("--trials", type=int, default=10, help="trials this worker runs (default 10)")
    parser.add_argument("--storage", help="study database URL (default: sqlite under res/<exp>/optuna.db)")
    parser.add_argument("--study", help="study name (default: the experiment name)")
    parser.add_argument("--heartbeat", type=int, default=60,
                        help="seconds between a trial's heartbeats; a trial silent for twice that is failed by the "
                             "next worker (default 60)")
    parser.add_path_argument("-c", "--config", default="config", help="config folder")
    parser.add_path_argument("--template", default="config/template.yaml", help="share.yaml of a new experiment")
    parser.add_argument("-d", "--desc", default="", help="desc.txt of a new experiment")
    parser.add_arguments_option("-o", "--other_para", action="append", default=[],
                                help='extra main.py arguments, e.g. "--trainer.max_epochs=5" (may be repeated)')
    return parser.parse_args(argv)


def distribution(param) -> optuna.distributions.BaseDistribution:
    """The optuna distribution of one hparams.py Param."""
    if param.kind == "choice":
        if not all(value is None or isinstance(value, (bool, int, float, str)) for value in param.values):
            raise UsageError(f"{param.key}: optuna chooses among numbers, strings, booleans or null only")
        return optuna.distributions.CategoricalDistribution(param.values)
    if param.kind == "int":
        return optuna.distributions.IntDistribution(int(param.low), int(param.high))
    return optuna.distributions.FloatDistribution(param.low, param.high, log=param.kind == "log_uniform")


def check_storage(url) -> None:
    """A --storage URL must hold no password: every trial's version.yaml (tracked by git) names the URL."""
    if url and masked(url) != url:
        raise UsageError("--storage: the URL holds a password, and every trial's version.yaml would hold it too; "
                         "leave it out and keep it where the database client looks (PostgreSQL: ~/.pgpass, "
                         "MySQL: ~/.my.cnf)")


def storage_url(url, experiment_dir: Optional[Path] = None, main_args=()) -> str:
    """An absolute database URL (version.yaml files name it): a relative SQLite path is relative to the project;
    None: ``res/<exp>/optuna.db`` of ``experiment_dir``."""
    sqlite = "sqlite:///"
    if url is None:
        database = experiment_results_dir(experiment_dir, main_args) / "optuna.db"
        database.parent.mkdir(parents=True, exist_ok=True)
        url = sqlite + str(database)
    elif url.startswith(sqlite) and not url.startswith(sqlite + "/"):
        url = sqlite + str(project_path(url[len(sqlite):]))
    if url.startswith(sqlite) and "timeout=" not in url:
        url += ("&" if "?" in url else "?") + "timeout=60"  # workers wait for each other's writes
    return url


def retried(action, attempts=5, again=lambda error: True):
    """``action()``, tried again after a pause while it raises an error ``again`` accepts: workers racing to create
    the study's tables and the study itself."""
    for attempt in range(attempts):
        try:
            return action()
        except Exception as error:
            if attempt == attempts - 1 or not again(error):
                raise
        time.sleep(0.5 + attempt / 2)


def say_failed(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    version = trial.user_attrs.get("version", "its version")
    print(f"trial {trial.number} ({version}): failed: its worker stopped sending heartbeats", flush=True)


def opened(url: str, heartbeat: int) -> optuna.storages.RDBStorage:
    """The study database (runtime/optuna_trials.py's open_storage) with optuna's trial heartbeat; one UsageError
    line naming the URL when it cannot work."""
    options = dict(heartbeat_interval=heartbeat, grace_period=2 * heartbeat, heartbeat_stale_trial_callback=say_failed)
    try:
        return retried(lambda: open_storage(url, **options), again=lambda error: "does not answer" in str(error))
    except ConfigError as error:
        raise UsageError(str(error)) from None


@contextmanager
def heartbeat(storage: optuna.storages.RDBStorage, trial_id: int):
    """Record the trial's heartbeat now and every heartbeat interval while the block runs (optuna's ask-and-tell
    has no thread of its own for it). A database that stops answering is left for the worker's next call to
    report: this thread only stops beating."""
    stop = threading.Event()

    def beat():
        while True:
            try:
                storage.record_heartbeat(trial_id)
            except database_errors():
                return
            if stop.wait(storage.get_heartbeat_interval()):
                return

    storage.record_heartbeat(trial_id)
    thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def open_study(name, storage, direction, pruner) -> optuna.Study:
    """Create the study, or load it when another worker did."""
    return retried(lambda: optuna.create_study(study_name=name, storage=storage, direction=direction, pruner=pruner,
                                               load_if_exists=True))


def objective_value(history_file: Path, metric: str, direction: str):
    """The best ``metric`` over the run's history.csv rows, or None when it never appears."""
    values = []
    for row in read_csv(history_file):
        try:
            value = float(row.get(metric) or "nan")
        except ValueError:
            continue
        if not math.isnan(value):
            values.append(value)
    if not values:
        return None
    return max(values) if direction == "maximize" else min(values)


def trial_overrides(point: dict, url: str, study: str, number: int, pruner) -> str:
    init_args = dict(storage=url, study_name=study, trial_number=number, pruner=pruner)  # monitor: run.monitor
    callback = {"class_path": PRUNING_CALLBACK, "init_args": init_args}
    return overrides_yaml({**point, "trainer.callbacks+": [callback]})


def objective(spec, experiment_config) -> tuple:
    """(metric, direction, pruner setting): the experiment's run.monitor and run.mode, and the spec's pruner."""
    settings = dict(spec.settings)
    moved = [key for key in ("metric", "direction") if key in settings]
    if moved:
        raise UsageError(f"{spec.source}: {' and '.join(moved)} moved to the experiment's config: the objective is "
                         "run.monitor, maximised or minimised as run.mode says (set them in share.yaml)")
    pruner = settings.get("pruner", "median")
    try:
        make_pruner(pruner)
    except ValueError as error:
        raise UsageError(f"{spec.source}: {error}") from None
    if spec.samples or spec.seeds != (None,):
        raise UsageError(f"{spec.source}: samples and seeds are for sh/hparams.py; --trials sets how many trials run")
    if experiment_config is None:
        raise UsageError("main.py cannot read the experiment's config: run "
                         "`python main.py fit -c config/<exp>/share.yaml --print_config` to see why")
    run = experiment_config["run"]
    return run["monitor"], "maximize" if run["mode"] == "max" else "minimize", pruner


def run_trial(study, distributions, experiment_dir, url, metric, direction, pruner, main_args):
    """Ask the study for a point, write it as a new version, train it with sh/run.py's runner, tell the result.

    Returns the trial's final state, or None when Ctrl-C interrupted it.
    """
    optuna.storages.fail_stale_trials(study)  # trials whose worker died
    trial = study.ask(distributions)
    point = {key: trial.params[key] for key in distributions}
    detail = f"optuna trial {trial.number} of study {study.study_name} ({url}):\n{describe(point)}"
    version_dir = add_version(experiment_dir, trial_overrides(point, url, study.study_name, trial.number, pruner),
                              detail)
    trial.set_user_attr("version", version_dir.name)
    print(f"trial {trial.number} -> {shown(version_dir)}: {describe(point)}", flush=True)
    version = Version(experiment_dir, int(version_dir.name.split("_")[1]), tuple(main_args))
    with heartbeat(study._storage, trial._trial_id):
        outcome = run_versions([version], say=lambda line: print(line, flush=True))[0]
    if outcome.status == "interrupted":
        study.tell(trial, state=TrialState.FAIL)
        return None
    value = objective_value(version.paths.history_file, metric, direction)
    if outcome.status not in DONE:
        state = study.tell(trial, state=TrialState.FAIL).state
        if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
            raise UsageError(f"trial {trial.number} failed and no trial has finished: {outcome.note} "
                             f"(log: {shown(version.paths.log_file)}); fix that before searching")
    elif was_pruned(url, trial):
        state = study.tell(trial, state=TrialState.PRUNED).state
    else:
        state = study.tell(trial, value).state
    best = f", best {metric} {value:.4f}" if value is not None else ""
    print(f"trial {trial.number}: {state.name.lower()}{best}", flush=True)
    return state


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.trials < 1:
        raise UsageError(f"--trials must be at least 1, got {args.trials}")
    if args.heartbeat < 1:
        raise UsageError(f"--heartbeat must be at least 1 second, got {args.heartbeat}")
    check_storage(args.storage)
    url = storage_url(args.storage) if args.storage else None
    storage = opened(url, args.heartbeat) if url else None  # a database named by the user: checked before anything
    experiment_dir = args.config / check_experiment_name(args.ex_name)
    template = args.template
    if not template.is_file():
        raise UsageError(f"template {template} does not exist")
    spec = load_spec(args.spec, SETTINGS)
    check_keys([param.key for param in spec.params], experiment_dir, template, f"search spec {spec.source}")
    main_args = split_main_args(args.other_para)
    share = experiment_dir / "share.yaml"
    [config] = merged_configs([["fit", "-c", str(share if share.is_file() else template), *main_args]])
    metric, direction, pruner = objective(spec, config)
    distributions = {param.key: distribution(param) for param in spec.params}

    experiment_dir, _ = ensure_experiment(args.ex_name, args.config, template, args.desc)
    if storage is None:
        url = storage_url(None, experiment_dir, main_args)
        storage = opened(url, args.heartbeat)
    try:
        study = open_study(args.study or args.ex_name, storage, direction, make_pruner(pruner))
        print(f"study {study.study_name} in {masked(url)}: {len(study.trials)} trials so far", flush=True)
        for _ in range(args.trials):
            if run_trial(study, distributions, experiment_dir, url, metric, direction, pruner, main_args) is None:
                return 130
        if any(trial.state == TrialState.COMPLETE for trial in study.get_trials(deepcopy=False)):
            best = study.best_trial
            print(f"best so far: trial {best.number} ({best.user_attrs.get('version')}), {metric} {best.value:.4f}")
    except (*database_errors(), ConfigError) as error:  # ConfigError: open_storage's, reopening it
        opening = isinstance(error, ConfigError)
        why = str(error).split(": ", 1)[-1] if opening else database_error(error)
        print(f"ERROR: the study database {masked(url)} stopped answering ({why}): the trials "
              "it recorded are kept there and every trained version in res/; start the worker again once it answers",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # ask-and-tell with optuna's heartbeat (recorded by this script's own thread), and its fail_stale_trials
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    sys.exit(exit_on_usage_error(main))
