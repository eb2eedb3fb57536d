"""The code and software a run was made with, saved beside its manifest.json, and that code checked out again.

A fit records the git commit of the project, whether the tree was dirty and where the project lies in the
repository; when it was dirty, ``code.diff`` holds the uncommitted changes against that commit (``git diff
--binary``: edits, deletions and binary files of tracked files, plus untracked ``.py``/``.yaml`` files),
unless it is larger than ``MAX_DIFF_BYTES``, which the manifest then says. ``environment.txt`` lists every
installed distribution as ``name==version``. ``checked_out`` gives that code back: the commit as a git
worktree in a temporary folder with ``code.diff`` applied (sh/reproduce.py trains there).

Standard library only (sh/reproduce.py runs without importing torch); git is called as a program.
"""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Optional

DIFF_FILE = "code.diff"
ENVIRONMENT_FILE = "environment.txt"
MAX_DIFF_BYTES = 10 * 2**20  # a larger diff (data or weights left untracked in the tree) is not saved
UNTRACKED_CODE = ("*.py", "*.yaml", "*.yml")  # untracked files that count as code


class CodeStateError(RuntimeError):
    """The recorded code cannot be checked out again (a commit gone, a diff that does not apply); one line."""


def git(folder, *args, env=None, text=True) -> str:
    """Run git in ``folder`` and return its output; CalledProcessError (with git's stderr) when it fails."""
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=text, timeout=120, check=False,
                          env=env)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, ["git", *args], done.stdout, done.stderr)
    return done.stdout


def git_state(folder) -> dict:
    """``{"commit", "dirty", "path"}`` of the git checkout holding ``folder`` (``path``: the folder's place in the
    repository, "" at its top); outside git, or in a repository without a commit, the commit is None and
    ``note`` says why."""
    try:
        git(folder, "rev-parse", "--show-toplevel")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "path": None,
                "note": "not a git checkout (or git is not installed): the code of this run is not recorded"}
    try:
        commit = git(folder, "rev-parse", "--verify", "HEAD").strip()
    except subprocess.SubprocessError:
        return {"commit": None, "dirty": None, "path": None,
                "note": "the git repository has no commit yet: the code of this run is not recorded"}
    dirty = bool(git(folder, "status", "--porcelain").strip())
    return {"commit": commit, "dirty": dirty, "path": git(folder, "rev-parse", "--show-prefix").strip()}


def uncommitted_diff(folder) -> tuple[bytes, list]:
    """(``git diff --binary HEAD`` of ``folder``, the untracked code files it adds) with the real index untouched:
    a copy of the index takes the changes and the untracked code files, and is diffed against HEAD."""
    untracked = [name for name in git(folder, "ls-files", "--others", "--exclude-standard", "-z", "--",
                                      *UNTRACKED_CODE).split("\0") if name]
    index = Path(folder, git(folder, "rev-parse", "--git-path", "index").strip())
    with tempfile.TemporaryDirectory(prefix="code-state-") as scratch:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(scratch) / "index")}
        if index.is_file():
            shutil.copyfile(index, env["GIT_INDEX_FILE"])
        else:
            git(folder, "read-tree", "HEAD", env=env)
        git(folder, "add", "--update", "--", ".", env=env)
        if untracked:
            git(folder, "add", "--", *untracked, env=env)
        diff = git(folder, "diff", "--cached", "--binary", "--no-color", "--no-ext-diff", "HEAD", "--", ".", env=env,
                   text=False)
    return diff, untracked


def save_code_state(folder, run_dir: Path, write_bytes) -> dict:
    """The manifest's ``git`` record of the project in ``folder``; when its tree is dirty, the uncommitted diff is
    written to ``run_dir/code.diff`` with ``write_bytes(path, data)`` (an atomic write), and a diff an earlier
    attempt of the run left there is removed when there is none now."""
    state = git_state(folder)
    diff_file = Path(run_dir) / DIFF_FILE
    diff, untracked = b"", []
    if state["commit"]:
        state["diff"] = None
    if state["dirty"]:
        try:
            diff, untracked = uncommitted_diff(folder)
        except (OSError, subprocess.SubprocessError) as error:
            state["note"] = f"the uncommitted changes could not be saved ({' '.join(str(error).split())[:200]})"
    if diff and len(diff) > MAX_DIFF_BYTES:
        state.update(diff=None, diff_bytes=len(diff),
                     note=f"the uncommitted changes ({len(diff) / 2**20:.1f} MiB of diff, more than "
                          f"{MAX_DIFF_BYTES // 2**20} MiB: large files left untracked?) were not saved; commit them "
                          "(or ignore the large files) for a run that can be reproduced")
        diff = b""
    elif diff:
        state.update(diff=DIFF_FILE, diff_bytes=len(diff), diff_sha256=hashlib.sha256(diff).hexdigest(),
                     untracked=untracked)
        write_bytes(diff_file, diff)
    if not diff:
        diff_file.unlink(missing_ok=True)
    return state


def installed_distributions() -> str:
    """Every installed distribution as ``name==version`` lines, sorted (what ``pip install -r`` takes)."""
    found = {}
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), distribution.version)
    return "".join(f"{name}=={version}\n" for name, version in sorted(found.items()))


def requirement_versions(requirements_file: Path) -> dict:
    """``{package: installed version or None}`` of the packages a requirements file names (comments left out)."""
    versions = {}
    lines = requirements_file.read_text().splitlines() if requirements_file.is_file() else []
    for line in lines:
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9_.-]*)", line.split("#", 1)[0])
        if name:
            try:
                versions[name.group(1)] = metadata.version(name.group(1))
            except metadata.PackageNotFoundError:
                versions[name.group(1)] = None
    return versions


@contextmanager
def checked_out(repository: Path, commit: str, diff: Optional[Path]):
    """The repository at ``commit`` with ``diff`` applied, as a git worktree in a temporary folder (yielded); the
    worktree is removed afterwards. CodeStateError, in one line, when the commit is gone or the diff does not
    apply."""
    try:
        git(repository, "cat-file", "-e", commit + "^{commit}")
    except subprocess.SubprocessError:
        raise CodeStateError(f"commit {commit[:12]} is no longer in the repository (a rebase or a shallow clone?): "
                             "fetch it, or train the version again") from None
    scratch = Path(tempfile.mkdtemp(prefix="reproduce-"))
    worktree = scratch / "code"
    try:
        git(repository, "worktree", "add", "--detach", "--quiet", str(worktree), commit)
        if diff is not None:
            try:
                git(worktree, "apply", "--binary", "--whitespace=nowarn", str(diff))
            except subprocess.CalledProcessError as error:
                why = " ".join((error.stderr or "").split())[:300]
                raise CodeStateError(f"{diff} does not apply to commit {commit[:12]} ({why})") from None
        yield worktree
    finally:
        try:
            git(repository, "worktree", "remove", "--force", str(worktree))
        except (OSError, subprocess.SubprocessError):
            pass
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            git(repository, "worktree", "prune")
        except (OSError, subprocess.SubprocessError):
            pass
