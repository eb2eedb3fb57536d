"""Search specs, shared by sh/hparams.py (grid and random search) and sh/optuna_search.py: the YAML that maps
dotted config keys to the values to try, read and checked against the experiment's config. Torch-free.

    optimizer.init_args.lr: [1.0e-3, 1.0e-2]       # a list: each value (grid), or one of them (random)
    model.init_args.dropout: {uniform: [0.0, 0.5]}  # random search only: uniform, log_uniform, int
    seeds: [0, 1]                                   # optional: each point once per seed (seed_everything)
    samples: 6                                      # optional: 6 random points instead of the grid
    sample_seed: 0                                  # optional: the same random points every time
"""
import difflib
import itertools
import math
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from _experiments import SEED_KEY, UsageError, merged_configs, project_path, read_yaml
from runtime.run_folder import flatten

RESERVED = {"seeds", "samples", "sample_seed"}
DOTTED_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
DISTRIBUTIONS = ("choice", "uniform", "log_uniform", "int")


class SpecLoader(yaml.SafeLoader):
    """YAML that reads 1e-3 as a number (plain PyYAML reads it as a string)."""


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*\.\d*(?:[eE][-+]?\d+)?|\d[\d_]*[eE][-+]?\d+|\.\d+(?:[eE][-+]?\d+)?)$"),
    list("-+0123456789."),
)


@dataclass(frozen=True)
class Param:
    """The values one config key may take: a list (``choice``) or a range (uniform, log_uniform, int)."""

    key: str
    kind: str
    values: tuple = ()
    low: float = 0.0
    high: float = 0.0

    def sample(self, rng: random.Random):
        if self.kind == "choice":
            return rng.choice(self.values)
        if self.kind == "int":
            return rng.randint(int(self.low), int(self.high))
        if self.kind == "log_uniform":
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class SearchSpec:
    source: Path
    params: tuple  # of Param
    seeds: tuple = (None,)
    samples: int = 0  # 0: the grid
    sample_seed: object = None
    settings: tuple = ()  # (key, value) pairs of the extra keys a caller asked load_spec to accept

    def size(self) -> int:
        """How many points ``points`` gives, counted without listing them."""
        return (self.samples or math.prod(len(p.values) for p in self.params)) * len(self.seeds)

    def points(self) -> list:
        """Every version to write: dicts of dotted key -> value (seed_everything last when seeds are given)."""
        ranges = [p.key for p in self.params if p.kind != "choice"]
        if ranges and not self.samples:
            raise UsageError(f"search spec {self.source}: {', '.join(ranges)} is a range, which a grid cannot "
                             "enumerate: give a list of values, or `samples: N` for random search")
        if self.samples:
            rng = random.Random(self.sample_seed)
            bases = [{p.key: p.sample(rng) for p in self.params} for _ in range(self.samples)]
        else:
            bases = [dict(zip([p.key for p in self.params], combo, strict=True))
                     for combo in itertools.product(*(p.values for p in self.params))]
        return [{**base, **({SEED_KEY: seed} if seed is not None else {})} for base in bases for seed in self.seeds]


def _param(key, value, source) -> Param:
    if not isinstance(key, str) or not DOTTED_KEY.match(key):
        raise UsageError(f"{source}: {key!r} is not a dotted config key such as optimizer.init_args.lr")
    if key == "run" or key.startswith("run."):
        raise UsageError(f"{source}: {key} is the version's identity, not a hyperparameter")
    if isinstance(value, list):
        value = {"choice": value}
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        raise UsageError(f"{source}: {key} must be a list of values, or a mapping with one key out of "
                         f"{', '.join(DISTRIBUTIONS)} (e.g. uniform: [0.0, 0.5]), got {value!r}")
    kind, arguments = next(iter(value.items()))
    if kind == "choice":
        if not isinstance(arguments, list) or not arguments:
            raise UsageError(f"{source}: {key} needs at least one value")
        if len({repr(value) for value in arguments}) != len(arguments):
            raise UsageError(f"{source}: {key} lists a value twice: {arguments!r}")
        return Param(key, kind, tuple(arguments))
    numbers = isinstance(arguments, list) and len(arguments) == 2 and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in arguments)
    if not numbers or not arguments[0] < arguments[1] or (kind == "log_uniform" and arguments[0] <= 0):
        raise UsageError(f"{source}: {key}: {kind} needs [low, high] with low < high"
                         + (" and low > 0" if kind == "log_uniform" else "") + f", got {arguments!r}")
    if kind == "int" and not all(isinstance(x, int) for x in arguments):
        raise UsageError(f"{source}: {key}: int needs whole-number bounds, got {arguments!r}")
    return Param(key, kind, low=arguments[0], high=arguments[1])


def load_spec(path, settings=()) -> SearchSpec:
    """Read and check a search spec (its keys against the config: ``check_keys``).

    ``settings``: extra keys that are not hyperparameters (sh/optuna_search.py's metric, direction, pruner).
    """
    path = project_path(path)
    try:
        data = yaml.load(path.read_text(), Loader=SpecLoader)
    except OSError as error:
        raise UsageError(f"search spec {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"search spec {path} is not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(data, dict):
        raise UsageError(f"search spec {path} must map config keys to values, "
                         "e.g. optimizer.init_args.lr: [0.001, 0.01]")
    params = tuple(_param(key, value, path) for key, value in data.items() if key not in RESERVED | set(settings))
    if not params:
        raise UsageError(f"search spec {path} names no hyperparameter")
    keys = [p.key for p in params]
    for a, b in itertools.permutations(keys, 2):
        if b.startswith(a + "."):
            raise UsageError(f"search spec {path}: {a} and {b} overlap (one is inside the other)")
    seeds = data.get("seeds")
    if seeds is not None:
        integers = isinstance(seeds, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
        if not seeds or not integers or len(set(seeds)) != len(seeds):
            raise UsageError(f"search spec {path}: seeds must be a list of different integers, got {seeds!r}")
        if SEED_KEY in keys:
            raise UsageError(f"search spec {path}: give either seeds or {SEED_KEY}, not both")
    samples = data.get("samples", 0)
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < ("samples" in data):
        raise UsageError(f"search spec {path}: samples must be a positive integer, got {samples!r}")
    sample_seed = data.get("sample_seed")
    if sample_seed is not None and (not isinstance(sample_seed, int) or isinstance(sample_seed, bool)):
        raise UsageError(f"search spec {path}: sample_seed must be an integer, got {sample_seed!r}")
    return SearchSpec(path, params, tuple(seeds) if seeds else (None,), samples, sample_seed,
                      tuple((key, data[key]) for key in settings if key in data))


def nested(point: dict) -> dict:
    """Dotted keys to nested mappings: a.b.c: 1 becomes a: (b: (c: 1))."""
    tree = {}
    for key, value in point.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def overrides_yaml(point: dict) -> str:
    """The YAML a version.yaml holds for ``point`` (nested keys, in the spec's order)."""
    return yaml.safe_dump(nested(point), sort_keys=False, default_flow_style=False)


def describe(point: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in point.items())


def check_keys(keys: list, experiment_dir: Path, template: Path, asked_by: str) -> None:
    """UsageError for a key the experiment's config does not take: a typo would fail every version written with it.

    Keys of share.yaml (or, for a new experiment, the template) pass at once; the others are looked up in
    every setting main.py knows for it (jsonargparse, a few seconds), unless the spec also swaps the
    class_path they belong to.
    """
    source = experiment_dir / "share.yaml"
    source = source if source.is_file() else template
    data = read_yaml(source)
    sections = set(data)
    for key in keys:
        if key.split(".")[0] not in sections:
            raise UsageError(f"{asked_by}: {key} starts with no section of the config "
                             f"(sections: {', '.join(sorted(sections))})")
    known = set(flatten(data))
    swapped = [key.removesuffix("class_path") for key in keys if key.endswith(".class_path")]
    unsure = [key for key in keys if key not in known and not key.startswith(tuple(swapped))]
    if not unsure:
        return
    [printed] = merged_configs([["fit", "-c", str(source)]])
    if printed is None:
        print("note: the spec's keys were not checked (main.py could not read the experiment's config)",
              file=sys.stderr)
        return
    known |= set(flatten(printed))
    for key in unsure:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"{asked_by}: {source.name} has no setting {key}{hint}")
