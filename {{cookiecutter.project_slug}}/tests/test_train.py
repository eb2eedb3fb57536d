"""main.py trains end to end and files its outputs under res/<experiment>/<version>."""
import json
import math

from conftest import PROJECT_ROOT, TEST_METRIC
from main import main

EXAMPLE = str(PROJECT_ROOT / "config" / "example.yaml")


def test_fast_dev_run_completes(fast_args):
    assert main(["fit", "-c", EXAMPLE, *fast_args, "--trainer.fast_dev_run=true"]) == 0


def test_first_experiment_version_trains_and_writes_its_results(tmp_path, fast_args):
    experiment = "{{ cookiecutter.experiment_name }}"
    share = PROJECT_ROOT / "config" / experiment / "share.yaml"
    version = PROJECT_ROOT / "config" / experiment / "version_0" / "version.yaml"
    assert main(["fit", "-c", str(share), "-c", str(version), *fast_args]) == 0

    run_dir = tmp_path / "res" / experiment / "version_0"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "config.yaml").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["fit"]["status"] == "finished"
    assert math.isfinite(metrics["test"][TEST_METRIC])


def test_help_lists_the_run_options(capsys):
    try:
        main(["fit", "--help"])
    except SystemExit as exit:
        assert exit.code == 0
    assert "--run.experiment" in capsys.readouterr().out
