"""Create or extend an experiment tree under config/.

    python sh/structure.py -e resnet -v 3 [-c ./config] [-t ./config/template.yaml] [-d "why"]

makes::

    config/resnet/share.yaml              copy of the template: everything the versions share
    config/resnet/desc.txt                what the experiment is about
    config/resnet/version_k/version.yaml  only what version k changes (plus its run identity)
    config/resnet/version_k/detail_desc.txt

On an existing experiment ``-v N`` adds N new versions after the last one; existing files
are never touched, and several processes may add versions at once (sh/hparams.py and
sh/optuna_search.py add theirs through ``add_version``). Standard library only (the
cookiecutter hook runs it).
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _project import VERSION_DIR, UsageError, check_experiment_name, exit_on_usage_error, project_path  # noqa: E402

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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-e", "--ex_name", required=True, help="experiment name (a folder name)")
    parser.add_argument("-v", "--v_num", type=int, default=1, help="number of versions to create (default 1)")
    parser.add_argument("-c", "--config", default="config", help="config folder (default: ./config)")
    parser.add_argument("-t", "--template", default="config/template.yaml", help="template copied to share.yaml")
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
    """The experiment's folder, with share.yaml (a copy of ``template``) and desc.txt; return (folder, created paths)."""
    check_experiment_name(name)
    template = project_path(template)
    if not template.is_file():
        raise UsageError(f"template {template} does not exist")
    experiment_dir = project_path(config_dir) / name
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
    name = experiment_dir.name
    detail = detail or f"version_{k}: how this version differs from the others."
    write_atomic(version_dir / "detail_desc.txt", detail.rstrip("\n") + "\n")
    body = overrides if overrides else VERSION_EXAMPLE
    header = VERSION_HEADER.format(experiment=name, k=k)
    write_atomic(version_dir / "version.yaml", header + body + RUN_IDENTITY.format(experiment=name, k=k))
    return version_dir


def create_experiment(name, n_versions, config_dir, template, description=""):
    """Create the experiment (if new) and ``n_versions`` new versions; return the created paths."""
    check_experiment_name(name)
    if n_versions < 1:
        raise UsageError(f"-v/--v_num must be a positive integer, got {n_versions}")
    experiment_dir, created = ensure_experiment(name, config_dir, template, description)
    return created + [add_version(experiment_dir) for _ in range(n_versions)]


def main(argv=None):
    args = parse_args(argv)
    created = create_experiment(args.ex_name, args.v_num, args.config, args.template, args.desc)
    if not args.quiet:
        for path in created:
            print(f"created {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
