"""Bad input never destroys anything: one ERROR line, a non-zero exit, the files as they were.

Covers the cookiecutter answers (hooks/pre_gen_project.py, and sh/structure.py when the
post-generation hook builds the first experiment) and the baked project's scripts, run as real
processes. main.py's config mistakes are checked in-process by the baked project's own
tests/test_bad_input.py; one runs here as a real process to check the whole of its output.
"""
import hashlib
import shutil

import pytest
from conftest import TEMPLATE, run_python
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

UNSAFE_NAME = "is not a safe folder name"
BAD_SLUG = "is not a valid package name"
BAD_ANSWERS = [
    ({"project_name": "123 project"}, f"project_slug '123_project' {BAD_SLUG}"),
    ({"project_slug": "my-project"}, f"project_slug 'my-project' {BAD_SLUG}"),
    ({"project_slug": "class"}, f"project_slug 'class' {BAD_SLUG}"),
    ({"project_name": "Étude spectrale"}, f"project_slug 'étude_spectrale' {BAD_SLUG}"),
    ({"project_name": "Ablations-"}, f"project_slug 'ablations_' {BAD_SLUG}"),
    ({"project_name": 'Say "hi"; rm -rf ~'}, f"""project_slug 'say_"hi";_rm__rf_~' {BAD_SLUG}"""),
    ({"experiment_name": "a/b"}, f"experiment_name 'a/b' {UNSAFE_NAME}"),
    ({"experiment_name": ".."}, f"experiment_name '..' {UNSAFE_NAME}"),
    ({"experiment_name": "has space"}, f"experiment_name 'has space' {UNSAFE_NAME}"),
    ({"experiment_name": "/abs/path"}, f"experiment_name '/abs/path' {UNSAFE_NAME}"),
    ({"n_versions": "0"}, "n_versions '0' must be a positive integer"),
    ({"n_versions": "-1"}, "n_versions '-1' must be a positive integer"),
    ({"n_versions": "abc"}, "n_versions 'abc' must be a positive integer"),
    ({"n_versions": "²"}, "n_versions '²' must be a positive integer"),
    ({"devices": "many"}, "devices 'many' must be 'auto', a positive count"),
    ({"devices": "0"}, "devices '0' must be 'auto', a positive count"),
    ({"devices": "0,1,0"}, "devices '0,1,0' names a GPU twice"),
    ({"strategy": "ddp", "devices": "1"}, "strategy 'ddp' with devices=1 runs a single process"),
    ({"strategy": "ddp", "devices": "3,"}, "strategy 'ddp' with devices=3, runs a single process"),
    ({"experiment_name": "debug"}, "experiment_name 'debug' is taken: config/debug is part of the project"),
    ({"experiment_name": "template.yaml"}, "experiment_name 'template.yaml' is taken: config/template.yaml"),
    ({"task": "tabular", "dataset": "mnist"},
     "dataset 'mnist' does not fit task 'tabular': choose auto or one of breast_cancer, wine, diabetes, csv"),
    ({"task": "text_classification", "dataset": "digits"},
     "dataset 'digits' does not fit task 'text_classification': choose auto or one of csv, jsonl"),
    ({"dataset": "jsonl"}, "dataset 'jsonl' does not fit task 'image_classification': choose auto or one of mnist"),
    ({"task": "autoencoder", "model": "resnet"},
     "model 'resnet' does not fit task 'autoencoder': choose auto or one of cnn, mlp"),
    ({"model": "transformer"}, "model 'transformer' does not fit task 'image_classification'"),
    ({"task": "tabular", "model": "cnn"}, "model 'cnn' does not fit task 'tabular': choose auto or one of mlp"),
]


def only_error_line(stderr):
    """The one ``ERROR:`` line of ``stderr`` (failing when there are none or several)."""
    errors = [line for line in stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr and "usage:" not in stderr, stderr
    return errors[0]


def snapshot(root):
    """Every file and folder under ``root`` with a hash of its bytes (caches ignored)."""
    state = {}
    for path in sorted(root.rglob("*")):
        if {"__pycache__", ".pytest_cache"} & set(path.parts):
            continue
        state[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "/"
    return state


@pytest.mark.parametrize("answers,message", BAD_ANSWERS, ids=[str(answers) for answers, _ in BAD_ANSWERS])
def test_bad_answer_stops_the_bake_with_one_error_line_and_leaves_nothing(tmp_path, capfd, answers, message):
    config = tmp_path / "cookiecutter-config.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'replay'}\ncookiecutters_dir: {tmp_path / 'cookiecutters'}\n")
    output = tmp_path / "out"
    output.mkdir()
    with pytest.raises(FailedHookException, match=r"exit status: 1\)"):
        cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output),
                     config_file=str(config))
    assert message in only_error_line(capfd.readouterr().err)
    assert list(output.iterdir()) == []


@pytest.fixture(scope="module")
def project(cookies_session):
    """One baked project (default answers) that every script case runs in."""
    result = cookies_session.bake()
    assert result.exit_code == 0, result.exception
    return result.project_path


@pytest.fixture
def refused(project):
    """Run a project script; assert one ERROR line holding ``message``, exit 2, and the project unchanged."""

    def check(script, args, message, status=2):
        before = snapshot(project)
        result = run_python([f"sh/{script}", *args], project)
        assert result.returncode == status, result.stdout + result.stderr
        line = only_error_line(result.stderr)
        assert message in line, line
        assert result.stderr.strip() == line, result.stderr
        assert snapshot(project) == before
        return line

    return check


STRUCTURE_CASES = [
    (["-e", "a/b"], f"experiment name 'a/b' {UNSAFE_NAME}"),
    (["-e", ".."], f"experiment name '..' {UNSAFE_NAME}"),
    (["-e", "has space"], f"experiment name 'has space' {UNSAFE_NAME}"),
    (["-e", "/abs/path"], f"experiment name '/abs/path' {UNSAFE_NAME}"),
    (["-e", "new", "-v", "0"], "-v/--v_num must be a positive integer, got 0"),
    (["-e", "new", "-v", "-1"], "-v/--v_num must be a positive integer, got -1"),
    (["-e", "new", "-v", "abc"], "argument -v/--v_num: invalid int value: 'abc'"),
    (["-e", "baseline", "-n", "0"], "version_0 already exists"),
    (["-e", "baseline", "-n", "5", "1"], "version_1 already exists"),
    (["-e", "new", "-n", "-2"], "-n/--numbers must be version numbers >= 0"),
    (["-e", "new", "-v", "2", "-n", "3"], "argument -n/--numbers: not allowed with argument -v/--v_num"),
    (["-v", "2"], "the following arguments are required: -e/--ex_name"),
    (["-e", "new", "-t", "config/no_such_template.yaml"], "no_such_template.yaml does not exist"),
    (["-e", "data", "-c", "."], "data exists and is not an experiment (no share.yaml)"),
]


@pytest.mark.parametrize("args,message", STRUCTURE_CASES, ids=[" ".join(args) for args, _ in STRUCTURE_CASES])
def test_structure_refuses_bad_requests_and_changes_nothing(refused, args, message):
    refused("structure.py", args, message)


RUN_CASES = [
    (["-e", "nope", "-v", "0"], "experiment 'nope' not found in"),
    (["-e", "../baseline", "-v", "0"], f"experiment name '../baseline' {UNSAFE_NAME}"),
    (["-e", "baseline", "-v", "7"], "'baseline' has no version 7 (its versions: 0, 1)"),
    (["-e", "baseline", "-n", "0", "5", "9"], "'baseline' has no version 5, 9 (its versions: 0, 1)"),
    (["-e", "baseline", "-b", "3", "-t", "1"], "empty range -b 3 -t 1"),
    (["-e", "baseline", "-v", "abc"], "argument -v/--v_num: invalid int value: 'abc'"),
]


@pytest.mark.parametrize("args,message", RUN_CASES, ids=[" ".join(args) for args, _ in RUN_CASES])
def test_run_refuses_missing_experiments_and_versions_and_changes_nothing(refused, args, message):
    refused("run.py", args, message)


SPECS = [
    ("", "must map config keys to values"),
    ("optimizer.init_args.lr: [0.1, 0.01\n", "is not valid YAML"),
    ("- optimizer.init_args.lr\n", "must map config keys to values"),
    ("seeds: [0, 1]\n", "names no hyperparameter"),
    ("optimizer.init_args.lr: []\n", "optimizer.init_args.lr needs at least one value"),
]


@pytest.mark.parametrize("spec,message", SPECS, ids=["empty", "malformed", "a list", "seeds only", "no values"])
def test_hparams_refuses_an_empty_or_malformed_search_spec_and_changes_nothing(refused, tmp_path, spec, message):
    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    line = refused("hparams.py", ["-e", "lr_search", "-s", str(path)], message)
    assert str(path) in line, "the message names the spec file"


def test_hparams_refuses_a_missing_spec_file(refused, tmp_path):
    refused("hparams.py", ["-e", "lr_search", "-s", str(tmp_path / "none.yaml")], "none.yaml")


@pytest.mark.parametrize("args,message", [
    (["-e", "baseline"], "baseline has no finished runs to report"),
    (["-e", "nope"], "experiment 'nope' not found in"),
], ids=["no finished runs", "missing experiment"])
def test_report_refuses_experiments_without_results_and_changes_nothing(refused, args, message):
    refused("report.py", args, message)


def test_malformed_version_yaml_is_one_line_naming_file_and_line(project, tmp_path):
    experiment = tmp_path / "baseline"
    shutil.copytree(project / "config" / "baseline", experiment)
    version = experiment / "version_0" / "version.yaml"
    version.write_text("run:\n  experiment: baseline\n  version: version_0\n optimizer: {lr: 0.1}\n")
    before = snapshot(project)
    result = run_python(["main.py", "fit", "-c", experiment / "share.yaml", "-c", version], project)
    assert result.returncode == 2
    line = only_error_line(result.stderr)
    assert line.startswith(f"ERROR: {version}:4: "), line
    assert result.stderr.strip() == line, result.stderr
    assert snapshot(project) == before
