"""One-line messages for mistakes in configs and command lines (main.py prints them as ``ERROR: ...``).

jsonargparse reports a bad config as a page of usage plus a nested error; here that becomes one
line naming what is wrong: the malformed YAML file and line, the unknown key (and the config
file holding it), or the class_path that does not import. A value Lightning or torch refuses when
the trainer, model or data are built (devices 0, an unknown strategy) is one line too.
"""
import re
import traceback
from pathlib import Path
from typing import Optional

import yaml

UNKNOWN_KEY = re.compile(r"does not accept option '([^']+)'|Option '([^']+)' is not accepted")
SIMPLE_VALUE_TYPES = ("<class 'str'>", "<class 'int'>", "<class 'float'>", "<class 'bool'>")
SETTING_CHECKERS = ("pytorch_lightning", "lightning_fabric", "lightning_utilities", "torch", "torchmetrics",
                    "torchvision")


def one_line(text) -> str:
    """``text`` with its lines stripped and joined by spaces."""
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def masked(url: str) -> str:
    """``url`` with any password replaced by ``***``: a database or tracking server address as it is shown."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)


def cause_of_type(error, kinds):
    """``error``, or the exception it was raised from or while handling, that is one of ``kinds``; else None."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kinds):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def refused_setting(error) -> Optional[BaseException]:
    """The error, in ``error``'s chain, with which Lightning or torch refused a setting while the classes were
    built (``MisconfigurationException``, or a ValueError / TypeError / ImportError raised inside those
    packages, such as a strategy's missing package); else None.

    Errors raised in the project's own code keep their traceback: they are bugs to see, not settings.
    """
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    found = (cause_of_type(error, (MisconfigurationException,))
             or cause_of_type(error, (ValueError, TypeError, ImportError)))
    if found is None or isinstance(found, MisconfigurationException):
        return found
    frames = traceback.extract_tb(found.__traceback__)
    module = Path(frames[-1].filename).parts if frames else ()
    return found if any(package in module for package in SETTING_CHECKERS) else None


def config_files(args) -> list[Path]:
    """YAML files named on the command line (``-c FILE``, ``--config=FILE``, ``--data FILE``...)."""
    files = []
    for arg in map(str, args):
        value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
        path = Path(value)
        if path.suffix in (".yaml", ".yml") and path.is_file():
            files.append(path)
    return files


def yaml_problem(path: Path):
    """``<file>:<line>: <problem>`` when ``path`` is not YAML or holds something other than settings, else None."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" on line {error.context_mark.line + 1}" if error.context_mark else ""
        context = f" ({error.context}{where})" if error.context else ""
        return f"{path}:{mark.line + 1}: {one_line(error.problem)}{context}"
    except yaml.YAMLError as error:
        return f"{path}: {one_line(error)}"
    if not isinstance(data, (dict, type(None))):
        return f"{path}:1: expected 'key: value' settings, found a {type(data).__name__}"
    return None


def _keys(data):
    """Every mapping key anywhere in loaded YAML."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield str(key)
            yield from _keys(value)
    elif isinstance(data, list):
        for item in data:
            yield from _keys(item)


def files_with_key(name: str, paths) -> list[str]:
    """The config files that use ``name`` as a key somewhere."""
    holders = []
    for path in paths:
        try:
            if name in _keys(yaml.safe_load(path.read_text())):
                holders.append(str(path))
        except yaml.YAMLError:
            continue
    return holders


def _union_error(lines: list[str]) -> str:
    """``Parser key "x": <most specific error>`` from jsonargparse's 'does not validate against any' report."""
    start = next(i for i, line in enumerate(lines) if line.strip() == "Errors:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    items, given_type, given = [], "", ""
    for line in lines[start + 1:]:
        depth = len(line) - len(line.lstrip())
        if depth <= indent:
            text = line.strip()
            if text.startswith("Given value type: "):
                given_type = text.removeprefix("Given value type: ")
            elif text.startswith("Given value: "):
                given = text.removeprefix("Given value: ")
        elif depth == indent + 2 and line.strip().startswith("- "):
            items.append(line.strip()[2:])
        elif items:
            items[-1] += " " + line.strip()
    specific = [item for item in items if "NoneType" not in item] or items or [""]
    best = next((item for item in specific if "class_path" in item), specific[0])
    suffix = f" (given value: {given})" if given and given_type in SIMPLE_VALUE_TYPES else ""
    return f"{lines[0].strip()} {best}{suffix}"


def parse_error_message(error, args) -> str:
    """One line for a jsonargparse parse error raised while reading ``args``."""
    message = str(error)
    if message.startswith(("Problems parsing config", "Unexpected config")):
        problem = next(filter(None, map(yaml_problem, config_files(args))), None)
        if problem:
            return problem
    lines = message.splitlines()
    if "Does not validate against any of the Union subtypes" in message and any(
        line.strip() == "Errors:" for line in lines
    ):
        message = _union_error(lines)
    message = one_line(message)
    unknown = UNKNOWN_KEY.search(message)
    if unknown:
        key = (unknown.group(1) or unknown.group(2)).rsplit(".", 1)[-1]
        holders = files_with_key(key, config_files(args))
        if holders:
            message += f" (in {', '.join(holders)})"
    return message
