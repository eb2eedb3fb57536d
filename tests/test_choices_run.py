"""Every logger, strategy and precision choice really runs, checked on disk after tiny runs on this CPU.

Loggers are read back with their own readers; DDP trains 2 gloo processes and predicts; torchrun and a
SLURM job (with stand-in srun and scontrol, preempted by SIGUSR1) train a version; choices that need a
GPU stop with one ERROR line. No GPU was available here: GPU paths are covered by the generated project's
unit tests (fake nvidia-smi) and by these refusals.
"""
import contextlib
import csv
import json
import os
import signal
import struct
import subprocess
import sys
import time

import pytest
import torch
import yaml
from conftest import bake, run, run_python

VERSION_0 = ["-c", "config/baseline/share.yaml", "-c", "config/baseline/version_0/version.yaml"]
FAST = ["--trainer.limit_train_batches=3", "--trainer.limit_val_batches=2", "--trainer.limit_test_batches=2",
        "--trainer.enable_progress_bar=false", "--trainer.log_every_n_steps=1", "--model.init_args.backbone=mlp"]
ONE_EPOCH = ["--trainer.max_epochs=1", *FAST]
# No network, and no WANDB_MODE: wandb must be offline because the generated config says so.
NO_NETWORK = {**{k: v for k, v in os.environ.items() if not k.startswith("WANDB_")},
              "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
NEEDS_NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")


def fit(project, *args, env=NO_NETWORK):
    return run_python(["main.py", "fit", *VERSION_0, *ONE_EPOCH, *args], project, env=env)


def resume(project):
    """Continue version_0's one-epoch fit to a second epoch from its last.ckpt."""
    return run_python(["main.py", "fit", *VERSION_0, *FAST, "--trainer.max_epochs=2", "--ckpt_path", "last"], project,
                      env=NO_NETWORK)


def run_dir(project):
    return project / "res" / "baseline" / "version_0"


def assert_ok(result):
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def wandb_history_keys(run_file):
    """Metric names in the history records of a ``.wandb`` file (LevelDB log framing, W&B protobuf records)."""
    from wandb.proto import wandb_internal_pb2

    data, block, position, record, keys = run_file.read_bytes(), 32768, 7, b"", set()
    while position + 7 <= len(data):
        if block - position % block < 7:
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        record += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            parsed = wandb_internal_pb2.Record()
            parsed.ParseFromString(record)
            if parsed.WhichOneof("record_type") == "history":
                keys |= {item.key or "/".join(item.nested_key) for item in parsed.history.item}
            record = b""
    return keys


# ----------------------------------------------------------------------------------------------- loggers

@pytest.mark.slow
def test_tensorboard_events_hold_the_training_loss_and_validation_metric_and_a_resume_continues_them(cookies):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    project = bake(cookies, dataset="digits", logger="tensorboard", precision="32-true")
    result = fit(project)
    assert_ok(result)
    assert "Mixed Precision" not in result.stdout + result.stderr  # 32-true: plain float32
    events = EventAccumulator(str(run_dir(project)))
    events.Reload()
    assert {"train/loss_step", "train/loss_epoch", "val/acc", "test/acc"} <= set(events.Tags()["scalars"])
    assert len(events.Scalars("train/loss_step")) == 3
    assert 0.0 <= events.Scalars("val/acc")[-1].value <= 1.0
    assert_ok(resume(project))
    events = EventAccumulator(str(run_dir(project)))
    events.Reload()
    assert [event.step for event in events.Scalars("train/loss_step")] == [0, 1, 2, 3, 4, 5]
    assert [p.name for p in (project / "res" / "baseline").iterdir()] == ["version_0"]


@pytest.mark.slow
def test_csv_metrics_file_has_the_loss_and_metric_columns_and_a_resume_keeps_its_rows(cookies):
    project = bake(cookies, dataset="digits", logger="csv")
    assert_ok(fit(project))
    rows = read_csv(run_dir(project) / "metrics.csv")
    assert {"train/loss_step", "train/loss_epoch", "val/acc", "val/loss", "test/acc"} <= set(rows[0])
    assert len([row for row in rows if row["train/loss_step"]]) == 3
    assert 0.0 <= float(next(row["val/acc"] for row in rows if row["val/acc"])) <= 1.0
    assert_ok(resume(project))
    rows = read_csv(run_dir(project) / "metrics.csv")
    assert [int(row["step"]) for row in rows if row["train/loss_step"]] == [0, 1, 2, 3, 4, 5]
    assert [row["epoch"] for row in rows if row["val/acc"]] == ["0", "1"]


@pytest.mark.slow
def test_wandb_is_offline_by_default_writes_its_run_locally_and_a_resume_continues_that_run(cookies):
    project = bake(cookies, dataset="digits", logger="wandb")
    assert_ok(fit(project))
    runs = list((run_dir(project) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and not list((run_dir(project) / "wandb").glob("run-*"))  # no online run
    keys = wandb_history_keys(next(runs[0].glob("run-*.wandb")))
    assert {"train/loss_step", "train/loss_epoch", "val/acc", "test/acc"} <= keys
    assert "wandb sync res/" in (project / "README.md").read_text()
    run_id = json.loads((run_dir(project) / "manifest.json").read_text())["logger_runs"]["WandbLogger"]
    assert runs[0].name.endswith(f"-{run_id}")
    assert_ok(resume(project))
    resumed = sorted((run_dir(project) / "wandb").glob("offline-run-*"))
    assert len(resumed) == 2 and all(path.name.endswith(f"-{run_id}") for path in resumed)  # one run, synced as one


@pytest.mark.slow
def test_mlflow_store_under_res_is_read_back_through_the_mlflow_client_and_one_run_holds_the_version(cookies):
    from mlflow.tracking import MlflowClient

    project = bake(cookies, dataset="digits", logger="mlflow")
    assert_ok(fit(project))
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'res' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("baseline")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == "version_0"
    assert found.data.params["backbone"] == "mlp" and found.data.params["num_classes"] == "10"
    assert {"train/loss_epoch", "val/acc", "test/acc"} <= set(found.data.metrics)
    assert len(client.get_metric_history(found.info.run_id, "train/loss_step")) == 3
    assert_ok(resume(project))
    assert_ok(run_python(["main.py", "test", *VERSION_0, *FAST, "--ckpt_path", "last"], project, env=NO_NETWORK))
    (again,) = client.search_runs([experiment.experiment_id])  # the resume and the test logged into the same run
    assert again.info.run_id == found.info.run_id
    assert len(client.get_metric_history(found.info.run_id, "train/loss_step")) == 6
    assert len(client.get_metric_history(found.info.run_id, "test/acc")) == 3  # after each fit, and the test


@pytest.mark.slow
def test_no_logger_still_trains_and_writes_checkpoints(cookies):
    project = bake(cookies, dataset="digits", logger="none")
    assert_ok(fit(project))
    files = {p.name for p in run_dir(project).rglob("*") if p.is_file()}
    assert "last.ckpt" in files and any(name.startswith("epoch000-val_acc") for name in files)
    assert json.loads((run_dir(project) / "metrics.json").read_text())["fit"]["status"] == "finished"
    assert not {"metrics.csv", "hparams.yaml"} & files and not any(name.startswith("events.") for name in files)
    assert not (project / "res" / "mlflow.db").exists()


# ----------------------------------------------------------------------------------- precision, GPU-only

@pytest.mark.slow
def test_bf16_mixed_trains_on_cpu_under_autocast(cookies):
    project = bake(cookies, dataset="digits", precision="bf16-mixed", logger="none")
    result = fit(project)
    assert_ok(result)
    assert "Using bfloat16 Automatic Mixed Precision (AMP)" in result.stdout + result.stderr
    assert json.loads((run_dir(project) / "metrics.json").read_text())["fit"]["status"] == "finished"


@NEEDS_NO_GPU
@pytest.mark.slow
@pytest.mark.parametrize("answers,message", [
    ({"strategy": "fsdp"}, "strategy 'fsdp' (FSDP) runs on CUDA GPUs only"),
    ({"strategy": "deepspeed"}, "strategy 'deepspeed' (DeepSpeed) runs on CUDA GPUs only"),
    ({"precision": "16-mixed"}, "precision '16-mixed' needs a CUDA GPU"),
    ({"devices": "0,1"}, "with devices '0,1' asks for GPUs"),
    ({"devices": "-1"}, "devices -1 (every GPU) needs CUDA GPUs"),
], ids=["fsdp", "deepspeed", "16-mixed", "gpu-ids", "all-gpus"])
def test_gpu_only_choice_stops_before_training_with_one_error_line(cookies, answers, message):
    project = bake(cookies, dataset="digits", **answers)
    result = fit(project)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line or "Traceback" in line]
    assert len(errors) == 1 and errors[0].startswith("ERROR: ") and message in errors[0], result.stderr[-2000:]
    assert not (project / "res" / "baseline").exists()


@pytest.mark.parametrize("strategy", ["fsdp", "deepspeed"])
def test_gpu_strategies_bake_a_strategy_lightning_knows(cookies, strategy):
    from pytorch_lightning.strategies import StrategyRegistry

    project = bake(cookies, strategy=strategy)
    trainer = yaml.safe_load((project / "config" / "baseline" / "share.yaml").read_text())["trainer"]
    assert trainer["strategy"] == strategy and strategy in StrategyRegistry


# ------------------------------------------------------------------------------------ DDP, torchrun, SLURM

VALIDATE_LAST = """
import json, sys, torch
from data import DigitsDataModule
from model import load_network
dm = DigitsDataModule()
dm.setup("fit")
dm.setup("test")
x, y = (torch.cat(parts) for parts in zip(*dm.val_dataloader()))
with torch.no_grad():
    logits = load_network(sys.argv[1])(x)
print(json.dumps({"val/acc": (logits.argmax(1) == y).float().mean().item(),
                  "val/loss": torch.nn.functional.cross_entropy(logits, y).item(), "test_samples": len(dm.test_set)}))
"""


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_trains_once_with_synced_metrics_and_predicts(cookies):
    project = bake(cookies, dataset="digits", strategy="ddp", devices="2", logger="csv")
    result = fit(project, "--trainer.accelerator=cpu", "--trainer.limit_val_batches=1.0")
    assert_ok(result)
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stdout + result.stderr and "distributed_backend=gloo" in result.stdout + result.stderr

    out = run_dir(project)
    assert [p.name for p in (project / "res" / "baseline").iterdir()] == ["version_0"]  # one log folder
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and checkpoints[1] == "last.ckpt"  # one best, one last
    rows = [tuple(row.values()) for row in read_csv(out / "metrics.csv")]
    assert len(rows) == len(set(rows))  # rank 1 logged nothing of its own
    assert [row["epoch"] for row in read_csv(out / "history.csv")] == ["0"]

    # Synced: the recorded validation metrics are those of the whole validation set, not of rank 0's half.
    recorded = json.loads((out / "metrics.json").read_text())
    whole = run_python(["-c", VALIDATE_LAST, out / "checkpoints" / "last.ckpt"], project)
    assert_ok(whole)
    expected = json.loads(whole.stdout.strip().splitlines()[-1])
    assert recorded["fit"]["val"]["val/acc"] == pytest.approx(expected["val/acc"], abs=1e-6)
    assert recorded["fit"]["val"]["val/loss"] == pytest.approx(expected["val/loss"], rel=1e-4)

    predicted = run_python(["main.py", "predict", *VERSION_0, "--trainer.accelerator=cpu", "--ckpt_path", "best",
                            "--trainer.enable_progress_bar=false"], project, env=NO_NETWORK)
    assert_ok(predicted)
    ids = [row["sample_id"] for row in read_csv(out / "predictions.csv")]
    assert sorted(ids, key=int) == [str(i) for i in range(expected["test_samples"])]  # every input once, no padding
    assert not list(out.glob(".predictions.*"))

    # Device-resident data (each rank holds its shard of every pass, on the CPU here): the very same run.
    resident = fit(project, "--trainer.accelerator=cpu", "--trainer.limit_val_batches=1.0",
                   "--data.init_args.device_resident=true", "--run.version=resident")
    assert_ok(resident)
    again = json.loads((project / "res" / "baseline" / "resident" / "metrics.json").read_text())
    assert again["fit"]["val"] == recorded["fit"]["val"] and again["test"] == recorded["test"]


@pytest.mark.slow
def test_torchrun_with_two_cpu_processes_trains_a_version_to_completion(cookies):
    project = bake(cookies, dataset="digits")
    result = run_python(["sh/launch.py", "torchrun", "-e", "baseline", "-v", "0", "--nproc", "2", "--",
                         "--trainer.accelerator=cpu", *ONE_EPOCH], project, env=NO_NETWORK)
    assert_ok(result)
    assert "MEMBER: 2/2" in result.stdout + result.stderr
    metrics = json.loads((run_dir(project) / "metrics.json").read_text())
    assert metrics["fit"]["status"] == "finished" and "test/acc" in metrics["test"]
    assert (run_dir(project) / "checkpoints" / "last.ckpt").is_file()


def test_slurm_script_renders_and_is_valid_bash(cookies):
    script = bake(cookies, project_name="Cluster Study") / "sh" / "slurm.sbatch"
    text = script.read_text()
    assert "#SBATCH --job-name=cluster_study" in text and "{{" not in text
    for directive in ("--requeue", "--signal=SIGUSR1@90", "--ntasks-per-node=1", "--gpus-per-node=1"):
        assert f"#SBATCH {directive}" in text
    assert "srun " in text
    result = run(["bash", "-n", str(script)], script.parent)
    assert result.returncode == 0, result.stderr


def wait_for(condition, job, timeout=180):
    """Poll ``condition`` while the job runs; fail when the job ends first or time runs out."""
    deadline = time.time() + timeout
    while not condition():
        assert job.poll() is None and time.time() < deadline, "the job ended or timed out first"
        time.sleep(0.2)


@pytest.mark.slow
def test_slurm_job_trains_is_requeued_on_sigusr1_and_resumes(cookies, tmp_path):
    project = bake(cookies, dataset="digits")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text(f'#!/bin/bash\necho $$ > {tmp_path}/task.pid\nexec "$@"\n')
    (fake / "scontrol").write_text(f'#!/bin/bash\necho "$@" >> {tmp_path}/scontrol.log\n')
    for tool in ("srun", "scontrol"):
        (fake / tool).chmod(0o755)
    env = {**NO_NETWORK, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "PYTHON": sys.executable,
           "SLURM_SUBMIT_DIR": str(project), "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "study", "SLURM_NTASKS": "1",
           "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "1", "SLURM_NODEID": "0", "SLURM_PROCID": "0",
           "SLURM_LOCALID": "0", "SLURM_NODELIST": "localhost"}
    script = str(project / "sh" / "slurm.sbatch")
    out = run_dir(project)

    with open(tmp_path / "job1.log", "w") as log:  # submitted from elsewhere: the script cds to SLURM_SUBMIT_DIR
        job = subprocess.Popen(["bash", script, "baseline", "0", *FAST, "--trainer.max_epochs=1000"],
                               cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(lambda: (out / "checkpoints" / "last.ckpt").is_file(), job)
            task = int((tmp_path / "task.pid").read_text())
            os.kill(task, signal.SIGUSR1)  # SLURM: 90 s before the end
            wait_for(lambda: "job 4242 requeued" in (tmp_path / "job1.log").read_text(), job)
            os.kill(task, signal.SIGTERM)  # SLURM then stops the requeued job (SIGKILL only after its KillWait)
            job.wait(timeout=120)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.pid, signal.SIGKILL)  # what SLURM does to a job that has not stopped by then
            job.wait()
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"  # stopped, recorded
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
    log = (tmp_path / "job1.log").read_text()
    assert "on SIGUSR1 this job saves hpc_ckpt_<n>.ckpt" in log and "SLURM auto-requeueing" not in log  # not Lightning's
    assert f"saved {out / 'hpc_ckpt_1.ckpt'}; job 4242 requeued" in log
    torch.load(out / "hpc_ckpt_1.ckpt", map_location="cpu", weights_only=False)  # whole, loadable

    # Training goes on between the requeue and SLURM's SIGTERM, so last.ckpt may be newer: resume takes the newest.
    newest, name = max([(out / "hpc_ckpt_1.ckpt", "hpc"), (out / "checkpoints" / "last.ckpt", "last")],
                       key=lambda candidate: candidate[0].stat().st_mtime)
    epoch = torch.load(newest, map_location="cpu", weights_only=False)["epoch"]
    requeued = run(["bash", script, "baseline", "0", *FAST, f"--trainer.max_epochs={epoch + 2}"], tmp_path, env=env)
    assert_ok(requeued)
    assert f"--ckpt_path {name}" in requeued.stdout
    assert f"Restored all states from the checkpoint at {newest}" in requeued.stdout + requeued.stderr
    fit_record = json.loads((out / "metrics.json").read_text())["fit"]
    assert fit_record["status"] == "finished" and fit_record["epochs"] == epoch + 2


# ----------------------------------------------------------------------------------------------- presets

@pytest.mark.slow
def test_every_debug_preset_stacks_onto_the_first_experiment_and_runs(cookies):
    project = bake(cookies, dataset="digits")
    result = run_python(["-m", "pytest", "-p", "no:cacheprovider", "-m", "slow", "tests/test_debug_presets.py"],
                        project, env=NO_NETWORK)
    assert_ok(result)
    presets = list((project / "config" / "debug").glob("*.yaml"))
    assert len(presets) == 13 and f"{len(presets)} passed" in result.stdout, result.stdout[-2000:]
