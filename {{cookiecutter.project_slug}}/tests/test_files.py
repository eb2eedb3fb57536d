"""Result files and checkpoints are replaced atomically: a failed write keeps the old file, no temporary left behind."""
import os
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT
from runtime.run_folder import read_json, write_json_atomic, write_text_atomic


def test_write_replaces_the_file_with_plain_permissions_and_no_leftovers(tmp_path):
    path = tmp_path / "run" / "metrics.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert read_json(path) == {"a": 2}
    assert os.listdir(path.parent) == ["metrics.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # readable like any file, not mkstemp's 0600


def test_a_write_that_fails_keeps_the_old_file(tmp_path):
    path = tmp_path / "history.csv"
    write_text_atomic(path, "epoch\n0\n")
    with pytest.raises(TypeError):
        write_text_atomic(path, object())  # fails inside the write, after the temporary file exists
    assert path.read_text() == "epoch\n0\n"
    assert os.listdir(tmp_path) == ["history.csv"]


def test_fit_writes_checkpoints_atomically(tmp_path, fast_args, monkeypatch):
    from main import main
    from runtime.callbacks import AtomicCheckpointIO

    saved = []
    original_save = AtomicCheckpointIO.save_checkpoint

    def save(self, checkpoint, path, storage_options=None):
        saved.append(Path(path).name)
        return original_save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", save)
    example = str(PROJECT_ROOT / "config" / "example.yaml")
    assert main(["fit", "-c", example, *fast_args]) == 0
    assert "last.ckpt" in saved
    checkpoints = tmp_path / "res" / "example" / "version_0" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == sorted(set(saved))  # no temporaries left


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    from runtime.callbacks import AtomicCheckpointIO

    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, path)
    with pytest.raises(Exception):
        AtomicCheckpointIO().save_checkpoint({"step": 2, "unpicklable": lambda: None}, path)
    assert AtomicCheckpointIO().load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["last.ckpt"]
