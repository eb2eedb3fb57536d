"""scripts/gpu_check.py, the one command for a GPU machine: it refuses at once without a GPU, counts GPUs from
nvidia-smi, judges a trained run, plans a row per strategy and device count, and prints one table (its checks
themselves need a GPU: they ran where one was lent, as the README says)."""
import importlib.util
import json
import math
import subprocess
import sys

import pytest
from conftest import TEMPLATE

spec = importlib.util.spec_from_file_location("gpu_check", TEMPLATE / "scripts" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def fake_nvidia_smi(tmp_path, listing: str, code: int = 0):
    script = tmp_path / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '{listing}'\nexit {code}\n")
    script.chmod(0o755)
    return str(script)


def test_without_a_gpu_it_stops_at_once_with_one_line():
    if gpu_check.gpu_count() > 0:
        pytest.skip("this machine has a GPU: make gpu-check runs for real here")
    done = subprocess.run([sys.executable, str(TEMPLATE / "scripts" / "gpu_check.py")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == ["gpu-check: no NVIDIA GPU here (nvidia-smi lists none); "
                                                "run it on a GPU machine"]


def test_gpus_are_counted_from_nvidia_smi(tmp_path):
    two = "GPU 0: NVIDIA H200 (UUID: GPU-a)\\nGPU 1: NVIDIA H200 (UUID: GPU-b)\\n"
    assert gpu_check.gpu_count(fake_nvidia_smi(tmp_path, two)) == 2
    assert gpu_check.gpu_count(fake_nvidia_smi(tmp_path, "", code=9)) == 0
    assert gpu_check.gpu_count(str(tmp_path / "no-such-program")) == 0


def test_a_missing_bundle_is_one_line_saying_how_to_make_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "gpu_count", lambda: 1)
    monkeypatch.setattr(gpu_check, "BUNDLE", tmp_path / ".gpu-bundle")
    assert gpu_check.main(["--out", str(tmp_path)]) == 1
    assert "run `make gpu-bundle`" in capsys.readouterr().err


def run_folder(tmp_path, status="finished", loss=0.4, accuracy=0.9):
    (tmp_path / "metrics.json").write_text(json.dumps({
        "fit": {"status": status, "epochs": 3, "train": {"train/loss": loss}, "val": {"val/loss": 0.5}},
        "test": {"test/acc": accuracy, "test/loss": 0.5}}))
    return tmp_path


@pytest.mark.parametrize("changes,passed,detail", [
    ({}, True, "test acc 0.900, 3 epochs"), ({"loss": math.nan}, False, "losses"),
    ({"accuracy": 0.1}, False, "chance"), ({"status": "failed"}, False, "fit failed"),
], ids=["good", "nan loss", "chance", "failed"])
def test_a_run_passes_when_finished_finite_and_above_chance(tmp_path, changes, passed, detail):
    verdict = gpu_check.fit_verdict(run_folder(tmp_path, **changes))
    assert verdict[0] is passed and detail in verdict[1]
    assert gpu_check.fit_verdict(tmp_path / "missing")[0] is False


@pytest.mark.parametrize("gpus,strategies", [(1, ["ddp, devices 1", "fsdp, devices 1"]),
                                             (2, ["ddp, devices 1", "fsdp, devices 1", "ddp, devices 2",
                                                  "fsdp, devices 2"])])
def test_the_plan_has_every_precision_strategy_and_check(tmp_path, gpus, strategies):
    names = [name for name, _ in gpu_check.Checks(tmp_path, {}, gpus).plan()]
    assert names[:3] == ["fit/test/predict 32-true", "fit/test/predict 16-mixed", "fit/test/predict bf16-mixed"]
    assert [name for name in names if name.startswith(("ddp", "fsdp"))] == strategies
    assert {"deepspeed", "free-GPU selection (devices: 1)", "resume after a kill", "benchmark, short",
            "the project's own tests"} <= set(names)


def test_the_table_aligns_one_row_per_check():
    rows = [{"check": "a", "result": "ok", "seconds": 1.2, "detail": "fine"},
            {"check": "longer name", "result": "FAILED", "seconds": 30, "detail": "why"}]
    lines = gpu_check.table(rows).splitlines()
    assert lines[0].split() == ["check", "result", "s", "detail"] and len(lines) == 3
    assert lines[2].startswith("longer name  FAILED") and lines[1].index("ok") == lines[2].index("FAILED")
