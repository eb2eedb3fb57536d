"""sh/run.py forks each version from one process that imported torch, Lightning and the project once: every version
still has its own process, log, lock and exit status, a failing one takes no other down, SIGTERM stops them, and
versions whose fit starts processes of its own get a fresh interpreter."""
import json
import shlex
import signal
import subprocess
import sys
import time

import pytest

import _runner
import run
from _experiments import Version, create_experiment
from conftest import PROJECT_ROOT, fake_data, quick_run_args
from runtime.run_folder import try_lock


def make_sweep(tmp_path, n_versions=3):
    """Experiment ``exp`` under tmp_path/config, results in tmp_path/res; the quick-run arguments as one -o string."""
    create_experiment("exp", n_versions, tmp_path / "config", PROJECT_ROOT / "config" / "template.yaml")
    return shlex.join([*quick_run_args(tmp_path, fake_data(tmp_path / "datasets")), "--run.test_after_fit=false"])


def test_forked_versions_keep_their_own_process_log_lock_and_exit_status(tmp_path, capsys):
    quick = make_sweep(tmp_path)
    (tmp_path / "config" / "exp" / "version_1" / "version.yaml").write_text("data:\n  init_args:\n    batch_size: 0\n")
    status = run.main(["-c", str(tmp_path / "config"), "-e", "exp", "--all_ver", "--jobs", "2", "-o", quick])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "exp/version_1: exit 1: ERROR:" in out and "batch_size" in out  # its reason, under the table
    pids = set()
    for k in (0, 2):
        run_dir = tmp_path / "res" / "exp" / f"version_{k}"
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "finished" and manifest["command"][1] == str(PROJECT_ROOT / "main.py")
        assert f"version_{k}" in (run_dir / "run.log").read_text().splitlines()[0]  # its own log
        lock = try_lock(run_dir / ".lock")  # released when its process ended
        assert lock is not None
        pids.add(manifest["pid"])
    assert len(pids) == 2 and not pids & {_runner.os.getpid()}


def test_main_py_commands_are_forked_and_anything_else_runs_in_its_own_interpreter(tmp_path, monkeypatch):
    quick = make_sweep(tmp_path, n_versions=1)
    version = Version(tmp_path / "config" / "exp", 0, tuple(shlex.split(quick)))
    forked = []
    monkeypatch.setattr(_runner, "ForkedRun", lambda server, args, *rest: forked.append(args) or FinishedAtOnce())
    monkeypatch.setattr(_runner, "pre_imported_server", lambda: "server")
    [outcome] = _runner.run_versions([version], say=lambda line: None)
    assert outcome.status == "finished" and forked[0][:1] == ["fit"]
    (tmp_path / "res" / "exp" / "version_0" / "manifest.json").unlink(missing_ok=True)
    [outcome] = _runner.run_versions([version], say=lambda line: None, isolated=True, mode="rerun")
    assert outcome.status == "finished" and len(forked) == 1  # --isolated: a fresh interpreter, no fork


class FinishedAtOnce:
    """A stand-in for a forked version that exits 0 at once."""

    returncode = 0

    def poll(self):
        return 0


@pytest.mark.parametrize("trainer,gpus,own_interpreter", [
    ({}, 0, False), ({"devices": 1}, 4, False), ({"devices": "auto"}, 1, False), ({"accelerator": "cpu"}, 4, False),
    ({"devices": "auto"}, 2, True), ({"devices": 2, "accelerator": "cpu", "strategy": "ddp"}, 0, True),
    ({"devices": "0,1"}, 4, True), ({"devices": [3]}, 4, False), ({"num_nodes": 2, "devices": 1}, 1, True),
    ({"devices": "some"}, 1, True),
])
def test_versions_whose_fit_starts_processes_get_their_own_interpreter(trainer, gpus, own_interpreter, monkeypatch):
    monkeypatch.setattr(Version, "trainer_settings", trainer)
    assert _runner.launches_processes(Version(PROJECT_ROOT / "config" / "x", 0), gpus) == own_interpreter


def test_sigterm_stops_forked_versions_and_leaves_no_process(tmp_path):
    quick = make_sweep(tmp_path, n_versions=2).replace("--trainer.max_epochs=1", "--trainer.max_epochs=1000")
    code = "import sys; sys.path.insert(0, sys.argv[1]); import run; sys.exit(run.main(sys.argv[2:]))"
    runner = subprocess.Popen([sys.executable, "-c", code, str(PROJECT_ROOT / "sh"), "-c", str(tmp_path / "config"),
                               "-e", "exp", "--all_ver", "--jobs", "2", "-o", quick], stdout=subprocess.PIPE, text=True)
    manifests = [tmp_path / "res" / "exp" / f"version_{k}" / "manifest.json" for k in (0, 1)]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(path.is_file() for path in manifests):
        time.sleep(0.1)
    time.sleep(1)
    runner.send_signal(signal.SIGTERM)
    out, _ = runner.communicate(timeout=120)
    assert runner.returncode == 128 + signal.SIGTERM, out
    for path in manifests:
        manifest = json.loads(path.read_text())
        assert manifest["status"] == "interrupted", manifest["status"]
        with pytest.raises(ProcessLookupError):
            _runner.os.kill(manifest["pid"], 0)
