"""A run's code state: the commit, the dirty flag and the uncommitted diff are recorded without touching git's index,
and checked out again byte for byte; a commit that is gone or a diff that does not apply is one line."""
import shutil
import subprocess

import pytest

from runtime import code_state
from runtime.code_state import CodeStateError, checked_out, git_state, requirement_versions, save_code_state

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(folder, *args) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                          capture_output=True, text=True).stdout


def write_bytes(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def repository(tmp_path):
    """A repository whose project lies in ``project/``, with one commit: code, a binary file, an ignored folder."""
    project = tmp_path / "repo" / "project"
    (project / "model").mkdir(parents=True)
    (project / "model" / "net.py").write_text("HIDDEN = 64\n")
    (project / "weights.bin").write_bytes(bytes(range(256)))
    (project / ".gitignore").write_text("res/\n")
    git(project.parent, "init", "-q")
    git(project.parent, "add", "-A")
    git(project.parent, "commit", "-q", "-m", "start")
    return project


def test_outside_git_and_before_the_first_commit_the_manifest_says_so(tmp_path):
    outside = git_state(tmp_path)
    assert outside["commit"] is None and "not a git checkout" in outside["note"]
    git(tmp_path, "init", "-q")
    assert "no commit yet" in git_state(tmp_path)["note"]
    assert save_code_state(tmp_path, tmp_path / "run", write_bytes)["commit"] is None
    assert not (tmp_path / "run" / "code.diff").exists()


def test_a_clean_tree_records_its_commit_and_saves_no_diff(repository, tmp_path):
    head = git(repository, "rev-parse", "HEAD").strip()
    run_dir = tmp_path / "run"
    state = save_code_state(repository, run_dir, write_bytes)
    assert state == {"commit": head, "dirty": False, "path": "project/", "diff": None}
    assert not (run_dir / "code.diff").exists()


def test_a_dirty_tree_saves_its_changes_and_untracked_code_and_leaves_the_index_alone(repository, tmp_path):
    (repository / "model" / "net.py").write_text("HIDDEN = 128\n")
    (repository / "weights.bin").write_bytes(bytes(range(255, -1, -1)))
    (repository / "model" / "new_layer.py").write_text("LAYER = 'new'\n")
    (repository / "notes.txt").write_text("not code\n")
    (repository / "res").mkdir()
    (repository / "res" / "ignored.py").write_text("ignored\n")
    status_before = git(repository, "status", "--porcelain")
    run_dir = tmp_path / "run"
    state = save_code_state(repository, run_dir, write_bytes)
    assert git(repository, "status", "--porcelain") == status_before  # nothing staged, nothing added
    assert state["dirty"] is True and state["path"] == "project/" and state["diff"] == "code.diff"
    assert state["untracked"] == ["model/new_layer.py"]
    diff = (run_dir / "code.diff").read_bytes()
    assert len(diff) == state["diff_bytes"] and b"GIT binary patch" in diff
    assert b"notes.txt" not in diff and b"ignored.py" not in diff

    with checked_out(repository, state["commit"], run_dir / "code.diff") as worktree:
        for name in ("model/net.py", "weights.bin", "model/new_layer.py"):
            assert (worktree / "project" / name).read_bytes() == (repository / name).read_bytes(), name
        assert not (worktree / "project" / "notes.txt").exists()
    assert not worktree.exists() and "reproduce" not in git(repository, "worktree", "list")

    (repository / "model" / "net.py").write_text("HIDDEN = 64\n")  # back to the commit, but notes.txt: still dirty
    (repository / "weights.bin").write_bytes(bytes(range(256)))
    (repository / "model" / "new_layer.py").unlink()
    again = save_code_state(repository, run_dir, write_bytes)
    assert again["dirty"] is True and again["diff"] is None and not (run_dir / "code.diff").exists()


def test_a_diff_over_the_size_cap_is_not_saved_and_the_manifest_says_why(repository, tmp_path, monkeypatch):
    monkeypatch.setattr(code_state, "MAX_DIFF_BYTES", 100)
    (repository / "model" / "net.py").write_text("HIDDEN = 128\n" * 50)
    state = save_code_state(repository, tmp_path / "run", write_bytes)
    assert state["diff"] is None and state["diff_bytes"] > 100 and "were not saved" in state["note"]
    assert not (tmp_path / "run" / "code.diff").exists()


def test_a_commit_that_is_gone_and_a_diff_that_does_not_apply_are_one_line_each(repository, tmp_path):
    with pytest.raises(CodeStateError, match=r"commit 0{12} is no longer in the repository"):
        with checked_out(repository, "0" * 40, None):
            pass
    broken = tmp_path / "code.diff"
    broken.write_text("diff --git a/model/net.py b/model/net.py\n--- a/model/net.py\n+++ b/model/net.py\n"
                      "@@ -1 +1 @@\n-HIDDEN = 32\n+HIDDEN = 16\n")
    with pytest.raises(CodeStateError, match=r"does not apply to commit") as raised:
        with checked_out(repository, git(repository, "rev-parse", "HEAD").strip(), broken):
            pass
    assert "\n" not in str(raised.value)
    assert git(repository, "worktree", "list").count("\n") == 1  # the temporary worktree is gone
    assert git(repository, "status", "--porcelain") == ""


def test_requirement_versions_name_each_requirement_with_its_installed_version(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# comment\npytest>=7  # tests\njsonargparse[signatures]>=4\nno-such-package-xyz\n"
                            "# pyarrow>=14  # optional\n")
    versions = requirement_versions(requirements)
    assert set(versions) == {"pytest", "jsonargparse", "no-such-package-xyz"}
    assert versions["pytest"] == pytest.__version__ and versions["no-such-package-xyz"] is None
