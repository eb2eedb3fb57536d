"""sh/launch.py builds torchrun and SLURM-task command lines from an experiment version and resumes it."""
import os
import sys

import pytest

import launch
from _experiments import UsageError, Version
from conftest import PROJECT_ROOT
from runtime.run_folder import RunPaths, newest_checkpoint

EXPERIMENT = "{{ cookiecutter.experiment_name }}"


def command(argv, environ=None):
    args = launch.parse_args(argv)
    return launch.torchrun_command(args) if args.launcher == "torchrun" else launch.slurm_task_command(args, environ)


def test_torchrun_on_one_node_trains_the_version_with_its_configs():
    cmd = command(["torchrun", "-e", EXPERIMENT, "-v", "0", "--nproc", "4", "--", "--trainer.max_epochs=3"])
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc_per_node=4" in cmd and "--standalone" in cmd
    fit = cmd[cmd.index(str(PROJECT_ROOT / "main.py")):]
    assert fit[1:6] == ["fit", "-c", str(PROJECT_ROOT / "config" / EXPERIMENT / "share.yaml"),
                        "-c", str(PROJECT_ROOT / "config" / EXPERIMENT / "version_0" / "version.yaml")]
    assert "--trainer.devices=4" in fit and "--trainer.num_nodes=1" in fit and fit[-1] == "--trainer.max_epochs=3"


def test_torchrun_on_several_nodes_needs_the_master_address():
    cmd = command(["torchrun", "-e", EXPERIMENT, "-v", "0", "--nproc", "2", "--nnodes", "2", "--node-rank", "1",
                   "--master", "node01:29500"])
    expected = {"--nnodes=2", "--node_rank=1", "--master_addr=node01", "--master_port=29500", "--trainer.num_nodes=2"}
    assert expected <= set(cmd)
    with pytest.raises(UsageError, match="--master HOST:PORT"):
        command(["torchrun", "-e", EXPERIMENT, "-v", "0", "--nproc", "2", "--nnodes", "2"])


def test_a_slurm_task_gets_devices_and_nodes_from_slurm():
    environ = {"SLURM_NTASKS": "8", "SLURM_NNODES": "2", "SLURM_NTASKS_PER_NODE": "4(x2)"}
    cmd = command(["slurm", "-e", EXPERIMENT, "-v", "0"], environ)
    assert cmd[0] == sys.executable and "--trainer.devices=4" in cmd and "--trainer.num_nodes=2" in cmd
    with pytest.raises(UsageError, match="inside a SLURM job step"):
        command(["slurm", "-e", EXPERIMENT, "-v", "0"], {})


def test_a_slurm_job_with_more_gpus_than_tasks_per_node_is_refused():
    environ = {"SLURM_NTASKS": "1", "SLURM_NNODES": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_GPUS_ON_NODE": "4"}
    with pytest.raises(UsageError, match="4 GPUs per node but 1 tasks per node: one task per GPU, so set "
                                         "--ntasks-per-node=4"):
        command(["slurm", "-e", EXPERIMENT, "-v", "0"], environ)
    assert "--trainer.devices=4" in command(["slurm", "-e", EXPERIMENT, "-v", "0"],
                                            {**environ, "SLURM_NTASKS": "4", "SLURM_NTASKS_PER_NODE": "4"})


def test_an_unknown_version_is_a_usage_error():
    with pytest.raises(UsageError, match="does not exist"):
        command(["torchrun", "-e", EXPERIMENT, "-v", "999", "--nproc", "2"])


def test_resume_takes_the_newest_checkpoint(tmp_path):
    paths = RunPaths(tmp_path / "res", "exp", "version_0")
    assert newest_checkpoint(paths) is None
    paths.checkpoint_dir.mkdir(parents=True)
    paths.last_checkpoint.touch()
    hpc = paths.run_dir / "hpc_ckpt_1.ckpt"
    hpc.touch()
    os.utime(paths.last_checkpoint, (1, 1))
    assert newest_checkpoint(paths) == ("hpc", hpc)  # saved at preemption, after last.ckpt
    os.utime(hpc, (0, 0))
    assert newest_checkpoint(paths) == ("last", paths.last_checkpoint)
    chosen = Version(PROJECT_ROOT / "config" / EXPERIMENT, 0, ("--ckpt_path=some.ckpt",))
    assert chosen.resume_arguments() == []  # the user's choice wins
