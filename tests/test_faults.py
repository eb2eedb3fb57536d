"""Faults: a training process killed mid-epoch resumes where it stopped; no shell, no unsafe YAML."""
import ast
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import TEMPLATE, bake, run_python

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
