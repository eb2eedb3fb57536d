"""Benchmark: does the generated project train as fast as a hand-written PyTorch loop, and start quickly?

    make bench                      (or: .venv/bin/python bench/bench.py [--repeats 3] [--epochs 3] ...)
    make bench BENCH_ARGS=--full    (resnet on every device, as the first rounds measured it: long on a CPU)
    BENCH_MNIST_DIR=/path/holding/MNIST/raw make bench       (real MNIST instead of MNIST-shaped fake files)
    BENCH_LHT_DIR=/path/of/lightning-hydra-template make bench  (also time its ``src/train.py --help``)

Bakes the default project (MNIST, resnet) and a digits one into build/bench/, then, on the same data
with the same seed, measures for each dataset:

  (1) the project's own training: ``python main.py fit -c config/example.yaml`` (LightningCLI, the
      logger and callbacks of the config; progress bar off, no test after fit), timed by probe.py;
  (2) a hand-written raw PyTorch loop (baselines.py raw): same network, optimizer, scheduler, batches;
  (3) the compute floor (baselines.py floor): forward + backward + step on preloaded tensors, no loader;

all three on the same device: the GPU when there is one (data held there, CUDA-synchronised step times),
else the CPU. The steps of (1) and (2) are also split, inside their own runs, into the training step
proper (forward, loss, metrics or accumulation, backward, update: (1)'s LightningModule
``optimizer_step``, with Lightning's ``self.log`` and closure inside it) and the rest (the loop, its
hooks, loading the batch). The rest is a millisecond or so, so the speed a machine gives a whole run,
which moves between runs (this one's by up to 29 %), barely moves it: (1)/(2) with both steps given
the same compute is the ratio free of that noise. Rows for (1) with ``precision: bf16-mixed`` and
compiled (config/switches/compile.yaml) follow on a GPU; (1) streamed from litdata's chunks of the same data
(sh/optimize_data.py, config/switches/streaming.yaml) follows wherever litdata is installed, and its samples/s
over (1)'s is the price of reading chunks instead of memory. On a CPU the default is digits alone (a resnet
step on MNIST-shaped data takes seconds on 2 cores, which made the first rounds' default run 20
minutes); --full runs everything anywhere.

Then a sweep: 8 versions of one short epoch, ``sh/run.py --jobs 2``, with every version in a fresh
interpreter (--isolated) and forked from the pre-imported server: the share of worker-seconds spent
outside the versions' fits, (wall x jobs - sum of fit times) / (wall x jobs).

And the time of a bake, of ``python main.py --help``, of importing the project's code, of the
imports of lightning-hydra-template's train.py and, given a checkout of it, of its ``train.py --help``. Every
measurement runs in a fresh process; repeats are interleaved (the order rotates) so that machine noise hits
all of them alike; medians are reported.
"""
import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TEMPLATE = BENCH.parent
MNIST_ENV = "BENCH_MNIST_DIR"
LHT_ENV = "BENCH_LHT_DIR"
LHT_HELP = "lightning-hydra-template: python src/train.py --help"
MODES = ("lightning", "raw", "floor")
VARIANTS = {"bf16": ["--trainer.precision=bf16-mixed"], "compiled": ["-c", "config/switches/compile.yaml"],
            "streamed": ["-c", "config/switches/streaming.yaml"]}  # of (1)
MODE_NAMES = {"lightning": "(1) Lightning: main.py fit", "raw": "(2) raw PyTorch loop", "floor": "(3) compute floor",
              "bf16": "(1) with precision bf16-mixed", "compiled": "(1) compiled (switches/compile)",
              "streamed": "(1) streamed (litdata chunks)"}
LHT_IMPORTS = ("import hydra, lightning, omegaconf, rich, rootutils; "
               "from lightning import Callback, LightningDataModule, LightningModule, Trainer; "
               "from lightning.pytorch.loggers import Logger")


def run(command, cwd, env=None) -> tuple[float, float]:
    """Run ``command``; return (wall seconds, CPU seconds of the child). A failure stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        output = result.stdout[-2000:] + result.stderr[-3000:]
        sys.exit(f"ERROR: {' '.join(map(str, command))} failed in {cwd}:\n{output}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bake(output_dir: Path, **answers) -> tuple[Path, float, float]:
    """Bake the template with the cookiecutter command line (post-generation hook included)."""
    command = [sys.executable, "-m", "cookiecutter", str(TEMPLATE), "--no-input", "-f", "-o", str(output_dir),
               *(f"{key}={value}" for key, value in answers.items())]
    wall, cpu = run(command, TEMPLATE)
    return output_dir / answers["project_name"], wall, cpu


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def machine() -> str:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu or platform.machine()}, {len(os.sched_getaffinity(0))} usable cores, {gpu}; "
            f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads)")


def versions() -> str:
    import pytorch_lightning

    return f"pytorch-lightning {pytorch_lightning.__version__}"


def startup(projects, repeats: int, work: Path, lht_dir, bake_too: bool = True) -> dict:
    """Median (wall, CPU) seconds of a bake, main.py --help, the project's imports and reference imports,
    and of lightning-hydra-template's ``train.py --help`` in the checkout ``lht_dir`` (when given)."""
    project = projects["mnist"]
    python = sys.executable
    tasks = {
        **({"bake (cookiecutter + post-gen hook)": None} if bake_too else {}),
        "python main.py --help": ([python, "main.py", "--help"], project),
        "python main.py fit --help": ([python, "main.py", "fit", "--help"], project),
        "import the project (main, data, model, runtime)":
            ([python, "-c", "import main, data, model, runtime"], project),
        "import torch": ([python, "-c", "import torch"], project),
        "import pytorch_lightning": ([python, "-c", "import pytorch_lightning"], project),
    }
    if all(importlib.util.find_spec(name) for name in ("hydra", "lightning", "rootutils")):
        tasks["lightning-hydra-template train.py imports (lower bound of its --help)"] = \
            ([python, "-c", LHT_IMPORTS], project)
    else:
        print("  (hydra-core / lightning / rootutils not installed: lightning-hydra-template's imports not measured)")
    if lht_dir is not None:
        if not (lht_dir / "src" / "train.py").is_file():
            sys.exit(f"ERROR: {LHT_ENV}={lht_dir} holds no src/train.py of lightning-hydra-template")
        tasks[LHT_HELP] = ([python, "src/train.py", "--help"], lht_dir)
    times = {name: [] for name in tasks}
    for repeat in range(repeats):
        names = list(tasks)
        names = names[repeat % len(names):] + names[:repeat % len(names)]
        for name in names:
            if tasks[name] is None:
                _, wall, cpu = bake(work / f"bake_{repeat}", project_name="bake_check")
            else:
                wall, cpu = run(*tasks[name])
            times[name].append((wall, cpu))
    return {name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
            for name, runs in times.items()}


def mnist_data(project: Path, work: Path) -> tuple[Path, str]:
    """A data_dir holding MNIST/raw: real files from $BENCH_MNIST_DIR, else 60k/10k fake IDX files."""
    if os.environ.get(MNIST_ENV):
        root = Path(os.environ[MNIST_ENV]).expanduser().resolve()
        if not (root / "MNIST" / "raw").is_dir():
            sys.exit(f"ERROR: {MNIST_ENV}={root} must be a folder holding MNIST/raw/ (the IDX files)")
        return root, f"real MNIST from {MNIST_ENV}"
    root = work / "datasets"
    if not (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file():
        sys.path.insert(0, str(project / "tests"))
        import fakes

        fakes.write_mnist(root, "MNIST", n_train=60000, n_test=10000)
    return root, "MNIST-shaped fake IDX files (60,000 train / 10,000 test, written by the project's tests/fakes.py)"


def train_commands(mode: str, project: Path, data_dir: Path, epochs: int, train_batches, val_batches, out: Path,
                   version: str, threads):
    python = sys.executable
    if mode in ("lightning", *VARIANTS):
        command = [python, "main.py", "fit", "-c", "config/example.yaml", f"--data.init_args.data_dir={data_dir}",
                   *VARIANTS.get(mode, []),
                   *([f"--data.init_args.input_dir={streaming_dir(out.parent, project)}"] if mode == "streamed" else []),
                   f"--trainer.max_epochs={epochs}", "--trainer.enable_progress_bar=false",
                   f"--run.res_dir={out.parent / ('res_' + project.name)}", f"--run.version={version}",
                   "--run.test_after_fit=false", "--trainer.callbacks+=probe.BenchProbe"]
        if train_batches:
            command.append(f"--trainer.limit_train_batches={train_batches}")
        if val_batches:
            command.append(f"--trainer.limit_val_batches={val_batches}")
    else:
        command = [python, str(BENCH / "baselines.py"), mode, "--out", str(out), f"--data-dir={data_dir}",
                   f"--epochs={epochs}"]
        if train_batches:
            command.append(f"--train-batches={train_batches}")
        if val_batches:
            command.append(f"--val-batches={val_batches}")
    env = {**os.environ, "PYTHONPATH": str(BENCH), "BENCH_PROBE_OUT": str(out)}
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return command, env


def streaming_dir(work: Path, project: Path) -> Path:
    return work / f"streaming_{project.name}"


def optimize_data(project: Path, data_dir: Path, work: Path) -> None:
    """The dataset (1) trains on, written into litdata's chunks for the streamed row (sh/optimize_data.py)."""
    config = work / f"data_{project.name}.yaml"
    config.write_text(json.dumps({"data": {"init_args": {"data_dir": str(data_dir)}}}))  # JSON is YAML
    run([sys.executable, "sh/optimize_data.py", "-c", "config/example.yaml", "-c", str(config),
         "--output", str(streaming_dir(work, project))], project)


def train_benchmark(project: Path, data_dir: Path, repeats: int, epochs: int, train_batches, val_batches,
                    work: Path, threads, modes=MODES) -> dict:
    """Per mode, the per-repeat epoch records of probe.py / baselines.py (interleaved repeats)."""
    results = {mode: [] for mode in modes}
    for repeat in range(repeats):
        order = modes[repeat % len(modes):] + modes[:repeat % len(modes)]
        for mode in order:
            out = work / f"{project.name}_{mode}_{repeat}.json"
            command, env = train_commands(mode, project, data_dir, epochs, train_batches, val_batches, out,
                                          version=f"bench_{mode}_{repeat}", threads=threads)
            wall, _ = run(command, project, env=env)
            record = json.loads(out.read_text())
            record["process_s"] = wall
            results[mode].append(record)
            print(f"  repeat {repeat + 1}/{repeats} {mode:9s}: {summarise([record])['samples_per_s']:8.1f} samples/s, "
                  f"process {wall:.1f} s", flush=True)
    return results


def summarise(records: list) -> dict:
    """Medians over repeats of: training samples/s and seconds per epoch, whole-epoch seconds (training,
    validation, checkpoints, logging), seconds of the whole process, last validation accuracy.

    The first epoch of every run is left out of the speeds (warm-up: one-time allocations and kernel
    selection, lazily imported code); each run trains at least two epochs. The median duration of a
    training step (data, forward, backward, step, hooks), over every timed step of every run, is
    the statistic least moved by other processes that take the cores for a while.

    The steps of (1) and (2) are also split, in their own process, into the training step proper
    (``computes``: forward, loss, metrics or accumulation, backward, update) and the rest (the loop, its
    hooks, loading the batch): ``median_outside_s``, None for (3), which is all compute. The rest is
    small, so the speed the machine gives a whole run (the noise between runs) barely moves it."""
    def steady(record):
        return record["epochs"][1:] or record["epochs"]

    def per_epoch(record, key):
        return statistics.mean(e[key] for e in steady(record))

    def epoch_steps(epoch):
        return [end - begin for begin, end in zip([0.0, *epoch["step_ends"]], epoch["step_ends"])]

    def steps_of(record):
        return [step for e in steady(record) for step in epoch_steps(e)]

    speeds = [sum(e["samples"] for e in steady(r)) / sum(e["train_s"] for e in steady(r)) for r in records]
    steps = [step for r in records for step in steps_of(r)]
    split = all("computes" in e for r in records for e in steady(r))
    if split and any(len(e["computes"]) != len(e["step_ends"]) for r in records for e in steady(r)):
        sys.exit("ERROR: a run timed a different number of optimizer steps than training steps (one each expected)")
    computes = [c for r in records for e in steady(r) for c in e["computes"]] if split else []
    outside = [step - c for r in records for e in steady(r) for step, c in zip(epoch_steps(e), e["computes"])
               ] if split else []
    accuracies = [r["epochs"][-1].get("val_acc") for r in records]
    return {
        "samples_per_s": statistics.median(speeds),
        "median_step_s": statistics.median(steps),
        "run_median_steps_s": [statistics.median(steps_of(r)) for r in records],
        "median_compute_s": statistics.median(computes) if split else None,
        "median_outside_s": statistics.median(outside) if split else None,
        "train_s_per_epoch": statistics.median(per_epoch(r, "train_s") for r in records),
        "epoch_s": statistics.median(per_epoch(r, "epoch_s") for r in records),
        "process_s": statistics.median(r["process_s"] for r in records),
        "samples_per_epoch": records[0]["epochs"][0]["samples"],
        "val_acc": statistics.median(accuracies) if None not in accuracies else None,
        "first_batches": [e.get("first_batch") for e in records[0]["epochs"]],
    }


def mode_short(mode: str) -> str:
    """The number of a mode: (1), (2) or (3)."""
    return MODE_NAMES[mode].split(" ", 1)[0]


def print_training(title: str, summary: dict) -> dict:
    print(f"\n{title}")
    print(f"  {'':30s} {'samples/s':>10s} {'step ms':>8s} {'train s/epoch':>14s} {'epoch s':>8s} {'val acc':>8s} "
          f"{'process s':>10s}")
    for mode, s in summary.items():
        accuracy = f"{s['val_acc']:.4f}" if s["val_acc"] is not None else "-"
        print(f"  {MODE_NAMES[mode]:30s} {s['samples_per_s']:10.1f} {1000 * s['median_step_s']:8.1f} "
              f"{s['train_s_per_epoch']:14.2f} {s['epoch_s']:8.2f} {accuracy:>8s} {s['process_s']:10.1f}")
    speed, step = ({mode: summary[mode][key] for mode in MODES} for key in ("samples_per_s", "median_step_s"))
    ratios = {"(1)/(2)": speed["lightning"] / speed["raw"], "(1)/(3)": speed["lightning"] / speed["floor"],
              "(1)/(2) by median step": step["raw"] / step["lightning"],
              "(1)/(3) by median step": step["floor"] / step["lightning"]}
    same = summary["lightning"]["first_batches"] == summary["raw"]["first_batches"]
    print(f"  (1)/(2) = {ratios['(1)/(2)']:.3f} (target >= 0.97)    (1)/(3) = {ratios['(1)/(3)']:.3f} (target >= 0.85)"
          f"    samples/s ratios")
    print(f"  (1)/(2) = {ratios['(1)/(2) by median step']:.3f}                   "
          f"(1)/(3) = {ratios['(1)/(3) by median step']:.3f}                   by median step time")
    print(f"  (1) and (2) trained on the same batches (first batch of every epoch compared): {'yes' if same else 'NO'}")
    runs = summary["raw"]["run_median_steps_s"]
    print(f"  noise between runs: the median step of (2)'s {len(runs)} runs ranged {1000 * min(runs):.1f}-"
          f"{1000 * max(runs):.1f} ms ({100 * (max(runs) / min(runs) - 1):.0f} % apart) for the same loop")
    outside = {mode: summary[mode]["median_outside_s"] for mode in ("lightning", "raw")}
    print("  per step, outside the training step proper (measured in each run's own process): "
          + ", ".join(f"{mode_short(mode)} {1000 * seconds:.2f} ms" for mode, seconds in outside.items()))
    compute = statistics.median([summary["lightning"]["median_compute_s"], summary["raw"]["median_compute_s"]])
    ratios["(1)/(2) by median step, common compute"] = (compute + outside["raw"]) / (compute + outside["lightning"])
    print(f"  (1)/(2) = {ratios['(1)/(2) by median step, common compute']:.3f} with both steps given the same "
          f"compute time ({1000 * compute:.1f} ms): what (1) adds to the step, free of the noise between runs")
    if "streamed" in summary:
        ratios["streamed (1) / in-memory (1) samples/s"] = summary["streamed"]["samples_per_s"] / speed["lightning"]
        print(f"  {MODE_NAMES['streamed']} / (1): {ratios['streamed (1) / in-memory (1) samples/s']:.3f} samples/s "
              f"on the same data (the price of reading chunks instead of memory)")
    for variant, target in (("compiled", "GPU target for resnet >= 1.2"), ("bf16", "GPU target >= 1")):
        if variant in summary:
            ratios[f"{variant} (1) / eager 32-true (1) by median step"] = step["lightning"] / summary[variant][
                "median_step_s"]
            print(f"  {MODE_NAMES[variant]} / (1): {ratios[f'{variant} (1) / eager 32-true (1) by median step']:.3f} "
                  f"by median step time ({target})")
    return {**ratios, "same_batches": same}


def sweep_overhead(project: Path, versions: int, jobs: int, epochs: int) -> dict:
    """The share of worker-seconds spent outside the fits in a sweep of ``versions`` short versions run ``jobs`` at a
    time, with a fresh interpreter per version (--isolated) and forked from the pre-imported server."""
    python = sys.executable
    run([python, "sh/structure.py", "-e", "bench_sweep", "-v", str(versions)], project)
    quick = f"--trainer.max_epochs={epochs} --trainer.enable_progress_bar=false --run.test_after_fit=false"
    found = {}
    for how, extra in (("isolated", ["--isolated"]), ("pre-imported", [])):
        wall, _ = run([python, "sh/run.py", "-e", "bench_sweep", "--all_ver", "--rerun", "--jobs", str(jobs),
                       "-o", quick, *extra], project)
        fits = [json.loads(path.read_text())["fit"]["duration_s"]
                for path in sorted((project / "res" / "bench_sweep").glob("version_*/metrics.json"))]
        found[how] = {"wall_s": wall, "fit_s": sum(fits), "versions": len(fits),
                      "outside_fits": (wall * jobs - sum(fits)) / (wall * jobs), "wall_over_fits": wall / sum(fits)}
        print(f"  {how:13s} wall {wall:6.1f} s, sum of fits {sum(fits):6.1f} s ({len(fits)} versions): wall / fits "
              f"{wall / sum(fits):.2f}, outside the fits {100 * found[how]['outside_fits']:.0f} % of worker-seconds"
              + (" (target <= 15 %)" if how == "pre-imported" else ""), flush=True)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every measurement (median)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per run")
    parser.add_argument("--datasets", default=None,
                        help="comma-separated: digits, mnist (default: both on a GPU or with --full, digits on a CPU)")
    parser.add_argument("--backbone", default="resnet", choices=["resnet", "cnn", "mlp"])
    parser.add_argument("--full", action="store_true", help="every dataset and row on any device (long on a CPU)")
    parser.add_argument("--variants", default=None,
                        help="rows of (1) with bf16-mixed precision, torch.compile and streamed data, comma-separated "
                             "(default: bf16,compiled on a GPU or with --full, and streamed where litdata is "
                             "installed)")
    parser.add_argument("--sweep-versions", type=int, default=8, help="versions of the sweep measurement (0: none)")
    parser.add_argument("--mnist-train-batches", type=int, default=8,
                        help="training batches (of 128) per epoch on MNIST; 0: all 422 (hours for resnet on a CPU)")
    parser.add_argument("--mnist-val-batches", type=int, default=4,
                        help="validation batches per epoch on MNIST; 0: all")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of every training process (default: torch's choice, one per usable core); "
                             "1 keeps timings stable when other processes share the cores")
    parser.add_argument("--work", default=str(TEMPLATE / "build" / "bench"), help="bakes, data and results go here")
    parser.add_argument("--projects", default=None,
                        help="a folder holding bench_mnist/ and bench_digits/ baked already (a machine without "
                             "cookiecutter: scripts/gpu_check.py)")
    args = parser.parse_args()
    on_gpu_or_full = args.full or device() == "cuda"
    args.datasets = args.datasets or ("digits,mnist" if on_gpu_or_full else "digits")
    streamed = ",streamed" if importlib.util.find_spec("litdata") else ""  # the streaming extra
    args.variants = args.variants if args.variants is not None else (
        ("bf16,compiled" if on_gpu_or_full else "") + streamed).strip(",")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if not datasets or set(datasets) - {"digits", "mnist"}:
        sys.exit(f"ERROR: --datasets takes digits and/or mnist, got {args.datasets!r}")
    if args.repeats < 1 or args.epochs < 2:
        sys.exit("ERROR: --repeats must be at least 1 and --epochs at least 2 (the first epoch is warm-up)")
    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    if set(variants) - set(VARIANTS):
        sys.exit(f"ERROR: --variants takes {', '.join(VARIANTS)}, got {args.variants!r}")

    work = Path(args.work).resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    load_before = os.getloadavg()
    described = f"{machine()}; {versions()}"
    print(f"machine: {described}")
    print(f"device of (1), (2) and (3): {device()}")
    print(f"load average before: {load_before[0]:.2f} (1 min)")

    projects = {}
    for dataset in ("mnist", "digits"):
        if args.projects:
            projects[dataset] = work / f"bench_{dataset}"
            shutil.copytree(Path(args.projects) / f"bench_{dataset}", projects[dataset])
        else:
            projects[dataset], _, _ = bake(work, project_name=f"bench_{dataset}", dataset=dataset, model=args.backbone)
    print(f"\nStartup (median of {args.repeats}; wall s, CPU s of the process)")
    lht_dir = Path(os.environ[LHT_ENV]).resolve() if os.environ.get(LHT_ENV) else None
    timings = startup(projects, args.repeats, work, lht_dir, bake_too=not args.projects)
    for name, (wall, cpu) in timings.items():
        print(f"  {name:72s} {wall:6.2f} {cpu:6.2f}")
    if LHT_HELP in timings:
        ratio = timings["python main.py --help"][0] / timings[LHT_HELP][0]
        print(f"  main.py --help / lightning-hydra-template train.py --help (wall): {ratio:.3f} (target <= 1)")

    threads = f"{args.threads} torch threads" if args.threads else "default torch threads"
    report = {"machine": described, "device": device(), "arguments": vars(args), "startup": timings, "training": {}}
    for dataset in datasets:
        project = projects[dataset]
        if dataset == "digits":
            data_dir, source = work / "datasets", "scikit-learn digits (real, 8x8)"
            train_batches = val_batches = None
        else:
            data_dir, source = mnist_data(project, work)
            train_batches, val_batches = args.mnist_train_batches or None, args.mnist_val_batches or None
        print(f"\n{dataset}: {source}; backbone {args.backbone}; {args.epochs} epochs per run (the first is warm-up); "
              f"{args.repeats} interleaved repeats; {threads}", flush=True)
        if "streamed" in variants:
            optimize_data(project, data_dir, work)
        results = train_benchmark(project, data_dir, args.repeats, args.epochs, train_batches, val_batches, work,
                                  args.threads, MODES + variants)
        summary = {mode: summarise(records) for mode, records in results.items()}
        limit = "all batches" if not train_batches else f"{train_batches} batches"
        title = (f"{dataset}, {args.backbone}, {threads}: {summary['lightning']['samples_per_epoch']} training samples "
                 f"per epoch ({limit}), median of {args.repeats} runs of {args.epochs - 1} timed epochs")
        report["training"][dataset] = {"source": source, "summary": summary, **print_training(title, summary)}
    if args.sweep_versions:
        print(f"\nSweep: {args.sweep_versions} versions of 1 epoch, sh/run.py --jobs 2 (digits, {args.backbone})",
              flush=True)
        report["sweep"] = sweep_overhead(projects["digits"], args.sweep_versions, jobs=2, epochs=1)
    load_after = os.getloadavg()
    report["load_average"] = {"before": load_before[0], "after": load_after[0]}
    print(f"\nload average after: {load_after[0]:.2f} (1 min); other processes on this machine add noise")
    (work / "results.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"results: {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
