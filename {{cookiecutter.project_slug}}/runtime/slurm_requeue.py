"""SLURM's time-out warning (sh/slurm.sbatch: ``--signal=SIGUSR1@90``): save the requeue checkpoint
``hpc_ckpt_<n>.ckpt`` in the run folder and run ``scontrol requeue``, between two batches.

Lightning's own auto-requeue does the same work inside the signal handler. A handler runs between any
two bytecodes of the main thread, a logger's write or a checkpoint's save included, and can then hang
or save a torn state (Lightning issue #21406). Here the handler only notes the signal; after the next
training or validation batch every process agrees on it, they save the checkpoint together, and rank 0
requeues the job. SLURM then stops the job (SIGTERM: Lightning stops cleanly and the run is recorded
``interrupted``); the requeued job resumes from the newest checkpoint (sh/launch.py).

Lightning's switch still holds: ``trainer.plugins: SLURMEnvironment`` with ``auto_requeue: false``
turns requeueing off.
"""
import os
import signal
import subprocess
import sys

from pytorch_lightning import Callback
from pytorch_lightning.plugins.environments import SLURMEnvironment


def slurm_job_id(environ=os.environ) -> str:
    """The id ``scontrol requeue`` takes: ``<array job>_<task>`` for an array task, else the job's."""
    if environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{environ['SLURM_ARRAY_JOB_ID']}_{environ['SLURM_ARRAY_TASK_ID']}"
    return environ["SLURM_JOB_ID"]


class SlurmRequeue(Callback):
    """On SLURM's warning signal, save ``hpc_ckpt_<n>.ckpt`` after the next batch and requeue the job."""

    def __init__(self) -> None:
        self.signum = None  # the warning signal, while this callback handles it
        self.warned = False  # set by the signal handler; acted on between batches
        self._previous_handler = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        # Lightning's signal connector reads this environment when the fit starts, after this hook
        environment = trainer._accelerator_connector.cluster_environment
        if stage != "fit" or not isinstance(environment, SLURMEnvironment) or not environment.auto_requeue:
            return
        environment.auto_requeue = False  # Lightning's handler stays off: this callback requeues
        self.signum = environment.requeue_signal or signal.SIGUSR1
        self._previous_handler = signal.signal(self.signum, self._note_warning)
        if trainer.is_global_zero:
            print(f"SLURM requeue: on {signal.Signals(self.signum).name} this job saves hpc_ckpt_<n>.ckpt after "
                  f"the batch it is in and is requeued", file=sys.stderr, flush=True)

    def _note_warning(self, signum, frame) -> None:
        self.warned = True

    def on_train_batch_end(self, trainer, *args) -> None:
        self._act_on_warning(trainer)

    def on_validation_batch_end(self, trainer, *args) -> None:
        if not trainer.sanity_checking:
            self._act_on_warning(trainer)

    def _act_on_warning(self, trainer) -> None:
        if self.signum is None or not trainer.strategy.reduce_boolean_decision(self.warned, all=False):
            return  # all save together or none: under DDP one tiny all-reduce a batch, as Lightning's SIGTERM check
        self.warned = False
        for logger in trainer.loggers:
            logger.save()
        path = trainer._checkpoint_connector.hpc_save_path(trainer.default_root_dir)  # what --ckpt_path hpc finds
        trainer.save_checkpoint(path)
        if trainer.is_global_zero:
            self.requeue(path)

    @staticmethod
    def requeue(path) -> None:
        job = slurm_job_id()
        try:
            code = subprocess.call(["scontrol", "requeue", job])
        except FileNotFoundError:
            code = "scontrol not found"
        outcome = "requeued" if code == 0 else f"NOT requeued (scontrol requeue: {code}); resubmit it"
        print(f"SLURM requeue: saved {path}; job {job} {outcome}", file=sys.stderr, flush=True)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._restore()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore()

    def _restore(self) -> None:
        if self.signum is not None:
            signal.signal(self.signum, signal.SIG_DFL if self._previous_handler is None else self._previous_handler)
            self.signum = None
