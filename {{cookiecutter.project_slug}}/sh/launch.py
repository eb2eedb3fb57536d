#!/usr/bin/env python
"""Train one experiment version on several processes or nodes, with Lightning's own DDP machinery.

    python sh/launch.py torchrun -e baseline -v 0 --nproc 4                 # 4 GPUs of this machine
    python sh/launch.py torchrun -e baseline -v 0 --nproc 4 --nnodes 2 --node-rank 0 --master node01:29500
                                                                             # the same on every node, its own rank
    python sh/launch.py torchrun -e baseline -v 0 --nproc 2 -- --trainer.accelerator=cpu   # 2 CPU processes (gloo)
    sbatch sh/slurm.sbatch baseline 0                                        # SLURM: runs `launch.py slurm` per task

The version is trained with the same configs as sh/run.py (share.yaml + version_k/version.yaml);
arguments after ``--`` go to main.py. A version that has a checkpoint resumes from the newest one:
Lightning's SLURM requeue checkpoint (``hpc_ckpt_<n>.ckpt`` in the run folder) or
``checkpoints/last.ckpt``. ``--dry-run`` prints the command.
"""
import argparse
import os
import shlex
import subprocess
import sys

from _experiments import ArgumentParser, UsageError, Version, exit_on_usage_error, find_experiment


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    launchers = parser.add_subparsers(dest="launcher", required=True)
    torchrun = launchers.add_parser("torchrun", help="start the processes of this node with torchrun")
    torchrun.add_argument("--nproc", type=int, required=True, help="processes (GPUs) on this node")
    torchrun.add_argument("--nnodes", type=int, default=1, help="nodes taking part (default 1)")
    torchrun.add_argument("--node-rank", type=int, default=0, help="rank of this node, 0..nnodes-1")
    torchrun.add_argument("--master", help="HOST:PORT of node 0, required with --nnodes > 1")
    launchers.add_parser("slurm", help="inside `srun`: become this task's main.py (used by sh/slurm.sbatch)")
    for sub in launchers.choices.values():
        sub.add_argument("-e", "--ex_name", required=True, help="experiment")
        sub.add_argument("-v", "--v_num", type=int, required=True, help="version number k of version_k")
        sub.add_path_argument("-c", "--config", default="config", help="config folder")
        sub.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
        sub.add_argument("main_args", nargs=argparse.REMAINDER, help="-- then arguments for main.py")
    args = parser.parse_args(argv)
    args.main_args = args.main_args[1:] if args.main_args[:1] == ["--"] else args.main_args
    return args


def version_fit_command(args, devices: int, num_nodes: int) -> list:
    """main.py's fit command line for the version: its configs, devices and nodes, resume, extra arguments."""
    version = Version(find_experiment(args.config, args.ex_name), args.v_num, tuple(args.main_args))
    for path in version.config_files:
        if not path.is_file():
            raise UsageError(f"{path} does not exist (create it with sh/structure.py)")
    placement = [f"--trainer.devices={devices}", f"--trainer.num_nodes={num_nodes}"]
    return version.fit_command(*placement, *version.resume_arguments())


def torchrun_command(args) -> list:
    if args.nproc < 1 or args.nnodes < 1 or not 0 <= args.node_rank < args.nnodes:
        raise UsageError("need --nproc >= 1, --nnodes >= 1 and 0 <= --node-rank < --nnodes")
    if args.nnodes == 1:
        rendezvous = ["--standalone"]
    elif args.master and ":" in args.master:
        host, port = args.master.rsplit(":", 1)
        rendezvous = [f"--node_rank={args.node_rank}", f"--master_addr={host}", f"--master_port={port}"]
    else:
        raise UsageError("--nnodes > 1 needs --master HOST:PORT of node 0 (the same on every node)")
    main_py, *fit = version_fit_command(args, args.nproc, args.nnodes)[1:]
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={args.nproc}",
            f"--nnodes={args.nnodes}", *rendezvous, main_py, *fit]


def slurm_task_command(args, environ=os.environ) -> list:
    """This SLURM task's main.py command: one task per GPU, devices and nodes from SLURM's variables."""
    if "SLURM_NTASKS" not in environ:
        raise UsageError("launch.py slurm runs inside a SLURM job step: sbatch sh/slurm.sbatch <experiment> <version>")
    nodes = int(environ.get("SLURM_NNODES", "1"))
    per_node = environ.get("SLURM_NTASKS_PER_NODE", "").split("(")[0]  # "4", or "4(x2)" on some versions
    tasks = int(per_node) if per_node else int(environ["SLURM_NTASKS"]) // nodes
    gpus = environ.get("SLURM_GPUS_ON_NODE", "")
    if gpus.isdigit() and int(gpus) != tasks:
        raise UsageError(f"this SLURM job has {gpus} GPUs per node but {tasks} tasks per node: "
                         f"one task per GPU, so set --ntasks-per-node={gpus}")
    return version_fit_command(args, tasks, nodes)


def main(argv=None):
    args = parse_args(argv)
    command = torchrun_command(args) if args.launcher == "torchrun" else slurm_task_command(args)
    if os.environ.get("SLURM_PROCID", "0") == "0":  # one copy of the command, not one per SLURM task
        print(shlex.join(command), flush=True)
    if args.dry_run:
        return 0
    if args.launcher == "slurm":
        os.execv(command[0], command)  # this task becomes main.py: Lightning reads SLURM's variables itself
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
