"""The research contract: what your model and datamodule owe the rest of this project, and nothing more.

Write any ``LightningModule`` in ``model/`` and any ``LightningDataModule`` in ``data/``, name them in a
config (``model.class_path``, ``data.class_path``), and ``python main.py fit -c <config>`` trains them
with everything the project has: run folders, records, resume, loggers, searches, reports. They owe it:

1. **Links.** A datamodule lists in ``links`` the attributes the model is built from, for example
   ``links = ("num_classes", "input_shape")``. It sets them in ``__init__``; main.py passes each to the
   model's ``__init__`` argument of the same name, so no config repeats them. (main.py reads ``links``
   from the datamodule class the configs name, before anything is built.)
2. **Metrics.** Log them as ``self.log("<stage>/<name>", value)`` with stage ``train``, ``val`` or
   ``test``. ``run.monitor`` and ``run.mode`` (``max`` or ``min``) in the config name the validation
   metric that judges a run; the best checkpoint, its file name, the tables of ``sh/run.py`` and
   ``sh/report.py`` and optuna's objective all read those two keys.
3. **Predictions.** ``predict_step`` returns a tensor with one row per sample, or a dict of such
   tensors; ``main.py predict`` writes them to ``predictions.csv``, one column per 1-D tensor and K
   columns for an (N, K) one. When the datamodule has ``classes`` (their names), an integer output named
   ``predicted`` is written as names, and outputs with one column per class get the names as suffixes.
   A predict dataset may give ``sample_ids`` (the first column); else it is the sample's index.
4. **Errors.** Raise ``DatasetNotFoundError`` when data files are missing (say where to put them) and
   ``ConfigError`` for a setting your class cannot work with: main.py prints either as one ``ERROR:``
   line. Any other exception is a bug and keeps its traceback. A checkpoint file your code opens goes
   through ``load_checkpoint`` (or ``check_checkpoint``), which turns a truncated or foreign file into
   one such line.
5. **Paths.** A relative path in a config is relative to the project folder: ``project_path`` resolves it.

main.py checks each part as early as it can be known: the links and the model's arguments before
anything is built, the monitored metric after the first validation (the sanity check included), the
predictions at the first predict batch. A breach is one ``ERROR:`` line naming what is missing.
This module holds the two errors and those checks (standard library only: sh/ scripts use it too; torch is
imported inside the functions that need it).
"""
import inspect
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Optional

PROJECT_ROOT = Path(__file__).resolve().parent


class ConfigError(RuntimeError):
    """A setting or input that cannot work here; main.py prints it as one ``ERROR:`` line."""


class DatasetNotFoundError(RuntimeError):
    """Data files are missing and could not be fetched; the message says where to put them."""


def project_path(path) -> Path:
    """A path from a config: relative paths are taken from the project folder, whatever the current one."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


LIGHTNING_ENTRIES = (b"state_dict", b"pytorch-lightning_version")  # keys of every checkpoint Lightning writes


def check_checkpoint(path, lightning: bool = True) -> Path:
    """``path`` as a Path when it is a complete torch checkpoint (and, with ``lightning``, one Lightning wrote);
    else ConfigError naming the file and what is wrong with it.

    Cheap: the zip archive's directory (at its end, so a truncated file fails) and its pickle (CRC-checked)
    are read; tensors are not.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            pickled = next((name for name in archive.namelist() if name.endswith("data.pkl")), None)
            data = archive.read(pickled) if pickled else None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise ConfigError(f"{path} is not a readable checkpoint: truncated, or not a torch file ({error})") from None
    if data is None:
        raise ConfigError(f"{path} is not a readable checkpoint: a zip archive without torch's data.pkl")
    if lightning and not all(entry in data for entry in LIGHTNING_ENTRIES):
        raise ConfigError(f"{path} is not a Lightning checkpoint: a torch file without Lightning's state_dict and "
                          f"pytorch-lightning_version entries (a bare state_dict or another program's file?)")
    return path


def load_checkpoint(path, lightning: bool = True) -> dict:
    """The checkpoint at ``path`` loaded on the CPU, after ``check_checkpoint``; a file torch cannot unpickle
    (a class from another project, a damaged tensor) is a ConfigError too."""
    import torch

    path = check_checkpoint(path, lightning)
    try:
        return torch.load(path, map_location="cpu", mmap=True, weights_only=False)  # tensors read when used
    except (RuntimeError, pickle.UnpicklingError, EOFError, ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"{path} is not a readable checkpoint: torch could not load it "
                          f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None


def links_of(datamodule_class) -> tuple:
    """The attribute names ``datamodule_class`` links into the model (its ``links``), checked."""
    links = getattr(datamodule_class, "links", ())
    if isinstance(links, str) or not all(isinstance(name, str) and name.isidentifier() for name in links):
        raise ConfigError(f"{datamodule_class.__qualname__}.links must be a tuple of attribute names, "
                          f"got {links!r}")
    return tuple(links)


def check_model_takes_links(model_class, datamodule_class) -> None:
    """ConfigError when the model's ``__init__`` has no argument for a value the datamodule links into it."""
    parameters = inspect.signature(model_class.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    missing = [name for name in links_of(datamodule_class) if name not in parameters]
    if missing:
        raise ConfigError(f"{datamodule_class.__qualname__} links {', '.join(missing)} into the model, but "
                          f"{model_class.__qualname__}.__init__ takes no argument of that name (add it, or drop it "
                          f"from {datamodule_class.__qualname__}.links)")


def check_monitor_logged(monitor: str, logged) -> None:
    """ConfigError when the monitored metric is not among those validation logged."""
    if monitor in logged:
        return
    shown = ", ".join(sorted(name for name in logged if name.startswith("val/"))) or "no val/ metric"
    raise ConfigError(f"run.monitor {monitor} was not logged by validation (it logged: {shown}); set run.monitor "
                      f"to one of them, or log {monitor} in validation_step")


def prediction_columns(output, rows: int, classes: Optional[list] = None) -> dict:
    """``{column: values}`` of one predict batch (``rows`` samples), by the rules in this module's point 3."""
    import torch

    outputs = {"prediction": output} if isinstance(output, torch.Tensor) else output
    if not isinstance(outputs, dict) or not all(isinstance(v, torch.Tensor) for v in outputs.values()):
        kind = type(output).__name__ if not isinstance(output, dict) else "dict holding non-tensors"
        raise ConfigError(f"predict_step must return a tensor or a dict of tensors, one row per sample; "
                          f"it returned a {kind}")
    columns = {}
    for key, value in outputs.items():
        value = value.detach().float().cpu() if value.is_floating_point() else value.detach().cpu()
        if value.ndim == 0 or len(value) != rows or value.ndim > 2:
            raise ConfigError(f"predict_step output {key!r} has shape {tuple(value.shape)}; it must have one row "
                              f"per sample of the batch ({rows}) and at most 2 dimensions")
        if value.ndim == 1:
            named = classes and key == "predicted" and not value.is_floating_point()
            columns[key] = [classes[i] for i in value.tolist()] if named else value.tolist()
            continue
        suffixes = classes if classes and value.shape[1] == len(classes) else range(value.shape[1])
        for j, suffix in enumerate(suffixes):
            columns[f"{key}_{suffix}"] = value[:, j].tolist()
    return columns
