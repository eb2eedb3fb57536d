"""sh/analyze.py and sh/export.py on one trained version: the analysis of its family, and exports that agree with
eager PyTorch; the training switches' records."""
import importlib.util
import json

import pytest

import analyze
import export
from _experiments import UsageError, create_experiment
from conftest import PROJECT_ROOT, TASK
from main import main

KIND = {"autoencoder": "autoencoder", "tabular": None, "image_classification": "classification",
        "text_classification": "classification"}[TASK]
SWITCHES = PROJECT_ROOT / "config" / "switches"


@pytest.fixture(scope="module")
def trained(module_run):
    """Experiment ``exp`` (results beside it) whose version_0 trained for two epochs with early stopping."""
    folder, args = module_run
    create_experiment("exp", 1, folder / "config", PROJECT_ROOT / "config" / "template.yaml")
    share = folder / "config" / "exp" / "share.yaml"
    share.write_text(share.read_text().replace("  res_dir: res\n", f"  res_dir: {folder / 'res'}\n", 1))
    assert main(["fit", "-c", str(share), "-c", str(folder / "config" / "exp" / "version_0" / "version.yaml"), *args,
                 "--trainer.max_epochs=2", "-c", str(SWITCHES / "early_stopping.yaml")]) == 0
    return folder


def test_a_fit_records_early_stopping_the_tested_weights_and_its_peak_memory(trained):
    run_dir = trained / "res" / "exp" / "version_0"
    fit = json.loads((run_dir / "metrics.json").read_text())["fit"]
    assert fit["early_stopping"]["monitor"] == fit["monitor"] and fit["early_stopping"]["reason"] in (
        "not_stopped", "patience_exhausted")
    assert fit["tested_weights"].startswith("raw weights of epoch")
    assert json.loads((run_dir / "manifest.json").read_text())["peak_memory_mb"] > 0


def test_analyze_writes_the_analysis_of_the_family(trained, capsys):
    assert analyze.main(["-e", "exp", "-v", "0", "-c", str(trained / "config")]) == 0
    summary = json.loads((trained / "res" / "exp" / "version_0" / "analysis" / "analysis.json").read_text())
    assert summary["kind"] == (KIND or summary["kind"]) and summary["files"]
    for name in summary["files"]:
        assert (trained / "res" / "exp" / "version_0" / "analysis" / name).stat().st_size > 0


@pytest.mark.parametrize("name", ["torchscript", "exported", "onnx"])
def test_each_export_agrees_with_eager_pytorch(trained, name):
    if name == "onnx" and importlib.util.find_spec("onnxscript") is None:
        pytest.skip("the onnx export needs onnx and onnxscript: pip install onnx onnxscript onnxruntime")
    assert export.main(["-e", "exp", "-v", "0", "-c", str(trained / "config"), "--format", name]) == 0
    check = json.loads((trained / "res" / "exp" / "version_0" / "export" / "export.json").read_text())["formats"][name]
    assert check["passed"] and (check.get("checked", True) is False or check["max_abs_diff"] <= 1e-4 * max(
        1.0, check["scale"]))


def test_an_untrained_version_is_one_clear_error(trained):
    create_experiment("exp", 1, trained / "config", PROJECT_ROOT / "config" / "template.yaml")
    with pytest.raises(UsageError, match="exp/version_1 has not been trained"):
        analyze.main(["-e", "exp", "-v", "1", "-c", str(trained / "config")])
