#!/usr/bin/env python
"""Write a config's dataset once into litdata's optimized chunks, for data/streaming.py to stream from this disk or
a bucket when it is bigger than memory.

    python sh/optimize_data.py -c config/example.yaml                  # data/streaming/{{ cookiecutter.__dataset }}/
    python sh/optimize_data.py -c config/example.yaml --output /shared/datasets/{{ cookiecutter.__dataset }} --chunk-bytes 128MB
    python main.py fit -c config/example.yaml -c config/switches/streaming.yaml

The datamodule the configs name is built as main.py builds it (augmentation off: the chunks hold each sample
once, as the datamodule gives it), prepared and set up for fit and test. Its train, val and test splits become
``<output>/<split>/`` (chunk files and index.json), written by one process per usable core (``--workers 1``: by
this process, which starts at once: best for a small dataset); ``<output>/meta.json`` holds what the model is built
from (the datamodule's links), the class names and each split's size. An output that holds a dataset already is
refused unless ``--force``; the new one is written beside it and moved into place, so a failed write leaves the old
one whole. For a bucket, copy the folder there (``aws s3 sync <output> s3://bucket/prefix``) and stream it from
``s3://bucket/prefix``. Needs the streaming extra: pip install litdata.
"""
import argparse
import importlib.util
import inspect
import json
import shutil
import sys
import tempfile
from pathlib import Path

from _experiments import ArgumentParser, UsageError, exit_on_usage_error, shown
from _trained import import_class

DEFAULT_OUTPUT = "data/streaming/{{ cookiecutter.__dataset }}"


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", action="append", required=True,
                        help="main.py's config files, in order (e.g. config/<exp>/share.yaml, then a version.yaml)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT,
                        help=f"folder to write, relative to the project (default {DEFAULT_OUTPUT})")
    parser.add_argument("--workers", type=int, default=None,
                        help="writing processes (default: the usable cores; 1 writes in this process)")
    parser.add_argument("--chunk-bytes", default="64MB", help="size of each chunk file (default 64MB)")
    parser.add_argument("--force", action="store_true", help="replace the dataset the output holds already")
    return parser.parse_args(argv)


def configured_datamodule(config_files: list):
    """The datamodule main.py would build from ``config_files`` (augmentation off)."""
    from main import main
    from runtime.cli import merged_configs

    for config in config_files:
        if not Path(config).is_file():
            raise UsageError(f"config file {config} not found")
    args = [part for config in config_files for part in ("-c", str(config))]
    merged = merged_configs(main, [["fit", *args]])[0]
    if merged is None:
        raise UsageError(f"main.py cannot parse these configs: see  python main.py fit {' '.join(args)} --print_config")
    data = merged["data"]
    cls = import_class(data["class_path"])
    if cls.__name__ == "StreamingDataModule":
        raise UsageError("the configs name data.StreamingDataModule: give the configs of the dataset to optimize")
    init_args = dict(data.get("init_args") or {})
    if "augment" in inspect.signature(cls.__init__).parameters:
        init_args["augment"] = False
    return cls(**init_args)


def split_datasets(datamodule) -> dict:
    """``{split: map-style dataset}`` of the splits the datamodule has, after prepare_data and setup."""
    datamodule.prepare_data()
    datamodule.setup("fit")
    datamodule.setup("test")
    found = {}
    for split in ("train", "val", "test"):
        try:
            dataset = getattr(datamodule, f"{split}_dataloader")().dataset
        except (AttributeError, NotImplementedError, TypeError):
            continue
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise UsageError(f"{type(datamodule).__qualname__}'s {split} dataset is not indexable (an "
                             f"IterableDataset?): sh/optimize_data.py writes datasets with __len__ and __getitem__")
        found[split] = dataset
    return found


def link_values(datamodule) -> dict:
    """The datamodule's links as JSON (tuples become lists)."""
    from contract import links_of

    values = {name: getattr(datamodule, name) for name in links_of(type(datamodule))}
    try:
        json.dumps(values)
    except TypeError as error:
        raise UsageError(f"{type(datamodule).__qualname__}.links holds a value JSON cannot hold ({error}): "
                         "streaming needs numbers, strings and lists") from None
    return values


def holds_dataset(folder: Path) -> bool:
    return folder.exists() and (not folder.is_dir() or any(folder.iterdir()))


def write(dataset, folder: str, workers: int, chunk_bytes: str, split: str) -> None:
    """Sample i of ``dataset`` becomes sample i of the chunks in ``folder``: by litdata's optimize over ``workers``
    spawned processes, or with one worker by its chunk writer in this process (no process to start per split)."""
    print(f"{split}: {len(dataset)} samples", flush=True)
    if workers == 1:
        from litdata.streaming.writer import BinaryWriter

        writer = BinaryWriter(folder, chunk_bytes=chunk_bytes)
        for index in range(len(dataset)):
            writer[index] = dataset[index]
        writer.done()
        writer.merge()
        return
    from litdata import optimize

    optimize(fn=dataset.__getitem__, inputs=list(range(len(dataset))), output_dir=folder, chunk_bytes=chunk_bytes,
             num_workers=workers, mode="overwrite", keep_data_ordered=True,  # sample i of a split is the datamodule's i
             start_method="spawn")  # fresh writers: a fork of a process whose torch threads ran can hang


def main(argv=None) -> int:
    args = parse_args(argv)
    if importlib.util.find_spec("litdata") is None:
        raise UsageError("streaming needs litdata: pip install litdata")
    from contract import project_path
    from data._common import usable_cpus
    from data.streaming import META_FILE

    if "://" in args.output:
        raise UsageError(f"--output {args.output}: write to a folder, then copy it to the bucket (aws s3 sync)")
    output = project_path(args.output)
    if holds_dataset(output) and not args.force:
        raise UsageError(f"{shown(output)} holds a dataset already: pass --force to replace it")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    datamodule = configured_datamodule(args.config)
    datasets = split_datasets(datamodule)
    meta = {"datamodule": f"{type(datamodule).__module__}.{type(datamodule).__qualname__}",
            "links": link_values(datamodule), "classes": getattr(datamodule, "classes", None),
            "sizes": {split: len(dataset) for split, dataset in datasets.items()}}
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:  # written beside, then moved into place: a failed write leaves the old dataset as it was
        for split, dataset in datasets.items():
            write(dataset, str(staging / split), args.workers or usable_cpus(), args.chunk_bytes, split)
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        if output.exists():
            shutil.rmtree(output) if output.is_dir() else output.unlink()
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    switch = "-c config/switches/streaming.yaml" + ("" if args.output == DEFAULT_OUTPUT
                                                     else f" --data.init_args.input_dir={args.output}")
    print(f"wrote {', '.join(f'{split} ({n} samples)' for split, n in meta['sizes'].items())} to {shown(output)}; "
          f"train on it with  {switch}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
