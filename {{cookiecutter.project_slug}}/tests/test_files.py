"""Result files are replaced atomically: a failed write keeps the old file and leaves no temporary behind."""
import os

import pytest

from runtime.files import read_json, write_json_atomic, write_text_atomic


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
