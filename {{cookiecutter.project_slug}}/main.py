#!/usr/bin/env python
"""Train, validate, test or predict with LightningCLI; every setting comes from YAML configs.

    python main.py fit -c config/example.yaml
    python main.py fit -c config/<exp>/share.yaml -c config/<exp>/version_0/version.yaml
    python main.py test -c config/example.yaml --ckpt_path best       # or last, or a checkpoint file
    python main.py predict -c config/example.yaml --ckpt_path best    # writes res/example/version_0/predictions.csv
    python main.py fit --help

Results go to ``res/<experiment>/<version>/``. What your model and datamodule owe the project is in
contract.py; how a run is filed and recorded, in runtime/cli.py.
"""
import os
import sys

# Before torch loads MKL and OpenMP: a fixed thread count, so a run on the CPU repeats bit for bit (sh/reproduce.py)
# even on a busy machine, where MKL would otherwise use fewer threads on some calls and sum in another order.
os.environ.setdefault("MKL_DYNAMIC", "FALSE")
os.environ.setdefault("OMP_DYNAMIC", "FALSE")

from pytorch_lightning import LightningDataModule, LightningModule

from runtime.cli import ResearchCLI, reported_errors


def main(args=None) -> int:
    with reported_errors(args) as outcome:  # a bad config or missing data: one ERROR line, exit status 1 or 2
        ResearchCLI(LightningModule, LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
                    seed_everything_default=2022, args=args)
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
