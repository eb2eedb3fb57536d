"""Helpers around models: the plain network out of a checkpoint{% if cookiecutter.task == 'autoencoder' %}, and figures written to the run folder and
the logger{% endif %}."""
{%- if cookiecutter.task == 'autoencoder' %}
import os
from pathlib import Path
{%- endif %}

from torch import nn

from contract import check_checkpoint


def load_network(checkpoint_path, map_location: str = "cpu") -> nn.Module:
    """Return the plain ``nn.Module`` (the LightningModule's ``net``) of a Lightning checkpoint, in eval mode.

    The result needs neither Lightning nor this project's LightningModule to run:
    ``outputs = load_network("res/exp/version_0/checkpoints/last.ckpt")(inputs)``.
    """
    from .{{ cookiecutter.__model_module }} import {{ cookiecutter.__model_class }}

    module = {{ cookiecutter.__model_class }}.load_from_checkpoint(check_checkpoint(checkpoint_path),
                                                                 map_location=map_location)
    return module.net.eval()
{%- if cookiecutter.task == 'autoencoder' %}


def save_figure(module, figure, name: str) -> Path:
    """Write a matplotlib ``figure`` to ``<run folder>/plots/epoch<NNN>-<name>.png`` (the trainer's root folder) and
    give it to every logger that takes images (TensorBoard, W&B, MLflow); return the file."""
    trainer = module.trainer
    path = Path(trainer.default_root_dir) / "plots" / f"epoch{trainer.current_epoch:03d}-{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    figure.savefig(partial, format="png", dpi=100)
    os.replace(partial, path)
    for logger in trainer.loggers:
        kind = type(logger).__name__
        if kind == "TensorBoardLogger":
            logger.experiment.add_figure(name, figure, global_step=trainer.global_step, close=False)
        elif kind == "WandbLogger":
            logger.log_image(key=name, images=[str(path)], step=trainer.global_step)
        elif kind == "MLFlowLogger":
            logger.experiment.log_figure(logger.run_id, figure, f"plots/{path.name}")
    return path
{%- endif %}
