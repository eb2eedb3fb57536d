"""Create or extend an experiment tree under config/.

    python sh/structure.py -e resnet -v 3 [-c ./config] [-t ./config/template.yaml] [-d "why"]

makes::

    config/resnet/share.yaml              copy of the template: everything the versions share
    config/resnet/desc.txt                what the experiment is about
    config/resnet/version_k/version.yaml  only what version k changes (plus its run identity)
    config/resnet/version_k/detail_desc.txt

On an existing experiment ``-v N`` adds N new versions after the last one; existing files
are never touched. Standard library only (the cookiecutter hook runs it).
"""
import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _project import UsageError, check_experiment_name, exit_on_usage_error, project_path, version_numbers  # noqa: E402

VERSION_YAML = """\
# {experiment}/version_{k}: only the keys this version changes. They override ../share.yaml
# (later config files win), e.g.
#
# optimizer:
#   init_args:
#     lr: 0.01
# model:
#   init_args:
#     backbone: cnn
run:
  experiment: {experiment}
  version: version_{k}
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-e", "--ex_name", required=True, help="experiment name (a folder name)")
    parser.add_argument("-v", "--v_num", type=int, default=1, help="number of versions to create (default 1)")
    parser.add_argument("-c", "--config", default="config", help="config folder (default: ./config)")
    parser.add_argument("-t", "--template", default="config/template.yaml", help="template copied to share.yaml")
    parser.add_argument("-d", "--desc", default="", help="experiment description written to desc.txt")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    return parser.parse_args(argv)


def create_experiment(name, n_versions, config_dir, template, description=""):
    """Create the experiment (if new) and ``n_versions`` new versions; return the created paths."""
    check_experiment_name(name)
    if n_versions < 1:
        raise UsageError(f"-v/--v_num must be a positive integer, got {n_versions}")
    template = project_path(template)
    if not template.is_file():
        raise UsageError(f"template {template} does not exist")
    experiment_dir = project_path(config_dir) / name
    created = []
    share = experiment_dir / "share.yaml"
    if not share.exists():
        experiment_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, share)
        created.append(share)
    desc = experiment_dir / "desc.txt"
    if not desc.exists():
        desc.write_text((description or f"{name}: what this experiment tests and why.") + "\n")
        created.append(desc)
    existing = version_numbers(experiment_dir)
    first = existing[-1] + 1 if existing else 0
    for k in range(first, first + n_versions):
        version_dir = experiment_dir / f"version_{k}"
        if version_dir.exists():
            raise UsageError(f"{version_dir} exists but holds no version.yaml: move it away first")
        version_dir.mkdir()
        (version_dir / "version.yaml").write_text(VERSION_YAML.format(experiment=name, k=k))
        (version_dir / "detail_desc.txt").write_text(f"version_{k}: how this version differs from the others.\n")
        created.append(version_dir)
    return created


def main(argv=None):
    args = parse_args(argv)
    created = create_experiment(args.ex_name, args.v_num, args.config, args.template, args.desc)
    if not args.quiet:
        for path in created:
            print(f"created {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
