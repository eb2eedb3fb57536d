"""The research contract as a new user meets it: the generated README's "Add your own dataset", "Add your own
model" and "Put them together" sections, followed as written, give a regression task (scikit-learn's diabetes
set, monitored by val/mse, lower is better) with nothing edited outside data/, model/ and one config; then
run.py, hparams.py, report.py and an optuna search work on it.
"""
import csv
import json
import shlex
import subprocess
import sys

import pytest
import yaml
from conftest import bake, code_blocks, readme_section, run_python

pytestmark = pytest.mark.slow

SHORT = "--trainer.max_epochs=3 --trainer.enable_progress_bar=false"


def follow_the_readme(project):
    """Write the README's files and run its commands, exactly as they are printed there."""
    readme = (project / "README.md").read_text()
    for title in ("Add your own dataset", "Add your own model"):
        [code] = code_blocks(readme_section(readme, title), "python")
        first_line, body = code.split("\n", 1)
        (project / first_line.removeprefix("# ")).write_text(body)
    together = readme_section(readme, "Put them together: an experiment")
    structure, run_and_report = code_blocks(together, "bash")
    created = run_python(shlex.split(structure.strip())[1:], project)
    assert created.returncode == 0, created.stderr
    [settings] = code_blocks(together, "yaml")
    path = project / settings.splitlines()[0].removeprefix("# ")
    share, changes = yaml.safe_load(path.read_text()), yaml.safe_load(settings)
    share["run"].update(changes.pop("run"))  # "set run.monitor and run.mode"
    share.update(changes)  # "replace the model: and data: sections"
    path.write_text(yaml.safe_dump(share, sort_keys=False))
    return [shlex.split(line.split("#")[0]) for line in run_and_report.strip().splitlines()]


def history_minimum(run_dir) -> float:
    with open(run_dir / "history.csv", newline="") as f:
        return min(float(row["val/mse"]) for row in csv.DictReader(f))


@pytest.fixture(scope="module")
def project(cookies_session):
    return bake(cookies_session, hparam_search="optuna")


def test_a_regression_task_added_the_readme_s_way_trains_and_every_script_works_on_it(project, tmp_path):
    run, report = follow_the_readme(project)
    assert run[:2] == ["python", "sh/run.py"] and report[:2] == ["python", "sh/report.py"]
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "data/diabetes.py",
                           "model/regressor.py"], cwd=project, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout  # the examples pass the project's own pre-commit rules

    trained = run_python([*run[1:], "-o", SHORT], project)
    assert trained.returncode == 0, trained.stdout[-3000:]
    for k in (0, 1):
        run_dir = project / "res" / "diabetes" / f"version_{k}"
        fit = json.loads((run_dir / "metrics.json").read_text())["fit"]
        assert (fit["status"], fit["monitor"], fit["mode"]) == ("finished", "val/mse", "min")
        assert fit["best_score"] == pytest.approx(history_minimum(run_dir))  # the best checkpoint is the lowest
        assert "val_mse" in fit["best_model_path"]
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["config"]["model"]["init_args"]["num_features"] == 10  # linked from the datamodule

    spec = tmp_path / "lr.yaml"
    spec.write_text("optimizer.init_args.lr: [1.0e-4, 3.0e-2]\n")
    written = run_python(["sh/hparams.py", "-e", "diabetes", "-s", spec], project)
    assert written.returncode == 0 and "run them: python sh/run.py -e diabetes -b 2 -t 4" in written.stdout
    swept = run_python(["sh/run.py", "-e", "diabetes", "-b", "2", "-t", "4", "--jobs", "2", "-o", SHORT], project)
    assert swept.returncode == 0, swept.stdout[-3000:]

    reported = run_python([*report[1:]], project)
    assert reported.returncode == 0, reported.stderr
    with open(project / "res" / "diabetes" / "report" / "runs.csv", newline="") as f:
        runs = {row["version"]: row for row in csv.DictReader(f)}
    for version, row in runs.items():
        assert float(row["best val/mse"]) == pytest.approx(history_minimum(project / "res" / "diabetes" / version))
    assert float(runs["version_3"]["best val/mse"]) < float(runs["version_2"]["best val/mse"])  # lr 0.03 learns

    search = tmp_path / "optuna.yaml"
    search.write_text("pruner: none\noptimizer.init_args.lr: {log_uniform: [1.0e-4, 3.0e-2]}\n")
    searched = run_python(["sh/optuna_search.py", "-e", "diabetes", "-s", search, "--trials", "2", "-o", SHORT],
                          project)
    assert searched.returncode == 0, searched.stdout[-3000:] + searched.stderr[-3000:]
    import optuna

    study = optuna.load_study(study_name="diabetes",
                              storage=f"sqlite:///{project / 'res' / 'diabetes' / 'optuna.db'}")
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    for trial in study.trials:
        assert trial.value == pytest.approx(history_minimum(project / "res" / "diabetes" / trial.user_attrs["version"]))
    assert study.best_value == min(trial.value for trial in study.trials)
