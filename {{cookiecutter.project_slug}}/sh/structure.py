"""Create or extend an experiment tree under config/.

    python sh/structure.py -e resnet -v 3 [-c ./config] [-t ./config/template.yaml] [-d "why"]
    python sh/structure.py -e resnet -n 5 7          # exactly version_5 and version_7
    python sh/structure.py -e resnet -n 1 --force    # give version_1 fresh files

makes::

    config/resnet/share.yaml              copy of the template: everything the versions share
    config/resnet/desc.txt                what the experiment is about
    config/resnet/version_k/version.yaml  only what version k changes (plus its run identity)
    config/resnet/version_k/detail_desc.txt

On an existing experiment ``-v N`` adds N new versions after the last one; existing files
are never touched, and several processes may add versions at once (sh/hparams.py and
sh/optuna_search.py add theirs through ``add_version``). ``-n`` refuses versions that exist
unless ``--force``. A refused request writes nothing. Standard library only (the
cookiecutter hook runs it).
"""
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _project import (  # noqa: E402
    VERSION_DIR,
    ArgumentParser,
    UsageError,
    check_experiment_name,
    exit_on_usage_error,
    project_path,
)

VERSION_HEADER = "# {experiment}/version_{k}: only the keys this version changes. They override ../share.yaml\n"
VERSION_EXAMPLE = """\
# (later config files win), e.g.
#
# optimizer:
#   init_args:
#     lr: 0.01
# model:
#   init_args:
#     backbone: cnn
"""
RUN_IDENTITY = "run:\n  experiment: {experiment}\n  version: version_{k}\n"


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-e", "--ex_name", required=True, help="experiment name (a folder name)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-v", "--v_num", type=int, default=1,
                       help="number of versions to add after the last (default 1)")
    which.add_argument("-n", "--numbers", type=int, nargs="+", metavar="K", help="create exactly these versions")
    parser.add_argument("--force", action="store_true", help="with -n: give versions that exist fresh files")
    parser.add_path_argument("-c", "--config", default="config", help="config folder")
    parser.add_path_argument("-t", "--template", default="config/template.yaml", help="template copied to share.yaml")
    parser.add_argument("-d", "--desc", default="", help="experiment description written to desc.txt")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    return parser.parse_args(argv)


def write_atomic(path, text):
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_experiment(name, config_dir, template, description=""):
    """The experiment's folder, with share.yaml (a copy of ``template``) and desc.txt.

    Returns (folder, the paths created)."""
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
        write_atomic(share, template.read_text())
        created.append(share)
    desc = experiment_dir / "desc.txt"
    if not desc.exists():
        write_atomic(desc, (description or f"{name}: what this experiment tests and why.") + "\n")
        created.append(desc)
    elif description and desc.read_text().strip() != description.strip():
        print(f"note: {desc} exists and is kept as it is (edit it to change the description)", file=sys.stderr)
    return experiment_dir, created


def add_version(experiment_dir, overrides="", detail=""):
    """Create the next free ``version_k`` of the experiment and return its folder.

    ``overrides`` is YAML text of the keys this version changes (no ``run:`` key: the version's
    run identity is added here). The folder is claimed with an atomic mkdir, trying the next
    number when another process got there first; version.yaml is renamed into place last, so
    a version is visible (to ``version_numbers``) only once complete.
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


def write_version(version_dir, k, overrides="", detail=""):
    """Write version k's detail_desc.txt, then its version.yaml, into the existing ``version_dir``."""
    name = version_dir.parent.name
    detail = detail or f"version_{k}: how this version differs from the others."
    write_atomic(version_dir / "detail_desc.txt", detail.rstrip("\n") + "\n")
    body = overrides if overrides else VERSION_EXAMPLE
    header = VERSION_HEADER.format(experiment=name, k=k)
    write_atomic(version_dir / "version.yaml", header + body + RUN_IDENTITY.format(experiment=name, k=k))


def _check_numbers(experiment_dir, numbers, force):
    """``numbers`` sorted and without repeats, once it is clear that each may be written."""
    if not numbers or min(numbers) < 0:
        raise UsageError(f"-n/--numbers must be version numbers >= 0, got {numbers}")
    numbers = sorted(set(numbers))
    existing = [str(experiment_dir / f"version_{k}") for k in numbers if (experiment_dir / f"version_{k}").exists()]
    if existing and not force:
        raise UsageError(f"{', '.join(existing)} already exists: choose other numbers, or add --force for fresh files")
    return numbers


def create_experiment(name, n_versions, config_dir, template, description="", numbers=None, force=False):
    """Create the experiment (if new) and its versions; return the created paths.

    Adds ``n_versions`` new versions after the last one, or, with ``numbers``, exactly those
    versions (ones that exist only with ``force``). Every check runs before anything is written.
    """
    check_experiment_name(name)
    if numbers is None and n_versions < 1:
        raise UsageError(f"-v/--v_num must be a positive integer, got {n_versions}")
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


def main(argv=None):
    args = parse_args(argv)
    if args.force and args.numbers is None:
        raise UsageError("--force goes with -n K [K ...]: it gives the versions listed there fresh files")
    created = create_experiment(args.ex_name, args.v_num, args.config, args.template, args.desc,
                                numbers=args.numbers, force=args.force)
    if not args.quiet:
        for path in created:
            print(f"created {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
