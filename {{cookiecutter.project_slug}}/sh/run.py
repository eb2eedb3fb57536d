#!/usr/bin/env python
"""Run experiment versions: ``main.py fit -c config/<exp>/share.yaml -c config/<exp>/version_k/version.yaml``.

    python sh/run.py -e baseline -v 0                          # one version
    python sh/run.py -e baseline -n 0 2 5                      # a list of versions
    python sh/run.py -e baseline -b 2 -t 6                     # versions 2, 3, 4, 5 (half-open range)
    python sh/run.py -e baseline --all_ver --jobs 2            # every version, two at a time
    python sh/run.py -e baseline --all_ex                      # the same (the seed's spelling)
    python sh/run.py --all_ex                                  # every version of every experiment
    python sh/run.py -e baseline --all_ver --gpus 0,1,2,3 --gpus-per-run 2
    python sh/run.py -e baseline --all_ver --resume            # continue unfinished versions from their checkpoints
    python sh/run.py -e baseline -v 0 -o "--trainer.max_epochs=3" --dry-run
    python sh/run.py -e baseline --all_ver --slurm --partition gpu --time 4:00:00 --gpus-per-run 1
    python sh/run.py -e baseline --all_ver --slurm --resume     # again, after tasks were killed without warning

Each run's output goes to ``<run dir>/run.log``; the runner holds a lock on ``<run dir>/.lock``
while a version runs, so two runners never run one version twice. A finished version is
skipped unless --rerun. Works from any folder; imports no torch, so it starts at once. Versions start in well
under a second each: they are forked from one process that imported torch, Lightning and the project once
(sh/_runner.py; --isolated: a fresh interpreter each, as versions that start processes of their own always get).

--slurm submits the versions as one SLURM job array through submitit instead (sh/_slurm.py): each
task trains its version the same way, and a task warned of time-out or preemption is requeued and
resumes from its checkpoint. Output of the tasks: res/slurm/<job id>/.
"""
import argparse
import sys

from _experiments import ArgumentParser, UsageError, exit_on_usage_error, select_versions, split_main_args
from _runner import exit_status, gpu_ids, print_dry_run, results_table, run_until_done
from _slurm import Resources, minutes, submit


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_argument_group("which versions")
    which.add_argument("-e", "--ex_name", help="experiment to run")
    which.add_argument("-v", "--v_num", type=int, help="run version_K")
    which.add_argument("-n", type=int, nargs="+", metavar="K", help="run these versions")
    which.add_argument("-b", "--begin_ver", type=int, help="first version of a half-open range (default: the first)")
    which.add_argument("-t", "--end_ver", type=int, help="end of the range, not run (default: after the last)")
    which.add_argument("--all_ver", action="store_true", help="every version of -e")
    which.add_argument("--all_ex", action="store_true",
                       help="with -e: every version of that experiment; alone: every version of every experiment")
    parser.add_path_argument("-c", "--config", default="config", help="config folder")
    parser.add_arguments_option("-o", "--other_para", action="append", default=[],
                                help='extra main.py arguments, e.g. "--trainer.max_epochs=3" (may be repeated)')
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--jobs", type=int, help="versions run at once (default 1, or one per GPU group)")
    parser.add_argument("--gpus", help="GPU ids shared out to the runs through CUDA_VISIBLE_DEVICES, e.g. 0,1,2,3")
    parser.add_argument("--gpus-per-run", type=int, default=1, help="GPUs each run (or SLURM task) gets (default 1)")
    parser.add_argument("--isolated", action="store_true",
                        help="start each version in a fresh interpreter instead of forking it from one that imported "
                             "torch and Lightning once (implied for versions that start processes: DDP, several nodes)")
    slurm = parser.add_argument_group("SLURM job array (submitit)")
    slurm.add_argument("--slurm", action="store_true", help="submit the versions as one job array instead")
    slurm.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    slurm.add_argument("--time", default="24:00:00", help="time limit of each task: minutes, HH:MM:SS or D-HH:MM:SS")
    slurm.add_argument("--cpus-per-run", type=int, default=8, help="CPUs of each task (default 8)")
    slurm.add_argument("--mem", help="memory of each task, e.g. 32G (default: the cluster's)")
    slurm.add_argument("--array-parallelism", type=int, default=64, help="tasks running at once (default 64)")
    slurm.add_argument("--executor", choices=("slurm", "local"), default="slurm",
                       help="local: submitit's local executor, the same tasks as processes here (to try it out)")
    slurm.add_argument("--wait", action="store_true", help="wait for the tasks and print how each ended")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue unfinished versions from their newest checkpoint (last or SLURM preemption)")
    again.add_argument("--rerun", action="store_true", help="run finished versions again, replacing their results")
    args = parser.parse_args(argv)
    args.slurm_only = [action.option_strings[0] for action in slurm._group_actions
                       if action.dest != "slurm" and getattr(args, action.dest) != action.default]
    return args


def slurm_resources(args) -> Resources:
    for flag, value, least in (("--gpus-per-run", args.gpus_per_run, 0), ("--cpus-per-run", args.cpus_per_run, 1),
                               ("--array-parallelism", args.array_parallelism, 1)):
        if value < least:
            raise UsageError(f"{flag} must be at least {least}, got {value}")
    if args.gpus or args.jobs:
        raise UsageError("--gpus and --jobs share out this machine; with --slurm, SLURM places the tasks "
                         "(--gpus-per-run, --array-parallelism)")
    return Resources(args.partition, minutes(args.time), args.gpus_per_run, args.cpus_per_run, args.mem,
                     args.array_parallelism)


def main(argv=None) -> int:
    args = parse_args(argv)
    main_args = split_main_args(args.other_para)
    mode = "resume" if args.resume else "rerun" if args.rerun else None
    if args.slurm_only and not args.slurm:
        raise UsageError(f"{' '.join(args.slurm_only)}: only with --slurm")
    if args.slurm:
        resources = slurm_resources(args)
        return submit(select_versions(args, main_args), mode, resources, args.executor, args.dry_run, args.wait)
    gpus = gpu_ids(args.gpus, args.gpus_per_run)
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    jobs = args.jobs or (len(gpus) // args.gpus_per_run if gpus else 1)
    versions = select_versions(args, main_args)
    if args.dry_run:
        print_dry_run(versions, mode, jobs, gpus, args.gpus_per_run)
        return 0
    outcomes, terminated = run_until_done(versions, mode, jobs, gpus, args.gpus_per_run, args.isolated)
    print("\n" + results_table(outcomes), flush=True)
    return exit_status(outcomes, terminated)


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
