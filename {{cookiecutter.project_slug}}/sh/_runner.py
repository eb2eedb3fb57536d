"""Train versions as main.py processes: what to do with each (run, resume, skip), at most ``jobs`` at a
time, GPUs shared out as a queue, Ctrl-C and SIGTERM passed on, and the table of how each ended.

Each run's output goes to ``<run dir>/run.log``; the runner holds the version's lock (``<run dir>/.lock``)
while it runs and hands it to main.py, so two runners never train one version twice. Used by
sh/run.py and sh/optuna_search.py. Torch-free itself.

Pre-imported versions: importing torch and Lightning costs seconds per process, more than a short version's
fit. So each version is forked from a multiprocessing forkserver that imported them, and the project's main.py,
once (touching no CUDA). Every version still has its own process, log, lock (its descriptor is sent to the
child over the forkserver's socket, so no other runner can take the version in between) and exit status, so a
crash takes no other version down. A version whose
fit starts processes of its own (DDP over several devices, several nodes) gets a fresh interpreter, as every
version does with ``isolated`` (run.py --isolated).
"""
import multiprocessing
import multiprocessing.reduction
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from _experiments import PROJECT_ROOT, UsageError, Version, shown
from runtime.preflight import query_gpus, visible_gpus
from runtime.run_folder import DONE, LOCK_FD_ENV, UNFINISHED, run_status, run_summary, try_lock

POLL_SECONDS = 0.1
RESUME_SOURCES = {"last": "checkpoints/last.ckpt",
                  "hpc": "the checkpoint Lightning saved at preemption (hpc_ckpt_*.ckpt)"}


@dataclass(frozen=True)
class Plan:
    """What the runner does with a version: a main.py command, or a reason not to run it."""

    version: Version
    command: Optional[list]
    note: str = ""
    outcome: str = ""  # for a version not run: skipped | blocked
    resume: bool = False


def plan_run(version: Version, status: str, mode: Optional[str]) -> Plan:
    """Decide from the version's status and ``mode`` (None, "resume" or "rerun") whether and how it runs."""
    if status == "running":
        return Plan(version, None, "running elsewhere", "skipped")
    if mode == "rerun":
        return Plan(version, version.fit_command("--run.overwrite", "true"), "start over")
    if status in DONE:
        return Plan(version, None, f"{status} (--rerun runs it again)", "skipped")
    if status in UNFINISHED and version.paths.result_entries():
        if mode != "resume":
            return Plan(version, None, f"{status} run left results: --resume continues it, --rerun starts over",
                        "blocked")
        resume = version.resume_arguments()
        if resume or any(arg.startswith("--ckpt_path") for arg in version.main_args):
            source = RESUME_SOURCES[resume[1]] if resume else "the --ckpt_path given in -o"
            return Plan(version, version.fit_command(*resume), f"resume from {source}", resume=True)
        return Plan(version, version.fit_command("--run.overwrite", "true"),
                    f"{status}, no checkpoint to resume: start over")
    return Plan(version, version.fit_command())


@dataclass
class Outcome:
    version: Version
    status: str  # finished | pruned | failed | interrupted | skipped | blocked
    note: str = ""
    duration_s: Optional[float] = None
    has_results: bool = True  # False: not run by anyone yet, or running elsewhere: its folder says nothing of it

    @property
    def ok(self) -> bool:
        return self.status in (*DONE, "skipped")


def run_environment(gpu_ids, threads: Optional[int]) -> dict:
    """The variables a run gets on top of the runner's environment: its GPUs, or its share of the CPU threads."""
    if gpu_ids is not None:
        return {"CUDA_VISIBLE_DEVICES": ",".join(gpu_ids)}
    if threads and "OMP_NUM_THREADS" not in os.environ:
        return {"OMP_NUM_THREADS": str(threads)}
    return {}


PRE_IMPORTED = ("main", "model", "data", "torch.utils.tensorboard")  # imported once; main first: it sets MKL up


def pre_imported_server():
    """The multiprocessing context whose forkserver imports PRE_IMPORTED (started at its first version)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRE_IMPORTED))
    return context


class LockHandle:
    """The version lock's descriptor, handed to a forked child: multiprocessing sends it over the forkserver's
    socket (``DupFd``), as it sends a pipe, so the child holds the very lock the runner took."""

    def __init__(self, fd: int):
        self.fd = fd

    def __reduce__(self):
        return LockHandle.received, (multiprocessing.reduction.DupFd(self.fd),)

    @staticmethod
    def received(duplicate) -> "LockHandle":
        return LockHandle(duplicate.detach())


def stop_with_runner(runner: int) -> None:
    """SIGTERM this process when the runner (pid ``runner``) ends. A runner killed outright (SIGKILL, an optuna
    worker's machine lost) then leaves no fit training on unowned: it stops as on Ctrl-C and is recorded
    ``interrupted``. (A forked version's parent is the forkserver, which outlives the runner while a version
    runs, so the parent-death signal would not do.) Watched by a daemon thread: a pidfd on Linux, else a poll."""
    import select
    import threading

    def watch():
        try:
            select.select([os.pidfd_open(runner)], [], [])  # readable once the runner has ended
        except (AttributeError, OSError):  # no pidfd here: poll
            while True:
                try:
                    os.kill(runner, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
                time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="runner-watch", daemon=True).start()


def train_forked(args: list, log_file: str, env: dict, threads: Optional[int], lock: LockHandle, runner: int) -> None:
    """A pre-imported version's process: main.py's ``main(args)`` holding the runner's lock, its output appended
    to ``log_file``; it stops when the runner (pid ``runner``) ends."""
    stop_with_runner(runner)
    os.chdir(PROJECT_ROOT)
    os.environ.update(env, **{LOCK_FD_ENV: str(lock.fd)})
    log = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for stream in (1, 2):
        os.dup2(log, stream)
    os.close(log)
    sys.stdout, sys.stderr = (open(stream, "w", buffering=1, closefd=False) for stream in (1, 2))
    sys.stdin = open(os.devnull)
    import torch

    from main import main

    if threads:
        torch.set_num_threads(threads)  # OMP_NUM_THREADS is read when torch is imported: too late here
    sys.argv = [str(PROJECT_ROOT / "main.py"), *args]
    sys.exit(main(args))


class ForkedRun:
    """A version's process forked from the pre-imported server, with the few ``subprocess.Popen`` methods the runner
    uses (exit status, signals, wait)."""

    def __init__(self, context, args: list, log_file, env: dict, threads: Optional[int], lock_fd: int):
        self.process = context.Process(target=train_forked,
                                       args=(args, str(log_file), env, threads, LockHandle(lock_fd), os.getpid()))
        self.process.start()

    @property
    def returncode(self) -> Optional[int]:
        return self.process.exitcode

    def poll(self) -> Optional[int]:
        return self.process.exitcode

    def send_signal(self, signum: int) -> None:
        if self.process.exitcode is None:
            os.kill(self.process.pid, signum)

    def kill(self) -> None:
        self.process.kill()

    def wait(self, timeout: Optional[float] = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(self.process.name, timeout)
        return self.process.exitcode


def device_count(devices, accelerator, gpus: int) -> Optional[int]:
    """How many devices ``trainer.devices`` asks for, as Lightning reads it (a count, ``auto``/-1 for all of
    ``gpus``, a list or "0,1" of ids); None when it cannot tell."""
    if isinstance(devices, str) and "," not in devices:
        devices = yaml.safe_load(devices)  # as typed on the command line: "2", "[3]", "auto"
    if isinstance(devices, list):
        return len(devices)
    if devices in (None, "auto", -1):
        return 1 if str(accelerator) == "cpu" or gpus == 0 else gpus
    if isinstance(devices, int) and not isinstance(devices, bool):
        return devices
    ids = [entry.strip() for entry in devices.split(",") if entry.strip()] if isinstance(devices, str) else []
    return len(ids) if ids and all(entry.isdigit() for entry in ids) else None


def launches_processes(version: Version, gpus: int) -> bool:
    """Whether the version's fit starts processes of its own (several devices or nodes: Lightning's DDP re-runs the
    command line), which a forked child cannot do; ``gpus``: the GPUs this run sees. Unsure counts as yes."""
    trainer = version.trainer_settings
    nodes = str(trainer.get("num_nodes", 1) or 1)
    count = device_count(trainer.get("devices"), trainer.get("accelerator", "auto"), gpus)
    return count is None or count > 1 or nodes != "1"


def cpu_threads(jobs: int) -> Optional[int]:
    """Threads per run when ``jobs`` runs share this machine's cores; None for one run at a time."""
    return max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


def failure_line(path: Path) -> str:
    """Why the latest attempt in the run log ``path`` failed: its first ``ERROR:`` line, else its traceback's last
    line (the exception), else its last line; "" without a log."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    attempt = re.split(r"^\$ .*$", text, flags=re.MULTILINE)[-1]  # run.py heads each attempt with "$ <command>"
    lines = [line.strip() for line in attempt.splitlines() if line.strip()]
    found = (next((line for line in lines if line.startswith("ERROR:")), None)
             or next((line for line in reversed(lines) if EXCEPTION_LINE.match(line)), None)
             or (lines[-1] if lines else ""))
    return found[:300]


class ActiveRun:
    """A main.py process started for a version; owns its log file and the version's lock, which the process holds
    too (forked from a pre-imported ``server`` for a main.py command, else a fresh interpreter)."""

    def __init__(self, plan: Plan, lock_fd: int, gpu_ids, threads: Optional[int], server=None):
        self.plan, self.lock_fd, self.gpu_ids = plan, lock_fd, gpu_ids
        self.log = open(plan.version.paths.log_file, "a" if plan.resume else "w")
        self.log.write(f"$ {shlex.join(plan.command)}\n")
        self.log.flush()
        self.started = time.monotonic()
        main_py = plan.command[1:2] == [str(PROJECT_ROOT / "main.py")]
        if server is not None and main_py:
            self.process = ForkedRun(server, plan.command[2:], plan.version.paths.log_file,
                                     run_environment(gpu_ids, threads), threads, lock_fd)
            return
        env = {**os.environ, LOCK_FD_ENV: str(lock_fd), **run_environment(gpu_ids, threads)}
        self.process = subprocess.Popen(plan.command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT, env=env, pass_fds=(lock_fd,))

    def close(self, status: str, note: str = "") -> Outcome:
        self.log.close()
        os.close(self.lock_fd)
        return Outcome(self.plan.version, status, note, round(time.monotonic() - self.started, 1))

    def finish(self) -> Outcome:
        code = self.process.returncode
        if code == 0:
            pruned = run_status(self.plan.version.paths, locked_by_us=True) == "pruned"
            return self.close("pruned" if pruned else "finished")
        return self.close("failed", f"exit {code}: {failure_line(self.plan.version.paths.log_file)}")


def start(version: Version, mode: Optional[str], gpu_ids=None, threads=None, server=None):
    """Lock the version and start it (forked from ``server`` when given); an Outcome instead when it is not run
    (busy, finished, blocked)."""
    lock_fd = try_lock(version.paths.lock_file)
    if lock_fd is None:
        return Outcome(version, "skipped", "running elsewhere", has_results=False)
    try:
        plan = plan_run(version, run_status(version.paths, locked_by_us=True), mode)
        if plan.command is None:
            os.close(lock_fd)
            return Outcome(version, plan.outcome, plan.note)
        return ActiveRun(plan, lock_fd, gpu_ids, threads, server)
    except BaseException:
        os.close(lock_fd)
        raise


class Terminated(Exception):
    """The runner got SIGTERM (a cluster's scheduler, ``kill``): its runs are stopped like on Ctrl-C."""


def _raise_terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the stopping itself is not interrupted again
    raise Terminated


SHUTDOWN_GRACE_S = 30  # an interrupted run's time to stop on its own (loggers finalise, workers exit): SLURM's KillWait


def _stop(active: ActiveRun, forward: Optional[int] = None) -> None:
    """Let an interrupted run shut down (it got Ctrl-C too, or gets ``forward`` or SIGINT now); kill it if it hangs."""
    if forward is not None and active.process.poll() is None:
        active.process.send_signal(forward)  # Lightning stops cleanly on SIGTERM too
    try:
        active.process.wait(timeout=SHUTDOWN_GRACE_S)
        return
    except subprocess.TimeoutExpired:
        active.process.send_signal(signal.SIGINT)
    try:
        active.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        active.process.kill()
        active.process.wait()


def visible_gpu_count() -> int:
    """How many GPUs a run started here sees (nvidia-smi, within CUDA_VISIBLE_DEVICES); 0 without any."""
    found = query_gpus()
    seen = visible_gpus(found, os.environ.get("CUDA_VISIBLE_DEVICES")) if found else None
    return len(seen) if seen is not None else len(found or [])


def run_versions(versions, mode=None, jobs=1, gpus=None, gpus_per_run=1, say=print, isolated=False) -> list:
    """Run ``versions`` at most ``jobs`` at a time (each given ``gpus_per_run`` free ids of ``gpus``); one Outcome each.

    Versions are forked from a pre-imported server (module docstring) unless ``isolated``, or unless their fit
    starts processes of its own. A failing version does not stop the others. On Ctrl-C the runs in progress are
    interrupted, nothing new starts, and every version still gets an Outcome.
    """
    total, outcomes, running = len(versions), {}, {}
    pending = deque(enumerate(versions, 1))
    free_gpus = list(gpus) if gpus is not None else None
    threads = cpu_threads(jobs)
    server, seen_gpus = None, None

    def server_for(version, gpu_ids):
        nonlocal server, seen_gpus
        if isolated:
            return None
        if gpu_ids is None and seen_gpus is None:
            seen_gpus = visible_gpu_count()
        if launches_processes(version, len(gpu_ids) if gpu_ids is not None else seen_gpus):
            return None
        server = server or pre_imported_server()
        return server
    for i, version in pending:
        say(f"[{i}/{total}] queued      {version.label}")

    def announce(i, outcome):
        outcomes[outcome.version] = outcome
        took = f" in {outcome.duration_s:.1f}s" if outcome.duration_s is not None else ""
        note = f": {outcome.note}" if outcome.note else ""
        say(f"[{i}/{total}] {outcome.status:<11} {outcome.version.label}{took}{note}")

    try:
        while pending or running:
            while pending and len(running) < jobs and (free_gpus is None or len(free_gpus) >= gpus_per_run):
                i, version = pending.popleft()
                gpu_ids = None if free_gpus is None else [free_gpus.pop(0) for _ in range(gpus_per_run)]
                active = start(version, mode, gpu_ids, threads, server_for(version, gpu_ids))
                if isinstance(active, Outcome):
                    if gpu_ids is not None:
                        free_gpus[:0] = gpu_ids
                    announce(i, active)
                    continue
                running[active] = i
                on = f" on GPU {','.join(gpu_ids)}" if gpu_ids is not None else ""
                note = f" ({active.plan.note})" if active.plan.note else ""
                say(f"[{i}/{total}] started     {version.label}{on}{note}, log: {shown(version.paths.log_file)}")
            time.sleep(POLL_SECONDS)
            for active in [a for a in running if a.process.poll() is not None]:
                i = running.pop(active)
                if active.gpu_ids is not None:
                    free_gpus.extend(active.gpu_ids)
                    free_gpus.sort(key=gpus.index)
                announce(i, active.finish())
    except (KeyboardInterrupt, Terminated) as stop:
        why = "stopped by SIGTERM" if isinstance(stop, Terminated) else "stopped by Ctrl-C"
        for active, i in running.items():
            _stop(active, forward=signal.SIGTERM if isinstance(stop, Terminated) else None)
            announce(i, active.close("interrupted", why))
        for i, version in pending:
            announce(i, Outcome(version, "interrupted", "not started", has_results=False))
    return [outcomes[version] for version in versions]


def run_until_done(versions, mode=None, jobs=1, gpus=None, gpus_per_run=1, isolated=False) -> tuple[list, bool]:
    """``run_versions`` with SIGTERM turned into a clean stop; (outcomes, whether SIGTERM stopped them)."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        outcomes = run_versions(versions, mode, jobs, gpus, gpus_per_run, say=lambda line: print(line, flush=True),
                                isolated=isolated)
        terminated = signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # the handler fired
    finally:
        signal.signal(signal.SIGTERM, previous)
    return outcomes, terminated


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def _test_key(summaries, monitor: str) -> str:
    """The test metric matching the monitored one (val/x -> test/x), else the first one recorded."""
    keys = sorted({key for summary in summaries for key in summary["test"]})
    matching = f"test/{monitor.split('/')[-1]}"
    return matching if matching in keys else (keys[0] if keys else "test")


def results_table(outcomes) -> str:
    """version | status | duration | best monitored metric | its test metric, one line per outcome."""
    summaries = [run_summary(outcome.version.paths if outcome.has_results else None) for outcome in outcomes]
    monitor = next((summary["monitor"] for summary in summaries if summary["monitor"]), "val")  # "best val"
    test_key = _test_key(summaries, monitor)
    rows = [("version", "status", "duration", f"best {monitor}", test_key)]
    for outcome, summary in zip(outcomes, summaries, strict=True):
        duration = outcome.duration_s if outcome.duration_s is not None else summary["duration_s"]
        status = outcome.status + (f": {outcome.note}" if outcome.status in ("skipped", "blocked") else "")
        rows.append((outcome.version.label, status, f"{duration:.1f}s" if isinstance(duration, (int, float)) else "-",
                     _number(summary["best_score"]), _number(summary["test"].get(test_key))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    if failed:
        lines.append("")
    for outcome in failed:  # why, from the run's log
        log = shown(outcome.version.paths.log_file)
        lines.append(f"{outcome.version.label}: {outcome.note or 'failed'} (log: {log})")
    return "\n".join(lines)


def gpu_ids(gpus: Optional[str], gpus_per_run: int) -> Optional[list]:
    """``--gpus 0,1,2,3`` checked against nvidia-smi and ``CUDA_VISIBLE_DEVICES``; None without ``--gpus``."""
    if gpus is None:
        if gpus_per_run != 1:
            raise UsageError("--gpus-per-run needs --gpus (the GPU ids to share out)")
        return None
    ids = [part.strip() for part in gpus.split(",") if part.strip()]
    if not ids or len(set(ids)) != len(ids) or not all(part.isdigit() for part in ids):
        raise UsageError(f"--gpus {gpus!r} must be distinct GPU ids separated by commas, e.g. 0,1,2,3")
    if not 1 <= gpus_per_run <= len(ids):
        raise UsageError(f"--gpus-per-run {gpus_per_run} must be between 1 and the {len(ids)} GPUs given")
    machine = query_gpus()
    if not machine:
        raise UsageError("--gpus needs NVIDIA GPUs, and nvidia-smi finds none on this machine "
                         "(without --gpus, versions run on what trainer.accelerator picks)")
    missing = [i for i in ids if int(i) not in {gpu.index for gpu in machine}]
    if missing:
        raise UsageError(f"--gpus {gpus}: this machine has no GPU {', '.join(missing)} "
                         f"(nvidia-smi lists {', '.join(str(gpu.index) for gpu in machine)})")
    allowed = os.environ.get("CUDA_VISIBLE_DEVICES")
    visible = None if allowed is None else visible_gpus(machine, allowed)  # None: no allocation, or unmappable
    outside = [i for i in ids if int(i) not in {gpu.index for gpu in visible}] if visible is not None else []
    if outside:  # a scheduler's allocation: the runs must stay inside it
        raise UsageError(f"--gpus {gpus}: GPU {', '.join(outside)} is outside CUDA_VISIBLE_DEVICES={allowed}, "
                         f"the GPUs this job may use ({', '.join(str(gpu.index) for gpu in visible) or 'none'}, "
                         "numbered as nvidia-smi does)")
    return ids


def print_dry_run(versions, mode, jobs: int, gpus, gpus_per_run: int) -> None:
    """The command of each version, with the variables it would get; GPUs as if runs ended in turn."""
    groups = [gpus[i:i + gpus_per_run] for i in range(0, len(gpus) - gpus_per_run + 1, gpus_per_run)] if gpus else []
    if groups:
        print(f"# GPU queue: {len(groups)} runs at a time; each gets the next free group of {gpus_per_run}")
    started = 0
    for version in versions:
        plan = plan_run(version, run_status(version.paths), mode)
        if plan.command is None:
            print(f"# {plan.outcome} {version.label}: {plan.note}")
            continue
        variables = run_environment(groups[started % len(groups)] if groups else None, cpu_threads(jobs))
        print(" ".join([*(f"{key}={value}" for key, value in variables.items()), shlex.join(plan.command)]))
        started += 1


def exit_status(outcomes, terminated: bool) -> int:
    """143 when SIGTERM stopped the runs, 130 on Ctrl-C, 1 when any failed, else 0."""
    if terminated:
        return 128 + signal.SIGTERM
    if any(outcome.status == "interrupted" for outcome in outcomes):
        return 130
    return 0 if all(outcome.ok for outcome in outcomes) else 1
