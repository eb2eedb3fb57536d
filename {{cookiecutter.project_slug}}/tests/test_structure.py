"""sh/structure.py creates experiment trees and never touches what exists."""
import subprocess
import sys

import pytest
import yaml

import structure
from _experiments import UsageError, create_experiment, user_path
from conftest import PROJECT_ROOT

TEMPLATE = PROJECT_ROOT / "config" / "template.yaml"


def test_creates_share_desc_and_versions(tmp_path):
    create_experiment("exp", 3, tmp_path, TEMPLATE, "why")
    exp = tmp_path / "exp"
    assert (exp / "share.yaml").read_text() == TEMPLATE.read_text()
    assert (exp / "desc.txt").read_text().strip() == "why"
    for k in range(3):
        text = (exp / f"version_{k}" / "version.yaml").read_text()
        assert f"res/exp/version_{k}" in text and yaml.safe_load(text) is None  # the folder names the run
        assert (exp / f"version_{k}" / "detail_desc.txt").is_file()


def test_adding_versions_keeps_existing_ones(tmp_path):
    create_experiment("exp", 2, tmp_path, TEMPLATE)
    edited = tmp_path / "exp" / "version_1" / "version.yaml"
    edited.write_text("run:\n  version: version_1\n# edited\n")
    (tmp_path / "exp" / "share.yaml").write_text("# my share\n")
    create_experiment("exp", 2, tmp_path, TEMPLATE)
    assert edited.read_text().endswith("# edited\n")
    assert (tmp_path / "exp" / "share.yaml").read_text() == "# my share\n"
    assert sorted(p.name for p in (tmp_path / "exp").glob("version_*")) == [f"version_{k}" for k in range(4)]


def test_numbers_create_exactly_those_versions_and_refuse_existing_ones_without_force(tmp_path):
    create_experiment("exp", 1, tmp_path, TEMPLATE, numbers=[3, 5])
    exp = tmp_path / "exp"
    assert sorted(p.name for p in exp.glob("version_*")) == ["version_3", "version_5"]
    assert "exp/version_5: only the keys" in (exp / "version_5" / "version.yaml").read_text()
    edited = exp / "version_3" / "version.yaml"
    edited.write_text("# edited\n")
    with pytest.raises(UsageError, match="version_3 already exists"):
        create_experiment("exp", 1, tmp_path, TEMPLATE, numbers=[4, 3])
    assert edited.read_text() == "# edited\n" and not (exp / "version_4").exists()
    create_experiment("exp", 1, tmp_path, TEMPLATE, numbers=[3], force=True)
    assert "exp/version_3: only the keys" in edited.read_text() and "# edited" not in edited.read_text()


def test_a_folder_that_is_not_an_experiment_is_refused(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine\n")
    with pytest.raises(UsageError, match="is not an experiment"):
        create_experiment("notes", 1, tmp_path, TEMPLATE)
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["todo.txt"]


@pytest.mark.parametrize("name", ["a/b", "..", "has space", "/abs", ""])
def test_unsafe_experiment_names_are_refused(tmp_path, name):
    with pytest.raises(UsageError):
        create_experiment(name, 1, tmp_path, TEMPLATE)
    assert list(tmp_path.iterdir()) == []


def test_force_without_n_is_refused(tmp_path):
    with pytest.raises(UsageError, match="--force goes with -n"):
        structure.main(["-e", "exp", "--force", "-c", str(tmp_path), "-t", str(TEMPLATE)])
    assert list(tmp_path.iterdir()) == []


def test_a_new_description_for_an_existing_experiment_is_not_silently_dropped(tmp_path, capsys):
    create_experiment("exp", 1, tmp_path, TEMPLATE, "why")
    create_experiment("exp", 1, tmp_path, TEMPLATE, "a new reason")
    assert (tmp_path / "exp" / "desc.txt").read_text() == "why\n"
    assert "desc.txt exists and is kept" in capsys.readouterr().err


def test_command_line_error_is_one_line_and_nonzero(tmp_path):
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "sh" / "structure.py"), "-e", "bad/name", "-c", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert result.stderr.strip().startswith("ERROR:") and len(result.stderr.strip().splitlines()) == 1


def test_the_seeds_command_works_with_paths_relative_to_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "work" / "sh").mkdir(parents=True)
    (tmp_path / "work" / "template.yaml").write_text("# mine\n")
    monkeypatch.chdir(tmp_path / "work" / "sh")
    assert structure.main(["-e", "resnet", "-v", "3", "-c", "../config", "-t", "../template.yaml", "--quiet"]) == 0
    experiment = tmp_path / "work" / "config" / "resnet"
    assert (experiment / "share.yaml").read_text() == "# mine\n"
    assert sorted(p.name for p in experiment.glob("version_*")) == ["version_0", "version_1", "version_2"]


def test_typed_paths_name_what_exists_here_else_in_the_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    assert user_path("config") == tmp_path / "config"  # the current folder first
    assert user_path("config/template.yaml") == TEMPLATE  # not here: the project's
    assert user_path("new_report") == tmp_path / "new_report"  # to be made, beside the current folder
    assert user_path("res/compare") == PROJECT_ROOT / "res" / "compare"  # its parent is in the project only
    assert user_path(str(tmp_path / "x")) == tmp_path / "x"
