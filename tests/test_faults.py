"""Faults: a training process killed mid-epoch, or in the middle of writing a checkpoint, resumes where it
stopped; a full disk (a small tmpfs as root, else a file-size limit) is one ERROR line naming the file, and the
files written before stay byte for byte; run.py says why each failed version failed; no shell, no unsafe YAML.
(Faults of input: the generated project's tests/test_faults.py.)"""
import ast
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import TEMPLATE, bake, run, run_python

MID_EPOCH_INTERVAL = 'train_time_interval: "0:10:00"'
STEPS_PER_EPOCH = 200
EPOCHS = 2
KILL_AFTER_STEP = 15
SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def last_step(checkpoint):
    """Global step stored in ``checkpoint``, or None while it cannot be read yet."""
    try:
        return torch.load(checkpoint, map_location="cpu", weights_only=False)["global_step"]
    except (OSError, RuntimeError, EOFError, KeyError):
        return None


def logged_steps(event_file):
    """The steps of the training scalars in ``event_file`` (hp_metric, a run's summary, is logged at step 0)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(event_file))
    events.Reload()
    tags = [tag for tag in events.Tags()["scalars"] if tag != "hp_metric"]
    return sorted({event.step for tag in tags for event in events.Scalars(tag)})


@pytest.mark.slow
def test_training_killed_mid_epoch_resumes_from_last_checkpoint_in_the_same_version(cookies, tmp_path):
    project = bake(cookies, dataset="digits", model="mlp", logger="tensorboard")
    share = project / "config" / "baseline" / "share.yaml"
    text = share.read_text()
    assert MID_EPOCH_INTERVAL in text, "the template should save last.ckpt mid-epoch on a timer"
    share.write_text(text.replace(MID_EPOCH_INTERVAL, 'train_time_interval: "0:00:00"'))  # every step, for the test
    fit = [sys.executable, "main.py", "fit", "-c", str(share), "-c", "config/baseline/version_0/version.yaml",
           f"--trainer.max_epochs={EPOCHS}", f"--trainer.limit_train_batches={STEPS_PER_EPOCH}",
           "--trainer.limit_val_batches=2", "--trainer.log_every_n_steps=5", "--data.init_args.batch_size=4",
           "--trainer.enable_progress_bar=false", "--run.test_after_fit=false"]
    run_dir = project / "res" / "baseline" / "version_0"
    last = run_dir / "checkpoints" / "last.ckpt"

    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(fit, cwd=project, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while process.poll() is None and time.monotonic() < deadline:
                if last.is_file() and (last_step(last) or 0) >= KILL_AFTER_STEP:
                    break
                time.sleep(0.05)
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()[-3000:]
    killed_at = last_step(last)
    assert killed_at is not None and KILL_AFTER_STEP <= killed_at < STEPS_PER_EPOCH, f"not mid-epoch: {killed_at}"
    assert not (run_dir / "metrics.json").exists()
    first_events = set(run_dir.glob("events.out.tfevents.*"))

    resumed = run_python(fit[1:] + ["--ckpt_path", "last"], project)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Restored all states from the checkpoint" in resumed.stdout + resumed.stderr

    fit_record = json.loads((run_dir / "metrics.json").read_text())["fit"]
    assert fit_record["status"] == "finished"
    assert fit_record["epochs"] == EPOCHS
    assert fit_record["global_step"] == EPOCHS * STEPS_PER_EPOCH
    assert [p.name for p in run_dir.parent.iterdir()] == ["version_0"], "the logger must not start a new version"
    (resumed_events,) = set(run_dir.glob("events.out.tfevents.*")) - first_events
    steps = logged_steps(resumed_events)
    assert steps and min(steps) >= killed_at, f"the resumed run restarted from scratch: {steps[:5]}"
    assert max(steps) >= EPOCHS * STEPS_PER_EPOCH - 5


QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
FIT = ["main.py", "fit", "-c", "config/baseline/share.yaml", "-c", "config/baseline/version_0/version.yaml", *QUIET]
EPOCHS_BEFORE, EPOCHS_AFTER = 2, 4


@pytest.fixture(scope="module")
def trained(cookies_session, tmp_path_factory):
    """A digits project whose version_0 trained 2 epochs: (project, a copy of its res/ each test starts from)."""
    project = bake(cookies_session, dataset="digits", model="mlp", logger="csv")
    done = run_python([*FIT, f"--trainer.max_epochs={EPOCHS_BEFORE}"], project)
    assert done.returncode == 0, done.stderr[-3000:]
    pristine = tmp_path_factory.mktemp("pristine") / "res"
    shutil.copytree(project / "res", pristine)
    return project, pristine


@pytest.fixture
def project(trained):
    """The trained project with its res/ as it was after the 2 epochs."""
    project, pristine = trained
    subprocess.run(["umount", str(project / "res")], capture_output=True)  # an earlier test's tmpfs, if left
    shutil.rmtree(project / "res", ignore_errors=True)
    shutil.copytree(pristine, project / "res")
    return project


def digests(run_dir) -> dict:
    """The files complete before the fault, which must stay byte for byte: the checkpoints and metrics.json (a
    resumed fit rewrites config.yaml with its own settings, and adds rows to history.csv)."""
    kept = [*run_dir.glob("checkpoints/*.ckpt"), run_dir / "metrics.json"]
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in kept}


def small_tmpfs_over(folder, free_bytes: int) -> bool:
    """Mount a tmpfs over ``folder`` holding its files with ``free_bytes`` to spare; False where mount is refused."""
    used = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    keep = folder.parent / (folder.name + ".kept")
    folder.rename(keep)
    folder.mkdir()
    size_kb = (used + free_bytes) // 1024 + 64  # a little for the folders themselves
    if run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)], folder).returncode != 0:
        folder.rmdir()
        keep.rename(folder)
        return False
    shutil.copytree(keep, folder, dirs_exist_ok=True)
    shutil.rmtree(keep)
    return True


@pytest.mark.slow
@pytest.mark.parametrize("how", ["tmpfs", "file_size_limit"])
def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_every_earlier_file(project, how):
    run_dir = project / "res" / "baseline" / "version_0"
    checkpoint_bytes = (run_dir / "checkpoints" / "last.ckpt").stat().st_size
    before, history = digests(run_dir), (run_dir / "history.csv").read_text()
    limit = None
    if how == "tmpfs":
        if os.geteuid() != 0 or not small_tmpfs_over(project / "res", checkpoint_bytes // 2):
            pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    else:
        limit = checkpoint_bytes // 2  # every result file but a checkpoint fits

    def over_the_limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    try:
        done = subprocess.run([sys.executable, *FIT, f"--trainer.max_epochs={EPOCHS_AFTER}", "--ckpt_path", "last"],
                              cwd=project, capture_output=True, text=True, timeout=600,
                              preexec_fn=over_the_limit if limit else None)
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
        assert done.returncode == 1 and len(errors) == 1, done.stderr[-3000:]
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        assert "checkpoints/" in errors[0] and ".ckpt: the disk is full" in errors[0], errors[0]
        assert digests(run_dir) == before
        assert (run_dir / "history.csv").read_text().startswith(history)  # earlier rows kept, the new epoch's added
        assert not [path for path in run_dir.rglob(".*") if path.name != ".lock"], "a temporary file was left"
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "failed" and "the disk is full" in manifest["error"]
        assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == EPOCHS_BEFORE - 1

        report = run_python(["sh/report.py", "-e", "baseline"], project)  # reads the folder: nothing finished yet
        assert report.returncode == 2 and report.stderr.startswith("ERROR: baseline has no finished runs"), report
        planned = run_python(["sh/run.py", "-e", "baseline", "-v", "0", "--resume", "--dry-run"], project)
        assert planned.returncode == 0 and "--ckpt_path last" in planned.stdout, planned.stdout + planned.stderr
    finally:
        if how == "tmpfs":
            kept = project.parent / "res.after"
            shutil.copytree(project / "res", kept)
            run(["umount", str(project / "res")], project)
            shutil.rmtree(project / "res")
            kept.rename(project / "res")

    resumed = run_python(["sh/run.py", "-e", "baseline", "-v", "0", "--resume", "-o",
                          f"--trainer.max_epochs={EPOCHS_AFTER} {' '.join(QUIET)}"], project)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    fit = json.loads((run_dir / "metrics.json").read_text())["fit"]
    assert fit["status"] == "finished" and fit["epochs"] == EPOCHS_AFTER


@pytest.mark.slow
def test_a_run_killed_in_the_middle_of_writing_last_ckpt_keeps_the_previous_one_and_resumes_from_it(project):
    run_dir = project / "res" / "baseline" / "version_0"
    last = run_dir / "checkpoints" / "last.ckpt"
    before = digests(run_dir)
    paused = last.parent / "last.ckpt.paused"  # the test-only hook says it stopped halfway through the file
    env = {**os.environ, "RESEARCH_TEST_PAUSE_WRITING": "last.ckpt"}
    process = subprocess.Popen([sys.executable, *FIT, f"--trainer.max_epochs={EPOCHS_AFTER}", "--ckpt_path", "last"],
                               cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not paused.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert paused.exists(), "the write never started"
        half_written = [path for path in last.parent.glob(".last.ckpt.*")]
        assert half_written and 0 < half_written[0].stat().st_size < last.stat().st_size
    finally:
        process.kill()
        process.wait()
    paused.unlink()
    after = digests(run_dir)  # the epoch before the kill may have saved a new best checkpoint, and dropped the old
    assert [after["last.ckpt"], after["metrics.json"]] == [before["last.ckpt"], before["metrics.json"]]
    assert torch.load(last, weights_only=False)["epoch"] == EPOCHS_BEFORE - 1  # the previous one, loadable

    resumed = run_python(["sh/run.py", "-e", "baseline", "-v", "0", "--resume", "-o",
                          f"--trainer.max_epochs={EPOCHS_AFTER} {' '.join(QUIET)}"], project)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "killed" in json.dumps(json.loads((run_dir / "manifest.json").read_text())["earlier_attempts"])
    assert json.loads((run_dir / "metrics.json").read_text())["fit"]["epochs"] == EPOCHS_AFTER
    assert not list(last.parent.glob(".last.ckpt.*")), "the half-written temporary is cleared by the next run"


@pytest.mark.slow
def test_run_py_says_under_its_table_why_each_version_failed(project):
    run_python(["sh/structure.py", "-e", "baseline", "-v", "2"], project)  # version_1, version_2 (none yet)
    (project / "config" / "baseline" / "version_1" / "version.yaml").write_text(
        "model:\n  init_args:\n    no_such_argument: 3\n")
    (project / "config" / "baseline" / "version_2" / "version.yaml").write_text(
        "data:\n  class_path: data.no_such_module.Data\n")
    done = run_python(["sh/run.py", "-e", "baseline", "-n", "1", "2", "-o", " ".join(QUIET)], project)
    assert done.returncode == 1, done.stdout[-3000:]
    lines = {line.split(":", 1)[0]: line for line in done.stdout.splitlines()
             if line.startswith("baseline/version_") and "(log: " in line}
    assert "no_such_argument" in lines["baseline/version_1"] and "ERROR:" in lines["baseline/version_1"]
    assert "res/baseline/version_1/run.log" in lines["baseline/version_1"]
    assert "no_such_module" in lines["baseline/version_2"]


def python_sources(root):
    return sorted(path for path in root.rglob("*.py") if "__pycache__" not in path.parts)


def risky_calls(path):
    """'file:line: what' for each call that runs a shell or loads YAML with an unsafe loader."""
    tree = ast.parse(path.read_text(), filename=str(path))
    safe_loaders = set(SAFE_LOADERS)
    for node in ast.walk(tree):  # loaders defined here on top of a safe one are safe too
        if isinstance(node, ast.ClassDef) and any(ast.unparse(base).split(".")[-1] in SAFE_LOADERS
                                                  for base in node.bases):
            safe_loaders.add(node.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        keywords = {kw.arg: kw.value for kw in node.keywords}
        shell = keywords.get("shell")
        if isinstance(shell, ast.Constant) and shell.value is True or name in ("os.system", "os.popen"):
            yield f"{path}:{node.lineno}: {name} runs a shell"
        if name in ("yaml.load", "yaml.load_all"):
            loader = keywords.get("Loader", node.args[1] if len(node.args) > 1 else None)
            if loader is None or ast.unparse(loader).split(".")[-1] not in safe_loaders:
                yield f"{path}:{node.lineno}: {name} without a safe Loader"
        if name in ("yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all", "yaml.full_load_all"):
            yield f"{path}:{node.lineno}: {name} is not safe loading"


def test_hooks_and_project_code_never_use_a_shell_or_unsafe_yaml(cookies):
    project = bake(cookies, hparam_search="optuna")  # keeps every script in sh/
    sources = python_sources(TEMPLATE / "hooks") + python_sources(project)
    assert any(path.parent.name == "sh" for path in sources) and any(path.parent.name == "runtime" for path in sources)
    problems = [problem for path in sources for problem in risky_calls(path)]
    assert problems == []


def test_the_audit_catches_a_shell_and_an_unsafe_yaml_load(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import subprocess, yaml\n"
                   "subprocess.run('ls ' + name, shell=True)\n"
                   "yaml.load(text)\n"
                   "yaml.load(text, Loader=yaml.Loader)\n"
                   "class Spec(yaml.SafeLoader):\n    pass\n"
                   "yaml.load(text, Loader=Spec)\n")
    assert [problem.split(": ", 1)[0].rsplit(":", 1)[1] for problem in risky_calls(bad)] == ["2", "3", "4"]
