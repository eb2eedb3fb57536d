#!/usr/bin/env python
"""Write experiment versions for a hyperparameter search: a grid, or random samples, from a YAML spec.

    python sh/hparams.py -e lr_bs -s config/search/grid.yaml             # every combination (x seeds)
    python sh/hparams.py -e lr_rand -s config/search/random.yaml         # `samples: N` random points
    python sh/hparams.py -e lr_bs -s config/search/grid.yaml --dry-run   # print them, write nothing
    python sh/hparams.py -e cv -s config/search/grid.yaml --folds 5      # each point once per fold of 5
    python sh/hparams.py -e cv --folds 5                                 # 5-fold cross-validation of share.yaml
    python sh/run.py -e lr_bs --all_ver --jobs 2

A spec maps dotted config keys to the values to try:

    optimizer.init_args.lr: [1.0e-3, 1.0e-2]       # a list: each value (grid), or one of them (random)
    model.init_args.dropout: {uniform: [0.0, 0.5]}  # random search only: uniform, log_uniform, int
    seeds: [0, 1]                                   # optional: each point once per seed (seed_everything)
    samples: 6                                      # optional: 6 random points instead of the grid
    sample_seed: 0                                  # optional: the same random points every time

``--folds K`` repeats each point once per fold (``data.init_args.fold: i``, ``n_folds: K``): the
datamodule validates on fold i of a fixed split of the training data (stratified by class for
classification), and sh/report.py averages the folds of a point as it averages seeds.

Each point becomes a new version_k (sh/_experiments.py's add_version) whose version.yaml holds only
its overrides, and whose detail_desc.txt lists them. The experiment is created from
config/template.yaml when it does not exist; existing versions are never changed.
"""
import argparse
import sys

from _experiments import (
    FOLD_KEY,
    ArgumentParser,
    UsageError,
    add_version,
    check_experiment_name,
    check_version_count,
    ensure_experiment,
    exit_on_usage_error,
    shown,
)
from _search import check_keys, describe, load_spec, overrides_yaml


def with_folds(points: list, folds) -> list:
    """Each point once per fold of ``folds`` (k-fold cross-validation), or the points as they are."""
    if folds is None:
        return points
    return [{**point, FOLD_KEY: fold, "data.init_args.n_folds": folds} for point in points for fold in range(folds)]


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-e", "--ex_name", required=True, help="experiment to add the versions to (created if new)")
    parser.add_path_argument("-s", "--spec", help="search spec (YAML), e.g. config/search/grid.yaml")
    parser.add_argument("--folds", type=int, help="k-fold cross-validation: each point once per fold of K")
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
    if args.spec is None and args.folds is None:
        raise UsageError("say what to write: -s SPEC (a grid or random search), --folds K, or both")
    if args.folds is not None and args.folds < 2:
        raise UsageError(f"--folds must be at least 2, got {args.folds}")
    spec = load_spec(args.spec) if args.spec else None
    if spec:
        check_keys([param.key for param in spec.params], experiment_dir, template, f"search spec {spec.source}")
    if args.folds:
        check_keys([FOLD_KEY], experiment_dir, template, "--folds (a datamodule on data/_common.py's base takes fold)")
    check_version_count((spec.size() if spec else 1) * (args.folds or 1), "versions (points x seeds x folds)")
    points = with_folds(spec.points() if spec else [{}], args.folds)
    mode = (f"random search, {spec.samples} samples" if spec.samples else "grid") if spec else "folds"
    mode += f", {args.folds} folds each" if spec and args.folds else ""
    if args.dry_run:
        for point in points:
            print(describe(point))
        print(f"{len(points)} versions ({mode}); nothing written (--dry-run)")
        return 0
    experiment_dir, _ = ensure_experiment(args.ex_name, args.config, template, args.desc)
    numbers = []
    for i, point in enumerate(points, 1):
        source = f" ({shown(args.spec)})" if args.spec else ""
        detail = f"hparams.py {mode}, point {i} of {len(points)}{source}:\n{describe(point)}"
        version_dir = add_version(experiment_dir, overrides_yaml(point), detail)
        numbers.append(int(version_dir.name.split("_")[1]))
        print(f"created {shown(version_dir)}: {describe(point)}", flush=True)
    contiguous = numbers == list(range(numbers[0], numbers[-1] + 1))
    which = f"-b {numbers[0]} -t {numbers[-1] + 1}" if contiguous else "-n " + " ".join(map(str, numbers))
    print(f"{len(points)} versions ({mode}); run them: python sh/run.py -e {args.ex_name} {which}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
