"""sh/run.py --slurm: the chosen versions as one SLURM job array, submitted through submitit.

Each array task trains one version exactly as run.py does on a workstation (sh/_runner.py: the
version's lock, ``run.log``, manifest.json; main.py launches the task's GPUs itself, as it does
under run.py). When SLURM warns of a time-out or preemption (the signal submitit asks for), the
task stops its training process, which records ``interrupted`` after its last checkpoint, and
submitit requeues the task with ``--resume``: it continues from the newest checkpoint. A task that
died without warning (SIGKILL, a lost node) is continued by submitting again with ``--resume``.
submitit keeps each task's stdout, stderr and pickles in ``res/slurm/<job id>/``.
"""
import os
import re
import shlex
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from _experiments import DEFAULT_RES_DIR, PROJECT_ROOT, UsageError, Version, project_path, shown
from _runner import failure_line, plan_run, run_versions
from runtime.run_folder import run_status

STOP_SECONDS = 120  # how long a stopped training process may take to record how it ended


@dataclass(frozen=True)
class Resources:
    """What each array task asks SLURM for (run.py's --partition, --time, --gpus-per-run, ...)."""

    partition: Optional[str]
    time_min: int
    gpus: int
    cpus: int
    mem: Optional[str]
    array_parallelism: int

    def executor_parameters(self, name: str) -> dict:
        parameters = {"name": name, "timeout_min": self.time_min, "gpus_per_node": self.gpus, "nodes": 1,
                      "tasks_per_node": 1, "cpus_per_task": self.cpus,
                      "slurm_array_parallelism": self.array_parallelism, "slurm_signal_delay_s": 120}
        if self.partition:
            parameters["slurm_partition"] = self.partition
        if self.mem:
            parameters["slurm_mem"] = self.mem
        return parameters

    def describe(self) -> str:
        parts = [f"partition {self.partition or '(default)'}", f"{self.time_min} min", f"{self.gpus} GPU(s)",
                 f"{self.cpus} CPUs", f"memory {self.mem or '(default)'}"]
        return ", ".join(parts)


def minutes(text: str) -> int:
    """SLURM's time formats as whole minutes: 90, 1:30:00, 2-00:00:00, 45:00 (minutes:seconds)."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise UsageError(f"--time {text!r}: give minutes (90), HH:MM:SS (1:30:00) or D-HH:MM:SS (2-00:00:00)")
    days, first, second, third = match.groups()
    if third is not None:
        total = int(first) * 60 + int(second) + int(third) / 60
    elif second is not None:
        total = int(first) * 60 + int(second) if days else int(first) + int(second) / 60
    else:
        total = int(first) * 60 if days else int(first)
    total += int(days or 0) * 24 * 60
    if total < 1:
        raise UsageError(f"--time {text!r} is under a minute")
    return max(1, round(total))


class TrainVersion:
    """One array task: train a version with sh/_runner.py; on SLURM's warning, stop it and requeue with --resume.

    submitit calls ``checkpoint`` when the warning signal arrives (its Checkpointable protocol): the
    training process is stopped with SIGTERM (Lightning finishes the step; the run records
    ``interrupted``; its last.ckpt stays), and the returned submission resumes it.
    """

    def __call__(self, experiment_dir: str, number: int, main_args: tuple, mode: Optional[str]) -> str:
        os.environ["SLURM_JOB_NAME"] = "interactive"  # main.py launches its own processes, as under run.py
        version = Version(Path(experiment_dir), number, tuple(main_args))
        [outcome] = run_versions([version], mode, say=lambda line: print(line, flush=True), isolated=True)
        if not outcome.ok:
            raise RuntimeError(f"{version.label} {outcome.status}: {outcome.note}")
        return outcome.status

    def checkpoint(self, experiment_dir: str, number: int, main_args: tuple, mode: Optional[str]):
        import submitit

        stop_training()
        return submitit.helpers.DelayedSubmission(self, experiment_dir, number, main_args, "resume")


def stop_training() -> None:
    """SIGTERM to this task's training processes; wait for them to record how they ended, then kill."""
    import psutil

    children = psutil.Process().children()
    for child in children:
        child.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(children, timeout=STOP_SECONDS)
    for child in alive:
        child.kill()


def planned(versions, mode) -> tuple[list, list]:
    """(versions to submit, (version, reason) for each one left out: finished, running, or blocked)."""
    submit, left_out = [], []
    for version in versions:
        plan = plan_run(version, run_status(version.paths), mode)
        if plan.command is None:
            left_out.append((version, f"{plan.outcome}: {plan.note}"))
        else:
            submit.append((version, plan))
    return submit, left_out


def submit(versions, mode, resources: Resources, cluster: str, dry_run: bool, wait: bool) -> int:
    """Submit the versions that have something to do as one job array; print what was (or would be) sent."""
    to_submit, left_out = planned(versions, mode)
    for version, reason in left_out:
        print(f"# not submitted {version.label}: {reason}")
    if not to_submit:
        print("nothing to submit")
        return 0
    print(f"# job array of {len(to_submit)} task(s), at most {resources.array_parallelism} at once; each task: "
          f"{resources.describe()}")
    for i, (version, plan) in enumerate(to_submit):
        print(f"# task {i}: {version.label}" + (f" ({plan.note})" if plan.note else ""))
        print(shlex.join(plan.command))
    if dry_run:
        return 0
    try:
        import submitit
    except ImportError:
        raise UsageError("--slurm submits through submitit: pip install submitit") from None

    # the tasks unpickle TrainVersion from sh/: SLURM and the local executor pass this environment on
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT / "sh"), os.environ.get("PYTHONPATH")]))
    folder = project_path(DEFAULT_RES_DIR) / "slurm" / "%j"
    executor = submitit.AutoExecutor(folder=folder, cluster=None if cluster == "slurm" else cluster)
    executor.update_parameters(**resources.executor_parameters(PROJECT_ROOT.name))
    jobs = executor.map_array(TrainVersion(), [str(version.experiment_dir) for version, _ in to_submit],
                              [version.number for version, _ in to_submit],
                              [version.main_args for version, _ in to_submit], [mode] * len(to_submit))
    for job, (version, _) in zip(jobs, to_submit, strict=True):
        print(f"submitted {version.label}: job {job.job_id}, output {shown(job.paths.stdout)}", flush=True)
    if not wait:
        return 0
    failed = 0
    for job, (version, _) in zip(jobs, to_submit, strict=True):
        try:
            print(f"{version.label}: {job.result()}", flush=True)
        except Exception:  # noqa: BLE001 - submitit's FailedJobError, UncompletedJobError: the others still awaited
            failed += 1
            why = failure_line(version.paths.log_file) or f"see {shown(job.paths.stderr)}"
            print(f"{version.label}: failed ({why})", flush=True)
    return 1 if failed else 0
