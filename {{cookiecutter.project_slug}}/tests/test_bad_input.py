"""Mistakes in configs and on main.py's command line: one ERROR line, a non-zero exit, nothing written.

Each case runs main() in-process on a copy of the first experiment's configs and checks the
message, the exit status, that the project tree is byte-for-byte unchanged and that no
results folder appeared.
"""
import hashlib
import shutil

import pytest
import yaml

from conftest import DATASET, PROJECT_ROOT
from main import main
from runtime.errors import refused_setting

EXPERIMENT = "{{ cookiecutter.experiment_name }}"
PARSE_ERROR = 2
DATA_ERROR = 1


def snapshot(root):
    """Every file and folder under ``root``: size, modification time and, below 1 MB, a hash of its bytes."""
    state = {}
    for path in sorted(root.rglob("*")):
        if {"__pycache__", ".pytest_cache", ".git"} & set(path.parts):
            continue
        if path.is_file():
            stat = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.st_size < 2**20 else ""
            state[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns, digest)
        else:
            state[str(path.relative_to(root))] = "folder"
    return state


@pytest.fixture
def experiment(tmp_path):
    """A copy of the first experiment's config folder, free to break."""
    copy = tmp_path / "config" / EXPERIMENT
    shutil.copytree(PROJECT_ROOT / "config" / EXPERIMENT, copy)
    return copy


@pytest.fixture
def refused(tmp_path, fast_args, capsys):
    """Run main.py with ``args`` (then the quick-run arguments, then ``overrides``); assert one ERROR line
    holding ``message``, the exit ``status``, and that nothing was written."""

    def check(args, message, status=PARSE_ERROR, overrides=()):
        before = snapshot(PROJECT_ROOT)
        capsys.readouterr()
        assert main([*args, *fast_args, *overrides]) == status
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
        assert len(errors) == 1, err
        assert message in errors[0], errors[0]
        assert "Traceback" not in err and "usage:" not in err, err
        assert snapshot(PROJECT_ROOT) == before
        assert not (tmp_path / "res").exists()
        return errors[0]

    return check


def fit_args(experiment):
    return ["fit", "-c", str(experiment / "share.yaml"), "-c", str(experiment / "version_0" / "version.yaml")]


def test_malformed_version_yaml_names_the_file_and_line(refused, experiment):
    version = experiment / "version_0" / "version.yaml"
    version.write_text("run:\n  experiment: x\n  version: [version_0\n")
    line = refused(fit_args(experiment), f"ERROR: {version}:")
    assert line.startswith(f"ERROR: {version}:4:") or line.startswith(f"ERROR: {version}:3:"), line


def test_tab_indented_share_yaml_names_the_file_and_line(refused, experiment):
    share = experiment / "share.yaml"
    text = share.read_text() + "trainer:\n\tmax_epochs: 3\n"
    share.write_text(text)
    tab_line = text.splitlines().index("\tmax_epochs: 3") + 1
    line = refused(fit_args(experiment), f"ERROR: {share}:{tab_line}:")
    assert "cannot start any token" in line


def test_version_yaml_that_is_not_a_mapping_is_refused(refused, experiment):
    version = experiment / "version_0" / "version.yaml"
    version.write_text("- lr: 0.1\n")
    refused(fit_args(experiment), f"ERROR: {version}:1: expected 'key: value' settings, found a list")


@pytest.mark.parametrize("text", ["", "# only a comment\n"], ids=["empty", "comments only"])
def test_a_version_yaml_without_settings_changes_nothing_and_names_the_run(experiment, text, capsys):
    version = experiment / "version_0" / "version.yaml"
    version.write_text(text)
    with pytest.raises(SystemExit):
        main([*fit_args(experiment), "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["run"]["experiment"] == EXPERIMENT and printed["run"]["version"] == "version_0"
    share = yaml.safe_load((experiment / "share.yaml").read_text())
    assert printed["model"]["class_path"] == share["model"]["class_path"]


def test_unknown_key_in_version_yaml_names_the_key_and_the_file(refused, experiment):
    version = experiment / "version_0" / "version.yaml"
    version.write_text(version.read_text() + "trainer:\n  max_epohcs: 3\n")
    refused(fit_args(experiment), f"does not accept option 'trainer.max_epohcs' (in {version})")


def test_unknown_model_argument_names_the_option(refused, experiment):
    version = experiment / "version_0" / "version.yaml"
    version.write_text(version.read_text() + "model:\n  init_args:\n    dropuot: 0.1\n")
    refused(fit_args(experiment), f"Option 'dropuot' is not accepted (in {version})")


def test_unknown_command_line_option_is_refused(refused, experiment):
    refused([*fit_args(experiment), "--trainer.max_epohcs=3"], "unrecognized arguments: --trainer.max_epohcs=3")


def test_class_path_missing_from_its_module_is_refused(refused, experiment):
    refused([*fit_args(experiment), "--model.class_path=model.NoSuchNet"],
            "class_path 'model.NoSuchNet': module 'model' has no attribute 'NoSuchNet'")


def test_class_path_of_a_module_that_does_not_exist_is_refused(refused, experiment):
    version = experiment / "version_0" / "version.yaml"
    version.write_text(version.read_text() + "optimizer:\n  class_path: no_such_package.Adam\n")
    refused(fit_args(experiment), "class_path 'no_such_package.Adam': No module named 'no_such_package'")


def test_value_of_the_wrong_type_is_refused(refused, experiment):
    refused([*fit_args(experiment), "--trainer.max_epochs=ten"],
            'Parser key "trainer.max_epochs": Expected a <class \'int\'> (given value: ten)')


def test_missing_config_file_is_refused(refused, experiment):
    refused(["fit", "-c", str(experiment / "no_such.yaml")], "File does not exist")


@pytest.mark.parametrize("override,message", [
    ("--trainer.devices=0", "MisconfigurationException: `Trainer(devices='0')` value is not a valid input"),
    ("--trainer.strategy=nope", "ValueError: You selected an invalid strategy name: `strategy='nope'`"),
    ("--trainer.max_epochs=-5", "`max_epochs` must be a non-negative integer or -1"),
    ("--trainer.accelerator=tpu", "ModuleNotFoundError: Requirement 'torch_xla"),
    ("--data.init_args.batch_size=0", "data.init_args.batch_size must be a positive integer, got 0"),
    ("--data.init_args.val_fraction=1.5", "data.init_args.val_fraction must be between 0 and 1"),
    ("--run.version=..", "run.version name '..' is not a safe folder name"),
    ("--run.experiment=a/b", "run.experiment name 'a/b' is not a safe folder name"),
], ids=["devices 0", "strategy", "max_epochs", "tpu", "batch_size", "val_fraction", "version ..", "experiment a/b"])
def test_a_setting_lightning_or_the_data_refuses_is_one_line(refused, experiment, override, message):
    refused(fit_args(experiment), message, status=DATA_ERROR, overrides=[override])


@pytest.mark.parametrize("abbreviation", ["--trainer.max_epoch=1", "--run.over=true"])
def test_abbreviated_options_are_refused_not_guessed(refused, experiment, abbreviation):
    refused(fit_args(experiment), f"unrecognized arguments: {abbreviation}", overrides=[abbreviation])


def test_a_bug_in_the_project_s_own_code_keeps_its_traceback():
    try:
        raise ValueError("a bug in model/ or data/")  # raised here, in the project's code
    except ValueError as error:
        assert refused_setting(RuntimeError("while building")) is None
        assert refused_setting(error) is None


def test_unknown_subcommand_is_refused(refused):
    refused(["train"], "invalid choice: 'train'")


@pytest.mark.skipif(DATASET != "imagefolder", reason="imagefolder projects only")
def test_imagefolder_pointed_at_a_missing_folder_is_refused(refused, experiment, tmp_path):
    missing = tmp_path / "no_images"
    refused(fit_args(experiment), f"image folder {missing / 'train'} does not exist",
            status=DATA_ERROR, overrides=[f"--data.init_args.data_dir={missing}"])


@pytest.mark.skipif(DATASET != "imagefolder", reason="imagefolder projects only")
def test_imagefolder_pointed_at_an_empty_folder_is_refused(refused, experiment, tmp_path):
    empty = tmp_path / "images"
    (empty / "train").mkdir(parents=True)
    refused(fit_args(experiment), f"image folder {empty / 'train'} has no class sub-folders",
            status=DATA_ERROR, overrides=[f"--data.init_args.data_dir={empty}"])
