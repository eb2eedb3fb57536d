"""What the scripts in sh/ share: experiment folders, one-line usage errors, paths typed by the user.

Standard library only (with runtime/paths.py), so the scripts (and the cookiecutter hook that
calls structure.py) run before the project's dependencies are installed.
"""
import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from runtime.paths import PROJECT_ROOT, folder_name_problem, project_path, user_path  # noqa: E402, F401 (for sh/)

VERSION_DIR = re.compile(r"^version_(\d+)$")


class UsageError(Exception):
    """A problem with what the user asked for; printed as one ``ERROR:`` line."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as a UsageError (one ``ERROR:`` line, exit 2), not a usage page.

    Options added with ``add_arguments_option`` take other programs' arguments as their value, so
    ``-o "--trainer.max_epochs=3"`` works (plain argparse takes such a value for an unknown option).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._arguments_options = set()

    def add_arguments_option(self, *flags, **kwargs):
        self._arguments_options.update(flags)
        return self.add_argument(*flags, **kwargs)

    def add_path_argument(self, *flags, default=None, help="", **kwargs):
        """A path option: a typed value is read by ``user_path``; the default lies in the project."""
        if default is not None:
            help = f"{help} (default: {default} of the project)"
            default = PROJECT_ROOT / default
        return self.add_argument(*flags, type=user_path, default=default, help=help, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        tokens = iter(sys.argv[1:] if args is None else args)
        glued = []
        for token in tokens:
            value = next(tokens, None) if token in self._arguments_options else None
            glued.append(token if value is None else f"{token}={value}")
        return super().parse_known_args(glued, namespace)

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def shown(path):
    """A path as the user reads it: relative to the project when inside it."""
    try:
        return str(Path(path).relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def check_experiment_name(name):
    problem = folder_name_problem("experiment", name)
    if problem:
        raise UsageError(problem)
    return name


def flatten(tree, prefix="") -> dict:
    """Nested mappings as dotted keys: a: (b: 1) -> a.b: 1."""
    flat = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def version_numbers(experiment_dir):
    """Sorted version numbers k of the ``version_k`` folders holding a version.yaml."""
    if not experiment_dir.is_dir():
        return []
    numbers = []
    for child in experiment_dir.iterdir():
        match = VERSION_DIR.match(child.name)
        if match and (child / "version.yaml").is_file():
            numbers.append(int(match.group(1)))
    return sorted(numbers)


def experiment_names(config_dir):
    """Experiments under ``config_dir``: folders holding a share.yaml."""
    return sorted(p.parent.name for p in config_dir.glob("*/share.yaml"))


def exit_on_usage_error(main):
    """Run ``main()``; turn a UsageError into one ``ERROR:`` line and exit status 2."""
    try:
        return main()
    except UsageError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 2
