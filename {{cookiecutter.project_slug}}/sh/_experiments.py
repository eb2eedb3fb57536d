"""The experiment library the scripts in sh/ share: the experiment tree, its versions, their run folders,
status and locks, and one-line usage errors. Torch-free (standard library and PyYAML), so the scripts
start at once; the cookiecutter hook runs sh/structure.py through it before anything is installed.

    config/<exp>/share.yaml               what the versions share (a copy of config/template.yaml)
    config/<exp>/desc.txt                 what the experiment asks
    config/<exp>/version_k/version.yaml   only what version k changes
    config/<exp>/version_k/detail_desc.txt
    res/<exp>/version_k/                  what version k's runs leave (runtime/run_folder.py)

This module is the one place sh/ puts the project folder on ``sys.path``: for runtime/run_folder.py,
which main.py uses too, so both agree on every path, name and status.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
from runtime.run_folder import (  # noqa: E402
    VERSION_DIR,
    ResultsNotWritten,
    RunPaths,
    config_file_at,
    folder_name_problem,
    newest_checkpoint,
    project_path,
    user_path,
    with_version_identity,
    write_text_atomic,
)

DEFAULT_RES_DIR = "res"
# Versions that differ only in these keys repeat one setting (sh/report.py averages them and pairs them up)
SEED_KEY = "seed_everything"
FOLD_KEY = "data.init_args.fold"  # sh/hparams.py --folds
REPEAT_KEYS = (SEED_KEY, FOLD_KEY)
MAX_NEW_VERSIONS = 5000  # versions one command may write: a typo (-v 100000) must not fill the disk with folders


# ----------------------------------------------------------------------------- command lines

class UsageError(Exception):
    """A problem with what the user asked for; printed as one ``ERROR:`` line."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as a UsageError (one ``ERROR:`` line, exit 2), not a usage page.

    Options added with ``add_arguments_option`` take other programs' arguments as their value, so
    ``-o "--trainer.max_epochs=3"`` works (plain argparse takes such a value for an unknown option).
    A script's parser prints its shell completion with ``--print_completion bash|zsh|tcsh`` (shtab).
    """

    def __init__(self, *args, **kwargs):
        top_level = "prog" not in kwargs  # argparse names its sub-commands' parsers itself
        super().__init__(*args, **kwargs)
        self._arguments_options = set()
        if top_level:
            try:
                import shtab
            except ImportError:  # the bake's hook runs sh/structure.py before anything is installed
                return
            shtab.add_argument_to(self, "--print_completion", help="print a shell completion script and exit")

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


def exit_on_usage_error(main):
    """Run ``main()``; turn a UsageError into one ``ERROR:`` line and exit status 2, and a results file that could
    not be written (a full disk, a file in the way) into one line and exit status 1."""
    try:
        return main()
    except UsageError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 2
    except ResultsNotWritten as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1


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


def split_main_args(texts) -> list:
    """-o/--other_para (given once or more) as one argument list, each split like a shell would; config files
    named from the current folder are handed to main.py (which runs in the project folder) absolute."""
    arguments = []
    for text in [texts] if isinstance(texts, str) else texts:
        try:
            arguments += shlex.split(text)
        except ValueError as error:
            raise UsageError(f"-o/--other_para {text!r}: {error}") from None
    for i in range(len(arguments)):
        config = config_file_at(arguments, i)
        found = None if config is None else user_path(config)
        if found is None or not found.is_file():
            continue
        if arguments[i].startswith("--config="):
            arguments[i] = f"--config={found}"
        else:
            arguments[i + 1] = str(found)
    return arguments


def read_yaml(path: Path) -> dict:
    """A YAML mapping; UsageError naming the file when it is not valid YAML, {} when it holds no mapping."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path} is not valid YAML: {' '.join(str(error).split())}") from None
    return data if isinstance(data, dict) else {}


# ----------------------------------------------------------------------------- the experiment tree

def experiment_names(config_dir: Path) -> list:
    """Experiments under ``config_dir``: folders holding a share.yaml."""
    return sorted(p.parent.name for p in Path(config_dir).glob("*/share.yaml"))


def version_numbers(experiment_dir: Path) -> list:
    """Sorted version numbers k of the ``version_k`` folders holding a version.yaml."""
    if not Path(experiment_dir).is_dir():
        return []
    numbers = []
    for child in Path(experiment_dir).iterdir():
        match = VERSION_DIR.match(child.name)
        if match and (child / "version.yaml").is_file():
            numbers.append(int(match.group(1)))
    return sorted(numbers)


def ensure_experiment(name, config_dir, template, description=""):
    """The experiment's folder, with share.yaml (a copy of ``template``) and desc.txt; (folder, paths created)."""
    check_experiment_name(name)
    template = project_path(template)
    if not template.is_file():
        raise UsageError(f"template {template} does not exist")
    experiment_dir = project_path(config_dir) / name
    if experiment_dir.exists() and not experiment_dir.is_dir():
        raise UsageError(f"{experiment_dir} is a file, not an experiment: choose another name")
    if experiment_dir.is_dir() and not (experiment_dir / "share.yaml").exists() and any(experiment_dir.iterdir()):
        raise UsageError(f"{experiment_dir} exists and is not an experiment (no share.yaml): choose another name")
    experiment_dir.mkdir(parents=True, exist_ok=True)
    created = []
    share = experiment_dir / "share.yaml"
    if not share.exists():
        write_text_atomic(share, template.read_text())
        created.append(share)
    desc = experiment_dir / "desc.txt"
    if not desc.exists():
        write_text_atomic(desc, (description or f"{name}: what this experiment tests and why.") + "\n")
        created.append(desc)
    elif description and desc.read_text().strip() != description.strip():
        print(f"note: {desc} exists and is kept as it is (edit it to change the description)", file=sys.stderr)
    return experiment_dir, created


VERSION_HEADER = ("# {experiment}/version_{k}: only the keys this version changes. They override ../share.yaml\n"
                  "# (later config files win); the folder names the results folder, res/{experiment}/version_{k}.\n")
VERSION_EXAMPLE = """\
# For example:
#
# optimizer:
#   init_args:
#     lr: 0.01
# model:
#   init_args:
#     backbone: cnn
"""


def write_version(version_dir: Path, k: int, overrides: str = "", detail: str = "") -> None:
    """Write version k's detail_desc.txt, then its version.yaml, into the existing ``version_dir``."""
    detail = detail or f"version_{k}: how this version differs from the others."
    write_text_atomic(version_dir / "detail_desc.txt", detail.rstrip("\n") + "\n")
    header = VERSION_HEADER.format(experiment=version_dir.parent.name, k=k)
    write_text_atomic(version_dir / "version.yaml", header + (overrides or VERSION_EXAMPLE))


def add_version(experiment_dir: Path, overrides: str = "", detail: str = "") -> Path:
    """Create the next free ``version_k`` of the experiment and return its folder.

    ``overrides`` is YAML text of the keys this version changes. The folder is claimed with an atomic
    mkdir, trying the next number when another process got there first; version.yaml is renamed into
    place last, so a version is visible (to ``version_numbers``) only once complete.
    """
    experiment_dir = Path(experiment_dir)
    taken = [int(match.group(1)) for match in map(VERSION_DIR.match, os.listdir(experiment_dir)) if match]
    k = max(taken, default=-1) + 1
    while True:
        version_dir = experiment_dir / f"version_{k}"
        try:
            version_dir.mkdir()
            break
        except FileExistsError:
            k += 1
    write_version(version_dir, k, overrides, detail)
    return version_dir


def _check_numbers(experiment_dir, numbers, force):
    """``numbers`` sorted and without repeats, once it is clear that each may be written."""
    if not numbers or min(numbers) < 0:
        raise UsageError(f"-n/--numbers must be version numbers >= 0, got {numbers}")
    numbers = sorted(set(numbers))
    existing = [str(experiment_dir / f"version_{k}") for k in numbers if (experiment_dir / f"version_{k}").exists()]
    if existing and not force:
        raise UsageError(f"{', '.join(existing)} already exists: choose other numbers, or add --force for fresh files")
    return numbers


def check_version_count(count: int, what: str = "versions") -> None:
    """UsageError when one command would write more than MAX_NEW_VERSIONS versions."""
    if count > MAX_NEW_VERSIONS:
        raise UsageError(f"{count} {what} is more than one command writes at once ({MAX_NEW_VERSIONS}); "
                         "split the request, or draw `samples: N` points at random")


def create_experiment(name, n_versions, config_dir, template, description="", numbers=None, force=False):
    """Create the experiment (if new) and its versions; return the created paths.

    Adds ``n_versions`` new versions after the last one, or, with ``numbers``, exactly those
    versions (ones that exist only with ``force``). Every check runs before anything is written.
    """
    check_experiment_name(name)
    if numbers is None and n_versions < 1:
        raise UsageError(f"-v/--v_num must be a positive integer, got {n_versions}")
    check_version_count(len(numbers) if numbers is not None else n_versions)
    if numbers is not None:
        numbers = _check_numbers(project_path(config_dir) / name, numbers, force)
    experiment_dir, created = ensure_experiment(name, config_dir, template, description)
    if numbers is None:
        return created + [add_version(experiment_dir) for _ in range(n_versions)]
    for k in numbers:
        version_dir = experiment_dir / f"version_{k}"
        version_dir.mkdir(exist_ok=force)  # without --force, a version another process just made stays its own
        write_version(version_dir, k)
        created.append(version_dir)
    return created


# ----------------------------------------------------------------------------- versions and their run folders

def run_settings(main_args, section: str = "run") -> dict:
    """The ``run:`` settings (or another top-level ``section``'s) main.py's arguments give, as main.py's parser takes
    them: each config file's section and the identity its place implies (runtime/run_folder.py's rule), then
    ``--run.*`` options, later ones winning. The scripts read where a run writes, and its monitor, from here."""
    args, found, option = with_version_identity(main_args), {}, f"--{section}."
    for i, token in enumerate(args):
        config = config_file_at(args, i)
        if config is not None:
            if not Path(config).is_file():
                raise UsageError(f"config file {config} not found")
            settings = read_yaml(Path(config)).get(section)
            found.update(settings if isinstance(settings, dict) else {})
        elif token.startswith(option) and "=" in token:
            key, value = token[len(option):].split("=", 1)
            found[key] = value
        elif token.startswith(option) and i + 1 < len(args):
            found[token[len(option):]] = args[i + 1]
    return found


@dataclass(frozen=True)
class Version:
    """One version of an experiment: its two config files, the extra main.py arguments it runs with and the
    folder its results go to."""

    experiment_dir: Path
    number: int
    main_args: tuple = ()

    @property
    def label(self) -> str:
        return f"{self.experiment_dir.name}/version_{self.number}"

    @property
    def config_files(self) -> tuple[Path, Path]:
        return self.experiment_dir / "share.yaml", self.experiment_dir / f"version_{self.number}" / "version.yaml"

    @cached_property
    def settings(self) -> dict:
        share, version_yaml = self.config_files
        return run_settings(["-c", str(share), "-c", str(version_yaml), *self.main_args])

    @cached_property
    def trainer_settings(self) -> dict:
        """The ``trainer:`` settings its configs and extra arguments give (devices, num_nodes, accelerator ...)."""
        share, version_yaml = self.config_files
        return run_settings(["-c", str(share), "-c", str(version_yaml), *self.main_args], "trainer")

    @cached_property
    def paths(self) -> RunPaths:
        run = self.settings
        return RunPaths(project_path(str(run.get("res_dir") or DEFAULT_RES_DIR)), str(run["experiment"]),
                        str(run["version"]))

    def fit_command(self, *extra) -> list:
        """The main.py command line that trains this version."""
        share, version_yaml = self.config_files
        return [sys.executable, str(PROJECT_ROOT / "main.py"), "fit", "-c", str(share), "-c", str(version_yaml),
                *extra, *self.main_args]

    def resume_arguments(self) -> list:
        """``--ckpt_path hpc|last`` for the newest checkpoint its run left; nothing when there is none or
        the extra arguments give one already."""
        if any(arg == "--ckpt_path" or arg.startswith("--ckpt_path=") for arg in self.main_args):
            return []
        newest = newest_checkpoint(self.paths)
        return ["--ckpt_path", newest[0]] if newest else []


def experiment_results_dir(experiment_dir: Path, main_args=()) -> Path:
    """``<res_dir>/<experiment>``: where the experiment's runs (and its report and study) go."""
    run = run_settings(["-c", str(experiment_dir / "share.yaml"), *main_args])
    return project_path(str(run.get("res_dir") or DEFAULT_RES_DIR)) / experiment_dir.name


def merged_configs(arg_lists) -> list:
    """What main.py would train with for each argument list, from jsonargparse itself (one process for all,
    ``python -m runtime.cli``): every setting with its default; None for a list that does not parse."""
    return list(_merged_configs(tuple(tuple(map(str, args)) for args in arg_lists)))


@lru_cache(maxsize=16)
def _merged_configs(arg_lists: tuple) -> tuple:
    if not arg_lists:
        return ()
    command = [sys.executable, "-m", "runtime.cli", json.dumps([list(args) for args in arg_lists])]
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1800)
    try:
        configs = json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else None
    except (ValueError, IndexError):
        configs = None
    if not isinstance(configs, list):
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"note: main.py's settings could not be read ({last})", file=sys.stderr)
        return (None,) * len(arg_lists)
    return tuple(configs)


def listing(numbers) -> str:
    return ", ".join(map(str, numbers)) or "none"


def chosen_numbers(args, experiment_dir: Path) -> list[int]:
    """The version numbers of one experiment picked by exactly one of -v, -n, -b/-t, --all_ver (none: all)."""
    name, existing = experiment_dir.name, version_numbers(experiment_dir)
    if not existing:
        raise UsageError(f"experiment {name!r} has no versions (add some with sh/structure.py)")
    ways = [flag for flag, given in (("-v", args.v_num is not None), ("-n", args.n is not None),
                                     ("-b/-t", args.begin_ver is not None or args.end_ver is not None),
                                     ("--all_ver", args.all_ver)) if given]
    if len(ways) > 1:
        raise UsageError(f"choose versions one way, got {' and '.join(ways)}")
    if not ways:
        return existing
    if args.v_num is not None or args.n is not None:
        wanted = [args.v_num] if args.v_num is not None else list(dict.fromkeys(args.n))
        missing = [k for k in wanted if k not in existing]
        if missing:
            raise UsageError(f"{name!r} has no version {listing(missing)} (its versions: {listing(existing)})")
        return wanted
    if args.all_ver:
        return existing
    begin = args.begin_ver if args.begin_ver is not None else existing[0]
    end = args.end_ver if args.end_ver is not None else existing[-1] + 1
    negative = [f"{flag} {value}" for flag, value in (("-b", args.begin_ver), ("-t", args.end_ver))
                if value is not None and value < 0]
    if negative:
        raise UsageError(f"version numbers are never negative, got {' '.join(negative)}")
    if begin >= end:
        raise UsageError(f"empty range -b {begin} -t {end}: the range is half-open, -b B -t T runs B .. T-1")
    chosen = [k for k in existing if begin <= k < end]
    if not chosen:
        raise UsageError(f"{name!r} has no version in [{begin}, {end}) (its versions: {listing(existing)})")
    return chosen


def find_experiment(config_dir: Path, name: str) -> Path:
    """The folder of experiment ``name``; UsageError listing the experiments when there is none."""
    experiment_dir = Path(config_dir) / check_experiment_name(name)
    if not (experiment_dir / "share.yaml").is_file():
        raise UsageError(f"experiment {name!r} not found in {config_dir} "
                         f"(experiments: {', '.join(experiment_names(config_dir)) or 'none'})")
    return experiment_dir


def select_versions(args, main_args=()) -> list[Version]:
    """The versions the command line asks for; UsageError when that is unclear (nothing runs then).

    As the seed has it: ``-e NAME`` with ``-v``, ``-n``, ``-b``/``-t`` or ``--all_ver`` (or ``--all_ex``,
    which with -e means every version of that experiment); ``--all_ex`` alone is every version of every
    experiment.
    """
    config_dir = args.config
    if not config_dir.is_dir():
        raise UsageError(f"config folder {config_dir} does not exist")
    if args.all_ex and not args.ex_name:
        picks = [flag for flag, given in (("-v", args.v_num is not None), ("-n", args.n),
                                          ("-b", args.begin_ver is not None), ("-t", args.end_ver is not None),
                                          ("--all_ver", args.all_ver)) if given]
        if picks:
            raise UsageError(f"--all_ex without -e runs every version of every experiment: drop {' '.join(picks)}, "
                             "or name the experiment with -e")
        chosen = [(config_dir / name, k) for name in experiment_names(config_dir)
                  for k in version_numbers(config_dir / name)]
        if not chosen:
            raise UsageError(f"no experiment versions under {config_dir} (create some with sh/structure.py)")
    else:
        if not args.ex_name:
            raise UsageError("say which experiment to run: -e NAME, or --all_ex for all of them")
        experiment_dir = find_experiment(config_dir, args.ex_name)
        if not args.all_ex and not (args.all_ver or args.v_num is not None or args.n is not None
                                    or args.begin_ver is not None or args.end_ver is not None):
            raise UsageError(f"say which versions of {args.ex_name!r} to run: -v K, -n K [K ...], -b B -t T, "
                             "--all_ver or --all_ex")
        if args.all_ex and (args.v_num is not None or args.n is not None or args.begin_ver is not None
                            or args.end_ver is not None):
            raise UsageError("-e NAME --all_ex runs every version of NAME: drop -v, -n, -b and -t, or --all_ex")
        chosen = [(experiment_dir, k) for k in chosen_numbers(args, experiment_dir)]
    versions = [Version(experiment_dir, k, tuple(main_args)) for experiment_dir, k in chosen]
    for version in versions:
        missing = [key for key in ("experiment", "version") if not version.settings.get(key)]
        if missing:
            raise UsageError(f"{version.label}: run.{missing[0]} is empty (remove it from the configs: the "
                             "version's folder names it)")
    check_own_folders(versions)
    return versions


def check_own_folders(versions) -> None:
    """UsageError when a chosen version would write into the results folder of another version, chosen or not
    (``-o --run.version=...`` or a preset moving several versions to one folder)."""
    owners = {}
    for experiment_dir in dict.fromkeys(version.experiment_dir for version in versions):
        for k in version_numbers(experiment_dir):
            other = Version(experiment_dir, k)
            try:
                owners.setdefault(other.paths.run_dir, other)
            except UsageError:
                continue  # a broken version that is not run here
    for version in versions:
        owner = owners.setdefault(version.paths.run_dir, version)
        if owner.label != version.label:
            raise UsageError(f"{owner.label} and {version.label} would both write to {shown(version.paths.run_dir)} "
                             "(the -o arguments send it there): change -o, or run them one at a time")
