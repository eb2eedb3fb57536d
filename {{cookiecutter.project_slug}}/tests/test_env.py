"""The project's .env reaches main.py and sh/ without overriding the shell, and DATA_DIR moves the data."""
import os

import runtime
from conftest import PROJECT_ROOT
from data._common import data_root


def test_env_file_fills_variables_that_are_not_set_and_leaves_the_others(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("DATA_DIR=/from/the/file\nWANDB_API_KEY=abc123\n# a comment\n")
    monkeypatch.setenv("DATA_DIR", "/set/in/the/shell")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    runtime.load_env_file(env_file)
    assert os.environ["DATA_DIR"] == "/set/in/the/shell" and os.environ["WANDB_API_KEY"] == "abc123"
    monkeypatch.delenv("WANDB_API_KEY")
    runtime.load_env_file(tmp_path / "missing.env")  # no file: nothing happens
    assert "WANDB_API_KEY" not in os.environ


def test_data_dir_null_follows_data_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("DATA_DIR", raising=False)
    assert data_root(None) == PROJECT_ROOT / "data" / "datasets"
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "shared"))
    assert data_root(None, "images") == tmp_path / "shared" / "images"
    assert data_root("data/mine") == PROJECT_ROOT / "data" / "mine"  # a data_dir given wins
{%- if cookiecutter.task in ['image_classification', 'autoencoder'] and cookiecutter.__dataset != 'imagefolder' %}


def test_the_datamodules_default_folder_is_data_dir_from_the_environment(tmp_path, monkeypatch):
    from conftest import datamodule_class

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "shared"))
    assert datamodule_class()().data_dir == tmp_path / "shared"
{%- endif %}


def test_env_example_names_the_variables_and_env_is_ignored_by_git():
    example = (PROJECT_ROOT / ".env.example").read_text()
    assert all(f"\n# {name}=" in example for name in ("DATA_DIR", "WANDB_API_KEY", "MLFLOW_TRACKING_URI"))
    from dotenv import dotenv_values

    assert dotenv_values(PROJECT_ROOT / ".env.example") == {}  # copied as it is, it sets nothing (no empty keys)
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().splitlines()
