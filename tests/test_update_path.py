"""The update path: a baked project can be regenerated and updated from its recorded answers.

Offline, against a git repository made in a temporary folder from this template's files
(cruft needs the template in git). Cookiecutter reads a temporary user config (replay folder
included) through COOKIECUTTER_CONFIG, so the real home folder is never touched.
"""
import json
import os
import shutil
import sys

import pytest
from conftest import TEMPLATE, run, run_python

TEMPLATE_PARTS = ["cookiecutter.json", "hooks", "{{cookiecutter.project_slug}}"]
ANSWERS = {"dataset": "digits", "model": "mlp", "logger": "csv", "experiment_name": "first_try"}
MODEL_FILE = "model/classifier.py"
USER_EDIT = "\n\ndef user_helper():\n    return 'kept through cruft update'\n"


@pytest.fixture
def env(tmp_path):
    config = tmp_path / "cookiecutter-config.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'replay'}\ncookiecutters_dir: {tmp_path / 'cookiecutters'}\n")
    identity = {f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER")
                for what, value in (("NAME", "Test"), ("EMAIL", "test@example.com"))}
    return {**os.environ, **identity, "COOKIECUTTER_CONFIG": str(config)}


def git(env, cwd, *args):
    result = run(["git", *args], cwd, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def commit_all(env, repo, message):
    git(env, repo, "add", "-A")
    git(env, repo, "commit", "-q", "-m", message)


@pytest.fixture
def template_repo(tmp_path, env):
    """A git repository holding this template's files, as a user's clone of the template would."""
    repo = tmp_path / "template"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for part in TEMPLATE_PARTS:
        source = TEMPLATE / part
        if source.is_dir():
            shutil.copytree(source, repo / part, ignore=ignore)
        else:
            shutil.copy2(source, repo / part)
    git(env, repo, "init", "-q")
    commit_all(env, repo, "template")
    return repo


def cruft(env, cwd, *args):
    result = run_python(["-m", "cruft", *args], cwd, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def cruft_create(env, template_repo, output_dir, *options):
    output_dir.mkdir(exist_ok=True)
    cruft(env, output_dir, "create", str(template_repo), "--no-input", "--output-dir", str(output_dir), *options)
    (project,) = [path for path in output_dir.iterdir() if path.is_dir()]
    return project


def tree(root):
    """Every file under ``root`` (relative path -> bytes)."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_cruft_update_brings_template_changes_and_keeps_user_edits(tmp_path, env, template_repo):
    project = cruft_create(env, template_repo, tmp_path / "projects", "--extra-context", json.dumps(ANSWERS))
    assert json.loads((project / ".cruft.json").read_text())["template"] == str(template_repo)
    git(env, project, "init", "-q")
    commit_all(env, project, "baked")
    share = project / "config" / "first_try" / "share.yaml"
    share_before = share.read_text()
    with open(project / MODEL_FILE, "a") as f:
        f.write(USER_EDIT)
    commit_all(env, project, "my model change")

    baked = template_repo / "{{cookiecutter.project_slug}}"
    model_file = baked / MODEL_FILE
    model_file.write_text("# improved by the template\n" + model_file.read_text())
    (baked / "NEW_IN_TEMPLATE.md").write_text("added to the template after the bake\n")
    with open(baked / "config" / "template.yaml", "a") as f:
        f.write("# a new template setting\n")
    commit_all(env, template_repo, "template improvements")

    cruft(env, project, "update", "--skip-apply-ask")

    model_text = (project / MODEL_FILE).read_text()
    assert model_text.startswith("# improved by the template\n"), "the template change did not arrive"
    assert model_text.endswith(USER_EDIT), "the user's edit was lost"
    assert (project / "NEW_IN_TEMPLATE.md").read_text() == "added to the template after the bake\n"
    assert (project / "config" / "template.yaml").read_text().endswith("# a new template setting\n")
    assert share.read_text() == share_before, "the experiment tree is the user's: cruft must skip it"
    assert not list(project.rglob("*.rej")), "the update left conflicts"
    new_commit = git(env, template_repo, "rev-parse", "HEAD").strip()
    assert json.loads((project / ".cruft.json").read_text())["commit"] == new_commit
    cruft(env, project, "check")


def test_recorded_answers_with_one_prompt_changed_bake_the_next_project(tmp_path, env, template_repo):
    first = cruft_create(env, template_repo, tmp_path / "first", "--extra-context", json.dumps(ANSWERS))
    answers = json.loads((first / ".cookiecutter.json").read_text())
    assert not [key for key in answers if key.startswith("_")], "only the prompts' answers are recorded"

    answers["project_name"] = "Next Task"
    del answers["project_slug"]  # derived again from the new name
    answers_file = tmp_path / "answers.json"
    answers_file.write_text(json.dumps(answers))
    second = cruft_create(env, template_repo, tmp_path / "second", "--extra-context-file", str(answers_file))

    assert second.name == "next_task"
    recorded = json.loads((second / ".cookiecutter.json").read_text())
    assert recorded == {**answers, "project_slug": "next_task"}
    assert (second / "config" / "first_try" / "version_1" / "version.yaml").is_file()
    assert (second / ".cruft.json").is_file(), "the new project can be updated from the template too"


def test_cookiecutter_replay_reproduces_a_bake(tmp_path, env):
    cookiecutter = [sys.executable, "-m", "cookiecutter"]
    first = run([*cookiecutter, str(TEMPLATE), "--no-input", "-o", str(tmp_path / "a"),
                 *(f"{key}={value}" for key, value in ANSWERS.items())], tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    replay_file = tmp_path / "replay" / f"{TEMPLATE.name}.json"
    assert replay_file.is_file(), "cookiecutter must write its replay file to the configured replay_dir"

    replayed = run([*cookiecutter, str(TEMPLATE), "--replay", "-o", str(tmp_path / "b")], tmp_path, env=env)
    assert replayed.returncode == 0, replayed.stderr[-3000:]
    from_file = run([*cookiecutter, str(TEMPLATE), "--replay-file", str(replay_file), "-o", str(tmp_path / "c")],
                    tmp_path, env=env)
    assert from_file.returncode == 0, from_file.stderr[-3000:]

    original = tree(tmp_path / "a" / "lightning_research")
    assert original and "config/first_try/share.yaml" in original
    assert tree(tmp_path / "b" / "lightning_research") == original
    assert tree(tmp_path / "c" / "lightning_research") == original
