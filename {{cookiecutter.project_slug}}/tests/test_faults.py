"""Faults of input and environment, each one line with nothing lost: checkpoint files that are truncated, empty,
not a checkpoint, a bare state_dict or another model's (for fit, validate, test, predict, resume, analyze,
export, load_network{% if cookiecutter.task == 'image_classification' %}, encoder_checkpoint{% endif %}); a results folder that cannot be made; why a version failed, from its log.

Each case checks the exit status, the one ``ERROR:`` line and that the run's files are unchanged byte for byte.
(A full disk and a process killed in the middle of a write: the template's tests/test_faults.py.)
"""
import csv
import hashlib

import pytest
import torch

import analyze
import export
import report
from _experiments import MAX_NEW_VERSIONS, UsageError, create_experiment
from _runner import failure_line
from conftest import PROJECT_ROOT
from contract import ConfigError, check_checkpoint
from main import main
from model._utils import load_network

EXPERIMENT = "exp"


@pytest.fixture(scope="module")
def trained(module_run):
    """(folder, arguments of its run) of experiment ``exp`` whose version_0 trained two epochs, results beside it."""
    folder, args = module_run
    create_experiment(EXPERIMENT, 1, folder / "config", PROJECT_ROOT / "config" / "template.yaml")
    share = folder / "config" / EXPERIMENT / "share.yaml"
    share.write_text(share.read_text().replace("  res_dir: res\n", f"  res_dir: {folder / 'res'}\n", 1))
    configs = ["-c", str(share), "-c", str(folder / "config" / EXPERIMENT / "version_0" / "version.yaml")]
    assert main(["fit", *configs, *args, "--trainer.max_epochs=2", "--run.test_after_fit=false"]) == 0
    return folder, [*configs, *args]


@pytest.fixture
def run_dir(trained):
    return trained[0] / "res" / EXPERIMENT / "version_0"


@pytest.fixture
def damaged(run_dir, tmp_path):
    """Files that are not checkpoints Lightning can load, by kind."""
    last = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    files = {"truncated": last.read_bytes()[: last.stat().st_size // 2], "empty": b"",
             "text": b"epoch: 3\nweights: not here\n"}
    for name, data in files.items():
        (tmp_path / f"{name}.ckpt").write_bytes(data)
    torch.save(checkpoint["state_dict"], tmp_path / "bare.ckpt")  # weights without Lightning's entries
    first = next(iter(checkpoint["state_dict"]))
    checkpoint["state_dict"].pop(first)  # a Lightning checkpoint of a model with other layers
    torch.save(checkpoint, tmp_path / "other_model.ckpt")
    return {name: tmp_path / f"{name}.ckpt" for name in [*files, "bare", "other_model"]}


def snapshot(folder) -> dict:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file() and path.name != ".lock"}


@pytest.fixture
def refused(trained, run_dir, capsys):
    """main.py ``subcommand`` with the trained run's arguments and ``extra``: exit 1, one ERROR line holding each
    of ``expected``, no traceback, and every file of the run folder unchanged byte for byte (a logger may have
    opened a new event file before the checkpoint was loaded)."""

    def check(subcommand, extra, *expected):
        before = snapshot(run_dir)
        capsys.readouterr()
        assert main([subcommand, *trained[1], *extra]) == 1
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
        assert len(errors) == 1 and "Traceback" not in err, err
        assert all(text in errors[0] for text in expected), errors[0]
        assert before.items() <= snapshot(run_dir).items()
        return errors[0]

    return check


@pytest.mark.parametrize("subcommand,kind", [("test", "truncated"), ("predict", "text"), ("validate", "empty"),
                                             ("fit", "truncated")])
def test_a_file_that_is_not_a_checkpoint_is_one_line_naming_it(refused, damaged, subcommand, kind):
    refused(subcommand, ["--ckpt_path", str(damaged[kind])], str(damaged[kind]), "is not a readable checkpoint")


def test_a_bare_state_dict_is_not_taken_for_a_lightning_checkpoint(refused, damaged):
    refused("fit", ["--ckpt_path", str(damaged["bare"])], str(damaged["bare"]), "is not a Lightning checkpoint")


def test_another_model_s_checkpoint_says_its_weights_do_not_fit(refused, damaged):
    refused("test", ["--ckpt_path", str(damaged["other_model"])], "weights do not fit this model", "Missing key")


def test_a_damaged_last_ckpt_is_not_resumed_and_the_newest_readable_one_is_named(refused, run_dir):
    last = run_dir / "checkpoints" / "last.ckpt"
    kept = last.read_bytes()
    try:
        last.write_bytes(kept[:1000])
        best = next(path for path in (run_dir / "checkpoints").glob("epoch*.ckpt"))
        refused("fit", ["--ckpt_path", "last", "--trainer.max_epochs=3"], "--ckpt_path last", str(last),
                "is not a readable checkpoint", f"newest readable checkpoint of this run is {best}")
    finally:
        last.write_bytes(kept)


def test_a_damaged_best_checkpoint_is_named_for_test(refused, run_dir):
    best = next(path for path in (run_dir / "checkpoints").glob("epoch*.ckpt"))
    kept = best.read_bytes()
    try:
        best.write_bytes(kept[: len(kept) // 3])
        refused("test", ["--ckpt_path", "best"], "--ckpt_path best", str(best), "is not a readable checkpoint")
    finally:
        best.write_bytes(kept)


@pytest.mark.parametrize("script", [analyze, export])
def test_analyze_and_export_name_a_damaged_checkpoint(trained, damaged, script):
    with pytest.raises(UsageError, match="is not a readable checkpoint"):
        script.main(["-e", EXPERIMENT, "-v", "0", "-c", str(trained[0] / "config"), "--ckpt",
                     str(damaged["truncated"])])


@pytest.mark.parametrize("kind,message", [("truncated", "not a readable checkpoint"),
                                          ("bare", "not a Lightning checkpoint")])
def test_load_network_and_check_checkpoint_refuse_what_is_not_a_checkpoint(damaged, run_dir, kind, message):
    with pytest.raises(ConfigError, match=message):
        load_network(damaged[kind])
    assert check_checkpoint(run_dir / "checkpoints" / "last.ckpt") == run_dir / "checkpoints" / "last.ckpt"
{%- if cookiecutter.task == 'image_classification' %}


def test_a_damaged_encoder_checkpoint_is_one_line(refused, damaged):
    refused("fit", [f"--model.init_args.encoder_checkpoint={damaged['truncated']}", "--run.version=encoder"],
            str(damaged["truncated"]), "is not a readable checkpoint")
{%- endif %}


def test_a_later_test_keeps_the_rows_the_fit_logged_to_metrics_csv(trained, run_dir):
    logged = run_dir / "metrics.csv"  # the CSV logger's file
    if not logged.is_file():
        pytest.skip("this project's logger writes no metrics.csv")
    before = list(csv.DictReader(logged.open(newline="")))
    assert main(["test", *trained[1], "--ckpt_path", "last"]) == 0
    after = list(csv.DictReader(logged.open(newline="")))  # the test's columns may have joined the header
    assert len(after) == len(before) + 1 and any(key.startswith("test/") and after[-1][key] for key in after[-1])
    assert [{key: row[key] for key in before[0]} for row in after[:-1]] == before


def test_a_folder_given_for_a_checkpoint_is_named(refused, run_dir):
    refused("test", ["--ckpt_path", str(run_dir)], f"{run_dir} is a folder")


def test_a_slurm_requeue_checkpoint_that_is_missing_or_damaged_is_named(refused, run_dir):
    refused("fit", ["--ckpt_path", "hpc", "--trainer.max_epochs=3"], "holds no SLURM requeue checkpoint")
    requeue = run_dir / "hpc_ckpt_1.ckpt"
    requeue.write_bytes(b"PK\x03\x04 cut short")
    try:
        refused("fit", ["--ckpt_path", "hpc", "--trainer.max_epochs=3"], str(requeue), "is not a readable checkpoint",
                "newest readable checkpoint of this run is")
    finally:
        requeue.unlink()


def test_a_results_folder_that_cannot_be_made_is_one_line(refused, tmp_path):
    in_the_way = tmp_path / "a_file"
    in_the_way.write_text("not a folder")
    refused("fit", [f"--run.res_dir={in_the_way / 'res'}"], "could not write", str(in_the_way))


@pytest.mark.parametrize("log,expected", [
    ("$ python main.py fit\nSeed set\nERROR: unknown key x (in v.yaml)\nmore\n", "ERROR: unknown key x (in v.yaml)"),
    ("$ python main.py fit\nTraceback (most recent call last):\n  File \"m.py\", line 3\n"
     "ZeroDivisionError: division by zero\nException ignored in atexit\n", "ZeroDivisionError: division by zero"),
    ("$ first attempt\nERROR: old reason\n$ second attempt\nTraceback (most recent call last):\n"
     "torch.OutOfMemoryError: CUDA out of memory\n", "torch.OutOfMemoryError: CUDA out of memory"),
    ("$ python main.py fit\nKilled\n", "Killed"),
], ids=["error line", "exception line", "latest attempt", "last line"])
def test_failure_line_says_why_the_latest_attempt_failed(tmp_path, log, expected):
    (tmp_path / "run.log").write_text(log)
    assert failure_line(tmp_path / "run.log") == expected
    assert failure_line(tmp_path / "missing.log") == ""


def test_a_logger_s_own_failed_write_is_named_and_a_full_disk_anywhere_is_one_line(capsys):
    import errno

    from runtime.callbacks import failing_logger
    from runtime.cli import reported_errors

    code = compile("def flush():\n    raise OSError(errno.ENOSPC, 'No space left on device')\n",
                   "/site-packages/tensorboard/summary/writer/event_file_writer.py", "exec")
    scope = {"errno": errno}
    exec(code, scope)  # an error raised inside the tensorboard package, as its writer thread's would be
    with pytest.raises(OSError) as raised:
        scope["flush"]()
    assert failing_logger(raised.value) == "tensorboard"
    assert failing_logger(ValueError("raised here")) is None

    with reported_errors() as outcome:
        raise RuntimeError("the logger failed") from raised.value
    assert outcome.exit_code == 1
    assert capsys.readouterr().err.strip() == ("ERROR: could not write a results file: the disk is full (or over its "
                                               "quota or file-size limit) (No space left on device)")


def test_more_versions_than_one_command_should_write_are_refused_before_any_is(tmp_path):
    config = tmp_path / "config"
    refusal = f"100000 versions is more than one command writes at once .{MAX_NEW_VERSIONS}."
    with pytest.raises(UsageError, match=refusal):
        create_experiment("typo", 100000, config, PROJECT_ROOT / "config" / "template.yaml")
    assert not config.exists()


def test_export_refuses_a_tolerance_that_is_not_positive(trained):
    with pytest.raises(UsageError, match="--tolerance must be a positive number"):
        export.main(["-e", EXPERIMENT, "-v", "0", "-c", str(trained[0] / "config"), "--tolerance", "0"])


def test_report_refuses_an_output_folder_that_is_a_file(trained, tmp_path):
    in_the_way = tmp_path / "report"
    in_the_way.write_text("mine")
    with pytest.raises(UsageError, match="is a file; name a folder"):
        report.main(["-e", EXPERIMENT, "-c", str(trained[0] / "config"), "--out", str(in_the_way)])
    assert in_the_way.read_text() == "mine"
