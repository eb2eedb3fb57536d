"""Where paths lead in this project, and which names may become folders of results.

Standard library only: the scripts in sh/ (and the cookiecutter hook, through sh/structure.py)
use it before the project's dependencies are installed, and without importing torch.
"""
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# An experiment or version name: one folder level, no hidden or parent folder, no spaces.
FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def project_path(path) -> Path:
    """A path of a config file's value: relative paths are taken from the project root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def user_path(path) -> Path:
    """A path typed on a command line, made absolute.

    A relative path names what exists from the current folder, else what exists in the project
    (so ``-s config/search/grid.yaml`` works from any folder); a path not made yet goes beside the
    current folder when its parent folder is there, else into the project.
    """
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    here, in_project = Path.cwd() / path, PROJECT_ROOT / path
    if here.exists():
        return here
    if in_project.exists() or not here.parent.is_dir():
        return in_project
    return here


def folder_name_problem(what: str, name) -> str:
    """Why ``name`` cannot be the folder of an experiment or version (``what``), or '' when it can."""
    name = str(name)
    if FOLDER_NAME.match(name) and ".." not in name:
        return ""
    return (f"{what} name {name!r} is not a safe folder name "
            "(letters, digits, '_', '-', '.'; no '/', spaces or '..'; at most 64 characters)")
