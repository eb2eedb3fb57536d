"""Write experiment versions for a hyperparameter search: a grid, or random samples, from a YAML spec.

    python sh/hparams.py -e lr_bs -s config/search/grid.yaml             # every combination (x seeds)
    python sh/hparams.py -e lr_rand -s config/search/random.yaml         # `samples: N` random points
    python sh/hparams.py -e lr_bs -s config/search/grid.yaml --dry-run   # print them, write nothing
    python sh/run.py -e lr_bs --all_ver --jobs 2

A spec maps dotted config keys to the values to try:

    optimizer.init_args.lr: [1.0e-3, 1.0e-2]       # a list: each value (grid), or one of them (random)
    model.init_args.dropout: {uniform: [0.0, 0.5]}  # random search only: uniform, log_uniform, int
    seeds: [0, 1]                                   # optional: each point once per seed (seed_everything)
    samples: 6                                      # optional: 6 random points instead of the grid
    sample_seed: 0                                  # optional: the same random points every time

Each point becomes a new version_k (sh/_experiments.py's add_version) whose version.yaml holds only
its overrides, and whose detail_desc.txt lists them. The experiment is created from
config/template.yaml when it does not exist; existing versions are never changed.
"""
import argparse
import sys

from _experiments import (
    ArgumentParser,
    UsageError,
    add_version,
    check_experiment_name,
    ensure_experiment,
    exit_on_usage_error,
    shown,
)
from _search import check_keys, describe, load_spec, overrides_yaml


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-e", "--ex_name", required=True, help="experiment to add the versions to (created if new)")
    parser.add_path_argument("-s", "--spec", required=True, help="search spec (YAML), e.g. config/search/grid.yaml")
    parser.add_path_argument("-c", "--config", default="config", help="config folder")
    parser.add_path_argument("--template", default="config/template.yaml", help="share.yaml of a new experiment")
    parser.add_argument("-d", "--desc", default="", help="desc.txt of a new experiment")
    parser.add_argument("--dry-run", action="store_true", help="print the versions, write nothing")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    experiment_dir = args.config / check_experiment_name(args.ex_name)
    template = args.template
    if not template.is_file():
        raise UsageError(f"template {template} does not exist")
    spec = load_spec(args.spec)
    check_keys(spec, experiment_dir, template)
    points = spec.points()
    mode = f"random search, {spec.samples} samples" if spec.samples else "grid"
    if args.dry_run:
        for point in points:
            print(describe(point))
        print(f"{len(points)} versions ({mode}); nothing written (--dry-run)")
        return 0
    experiment_dir, _ = ensure_experiment(args.ex_name, args.config, template, args.desc)
    numbers = []
    for i, point in enumerate(points, 1):
        detail = f"hparams.py {mode}, point {i} of {len(points)} ({shown(args.spec)}):\n{describe(point)}"
        version_dir = add_version(experiment_dir, overrides_yaml(point), detail)
        numbers.append(int(version_dir.name.split("_")[1]))
        print(f"created {shown(version_dir)}: {describe(point)}", flush=True)
    contiguous = numbers == list(range(numbers[0], numbers[-1] + 1))
    which = f"-b {numbers[0]} -t {numbers[-1] + 1}" if contiguous else "-n " + " ".join(map(str, numbers))
    print(f"{len(points)} versions ({mode}); run them: python sh/run.py -e {args.ex_name} {which}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
