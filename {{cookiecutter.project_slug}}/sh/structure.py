#!/usr/bin/env python
"""Create or extend an experiment tree under config/.

    python sh/structure.py -e resnet -v 3 [-c ./config] [-t ./config/template.yaml] [-d "why"]
    python sh/structure.py -e resnet -n 5 7          # exactly version_5 and version_7
    python sh/structure.py -e resnet -n 1 --force    # give version_1 fresh files

makes::

    config/resnet/share.yaml              copy of the template: everything the versions share
    config/resnet/desc.txt                what the experiment is about
    config/resnet/version_k/version.yaml  only what version k changes (the folder names its results folder)
    config/resnet/version_k/detail_desc.txt

On an existing experiment ``-v N`` adds N new versions after the last one; existing files
are never touched, and several processes may add versions at once (sh/hparams.py and
sh/optuna_search.py add theirs through sh/_experiments.py's ``add_version``). ``-n`` refuses versions that exist
unless ``--force``. A refused request writes nothing. Needs no torch (the cookiecutter hook runs it).
"""
import os
import sys

from _experiments import ArgumentParser, UsageError, create_experiment, exit_on_usage_error


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
