"""Atomic file writes: a crash never leaves a half-written results file behind."""
import csv
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path, mode: str = "w"):
    """Open a temporary file beside ``path`` for writing; on success it is synced and renamed over ``path``.

    A crash or an exception inside the block leaves ``path`` as it was and no temporary behind.
    The file gets the permissions a plain ``open(path, "w")`` would give (0666 minus the umask),
    not mkstemp's private 0600, so results stay readable by the group on a shared cluster.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    with atomic_file(path) as f:
        f.write(text)


def write_json_atomic(path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path, default=None):
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else default


def read_csv(path) -> list:
    """The rows of a CSV file as dicts of strings; empty when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
