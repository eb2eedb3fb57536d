"""Collect every version of one or more experiments into a table, CSV files and plots.

    python sh/report.py -e lr_bs                      # writes res/lr_bs/report/
    python sh/report.py -e lr_bs -e lr_rand --out res/compare
    python sh/report.py --all_ex --metric val/loss

For each version: the settings it was trained with (the run's config.yaml: share.yaml, version.yaml
and any -o, as dotted keys; for a version not run yet, what main.py would merge from share.yaml and
its version.yaml), status and fit time (manifest.json), epochs, best score of the monitored metric
(``run.monitor``, better as ``run.mode`` says) and test metrics (metrics.json). The table
shows the settings that differ between versions. Versions that differ only in seed_everything are
grouped into mean ± std. Written files:

    runs.csv     one row per version          groups.csv   one row per group of seeds
    curves.png   validation curves per version (history.csv)
    <metric>_vs_<key>.png   the best score against each hyperparameter that varies
"""
import argparse
import math
import statistics
import sys
from pathlib import Path

from _experiments import (
    ArgumentParser,
    UsageError,
    Version,
    exit_on_usage_error,
    experiment_names,
    experiment_results_dir,
    find_experiment,
    merged_configs,
    read_yaml,
    shown,
    version_numbers,
)
from runtime.run_folder import atomic_file, flatten, read_csv, run_status, run_summary, write_csv_atomic

SEED_KEY = "seed_everything"
# A run's identity and where it writes (main.py fills these per run), and callbacks such as optuna's pruning.
NOT_HYPERPARAMETERS = ("run.", "trainer.callbacks", "trainer.logger", "trainer.default_root_dir", "trainer.profiler",
                       "ckpt_path")


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-e", "--ex_name", action="append", help="experiment to report (repeat for several)")
    parser.add_argument("--all_ex", action="store_true", help="every experiment with finished runs")
    parser.add_path_argument("-c", "--config", default="config", help="config folder")
    parser.add_argument("--metric", help="validation metric to compare (default: the runs' run.monitor)")
    parser.add_argument("--mode", choices=("max", "min"),
                        help="whether higher or lower --metric is better (default: the runs' run.mode)")
    parser.add_path_argument("--out", help="output folder (default: res/<exp>/report, or res/report for several)")
    return parser.parse_args(argv)


def settings(tree: dict) -> dict:
    """What a version trains with, as dotted keys, without where it writes (``NOT_HYPERPARAMETERS``)."""
    flat = {k: v for k, v in flatten(tree or {}).items() if not k.startswith(NOT_HYPERPARAMETERS)}
    if isinstance(flat.get("trainer.devices"), list):
        flat["trainer.devices"] = len(flat["trainer.devices"])  # how many GPUs, not which ones (free-GPU choice)
    return flat


def collect(experiment_dir: Path) -> list:
    """One record per version of the experiment; never raises on a broken or half-written run folder.

    Settings come from each run's config.yaml; for the versions not trained yet, main.py's parser merges
    their configs (one process for all of them)."""
    records, untrained = [], []
    for number in version_numbers(experiment_dir):
        version = Version(experiment_dir, number)
        record = {"experiment": experiment_dir.name, "version": f"version_{number}", "number": number}
        try:
            paths = version.paths
            trained = read_yaml(paths.config_file) if paths.config_file.is_file() else {}
        except UsageError as error:
            records.append({**record, "params": {}, "status": "bad config", "note": str(error), "test": {},
                            "history": []})
            continue
        status = run_status(paths)
        record.update(run_summary(paths), status="not run" if status == "new" else status,
                      history=read_csv(paths.history_file), params=settings(trained))
        records.append(record)
        if not trained:
            untrained.append((record, version))
    merged = merged_configs([["fit", "-c", str(share), "-c", str(own)]
                             for share, own in (version.config_files for _, version in untrained)])
    for (record, _), config in zip(untrained, merged, strict=True):
        record["params"] = settings(config)
    return records


def number(value):
    """``value`` as a float, or None."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


def best_of(record, metric, maximize) -> float:
    """The record's best ``metric``: metrics.json's best score when it monitors it, else history.csv's best."""
    if record.get("monitor") == metric and number(record.get("best_score")) is not None:
        return number(record["best_score"])
    values = [v for v in (number(row.get(metric)) for row in record["history"]) if v is not None]
    return (max(values) if maximize else min(values)) if values else None


def mean_std(values) -> tuple:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def fmt(value) -> str:
    """A metric with 4 decimals; an epoch count as it is; "-" for nothing."""
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def fmt_param(value) -> str:
    """A hyperparameter as it reads: 0.001, 1e-05, cnn."""
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def fmt_mean_std(mean, std) -> str:
    return "-" if mean is None else f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "")


def swept_keys(records) -> list:
    """Keys whose values differ between the versions that have them (seed_everything last), in first-seen order.

    (A version not run yet lacks the defaults a run's config.yaml spells out: that alone is no difference.)
    """
    keys = list(dict.fromkeys(key for record in records for key in record["params"]))
    varying = [key for key in keys if len({repr(r["params"][key]) for r in records if key in r["params"]}) > 1]
    return [key for key in varying if key != SEED_KEY] + ([SEED_KEY] if SEED_KEY in varying else [])


def group(records, keys) -> list:
    """Versions of one experiment that differ only in seed_everything, as groups (in first-seen order)."""
    groups = {}
    for record in records:
        key = (record["experiment"], tuple(repr(record["params"].get(k)) for k in keys if k != SEED_KEY))
        groups.setdefault(key, []).append(record)
    return list(groups.values())


def print_tables(records, groups, keys, metric, test_key, several) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 240)
    params = [key for key in keys if key != SEED_KEY]
    runs = Table(title="runs", title_justify="left")
    for column in ["version", "status", *keys, "epochs", "fit time", "peak MB", "samples/s", f"best {metric}",
                   test_key]:
        runs.add_column(column, overflow="fold")
    for r in records:
        name = f"{r['experiment']}/{r['version']}" if several else r["version"]
        duration, memory, rate = r.get("duration_s"), r.get("peak_memory_mb"), r.get("samples_per_sec")
        runs.add_row(name, r["status"], *(fmt_param(r["params"].get(k)) for k in keys), fmt(r.get("epochs")),
                     "-" if duration is None else f"{duration:.1f}s", "-" if memory is None else f"{memory:.0f}",
                     "-" if rate is None else f"{rate:.0f}", fmt(r["best"]), fmt(r["test_value"]))
    console.print(runs)
    for r in records:
        if r.get("note"):
            console.print(f"{r['experiment']}/{r['version']}: {r['note']}", markup=False)
    if any(len(members) > 1 for members in groups):
        table = Table(title="versions differing only by seed: mean ± std", title_justify="left")
        for column in (["experiment"] if several else []) + [*params, "finished", f"best {metric}", test_key]:
            table.add_column(column, overflow="fold")
        for members, stats in groups_with_stats(groups, params):
            first = members[0]
            table.add_row(*([first["experiment"]] if several else []),
                          *(fmt_param(first["params"].get(k)) for k in params),
                          f"{stats['finished']}/{len(members)}", fmt_mean_std(stats["best_mean"], stats["best_std"]),
                          fmt_mean_std(stats["test_mean"], stats["test_std"]))
        console.print(table)


def groups_with_stats(groups, params):
    for members in groups:
        finished = [m for m in members if m["status"] == "finished"]
        best_mean, best_std = mean_std([m["best"] for m in finished])
        test_mean, test_std = mean_std([m["test_value"] for m in finished])
        yield members, {"finished": len(finished), "best_mean": best_mean, "best_std": best_std,
                        "test_mean": test_mean, "test_std": test_std}


def write_csv(path: Path, columns, rows) -> None:
    """Replace ``path`` whole: a report stopped midway keeps the previous file."""
    write_csv_atomic(path, columns, [["" if cell is None else cell for cell in row] for row in rows])


def write_csvs(out: Path, records, groups, keys, metric) -> list:
    test_keys = sorted({key for r in records for key in r["test"]})
    params = [key for key in keys if key != SEED_KEY]
    all_params = list(dict.fromkeys(key for r in records for key in r["params"]))
    write_csv(out / "runs.csv",
              ["experiment", "version", "status", "duration_s", "epochs", "peak_memory_mb", "samples_per_sec",
               f"best {metric}", *test_keys, *all_params],
              [[r["experiment"], r["version"], r["status"], r.get("duration_s"), r.get("epochs"),
                r.get("peak_memory_mb"), r.get("samples_per_sec"), r["best"], *(r["test"].get(k) for k in test_keys),
                *(r["params"].get(k) for k in all_params)] for r in records])
    write_csv(out / "groups.csv",
              ["experiment", *params, "versions", "finished", f"best {metric} mean", f"best {metric} std",
               "test mean", "test std"],
              [[m[0]["experiment"], *(m[0]["params"].get(k) for k in params), " ".join(x["version"] for x in m),
                s["finished"], s["best_mean"], s["best_std"], s["test_mean"], s["test_std"]]
               for m, s in groups_with_stats(groups, params)])
    return [out / "runs.csv", out / "groups.csv"]


def plot(out: Path, records, keys, metric, several) -> list:
    """curves.png, and one <metric>_vs_<key>.png per swept hyperparameter (seed_everything excluded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    written = []
    curves = [r for r in records if any(number(row.get(metric)) is not None for row in r["history"])]
    if curves:
        fig, ax = plt.subplots(figsize=(8, 5))
        for r in curves:
            points = [(number(row.get("epoch")), number(row.get(metric))) for row in r["history"]]
            points = [(x, y) for x, y in points if x is not None and y is not None]
            label = f"{r['experiment']}/{r['version']}" if several else r["version"]
            ax.plot([x for x, _ in points], [y for _, y in points], marker=".", label=label)
        ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small", ncol=max(1, len(curves) // 12))
        written.append(save(fig, out / "curves.png"))
    finished = [r for r in records if r["status"] == "finished" and r["best"] is not None]
    settings = [k for k in keys if k != SEED_KEY] if finished else []  # no points without a finished score
    for key in settings:
        values = [r["params"].get(key) for r in finished]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        fig, ax = plt.subplots(figsize=(6, 4))
        if numeric:
            xs = values
            positive = all(v > 0 for v in values)
            if positive and max(values) / min(values) >= 10:  # a decade or more: learning rates, weight decays
                ax.set_xscale("log")
        else:
            labels = list(dict.fromkeys(repr(v) for v in values))
            xs = [labels.index(repr(v)) for v in values]
            ax.set_xticks(range(len(labels)), labels)
        ax.scatter(xs, [r["best"] for r in finished], alpha=0.7)
        means = {}
        for x, r in zip(xs, finished, strict=True):
            means.setdefault(x, []).append(r["best"])
        ordered = sorted(means)
        ax.plot(ordered, [statistics.fmean(means[x]) for x in ordered], color="black", linewidth=1, label="mean")
        ax.set(xlabel=key, ylabel=f"best {metric}", title=f"best {metric} vs {key}")
        ax.legend(fontsize="small")
        written.append(save(fig, out / f"{metric.replace('/', '-')}_vs_{key}.png"))
    return written


def save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def chosen_experiments(args, config_dir: Path) -> list:
    if args.all_ex and args.ex_name:
        raise UsageError("choose -e NAME (repeatable) or --all_ex, not both")
    if not args.all_ex and not args.ex_name:
        raise UsageError("say which experiments to report: -e NAME (repeatable) or --all_ex")
    names = experiment_names(config_dir) if args.all_ex else list(dict.fromkeys(args.ex_name))
    for name in names:
        find_experiment(config_dir, name)
    return names


def main(argv=None) -> int:
    args = parse_args(argv)
    config_dir = args.config
    names = chosen_experiments(args, config_dir)
    by_experiment = {name: collect(config_dir / name) for name in names}
    empty = [name for name, records in by_experiment.items() if not any(r["status"] == "finished" for r in records)]
    if args.all_ex:
        by_experiment = {name: records for name, records in by_experiment.items() if name not in empty}
        if empty and by_experiment:
            print(f"note: left out (no finished runs): {', '.join(empty)}")
        empty = [] if by_experiment else ["any experiment"]
    if empty:
        raise UsageError(f"{' and '.join(empty)} has no finished runs to report (train with sh/run.py first)")
    records = [r for records in by_experiment.values() for r in records]
    monitored = [(r["monitor"], r.get("mode")) for r in records if r.get("monitor")]
    logged = sorted({key for r in records for row in r["history"] for key in row if key not in ("epoch", "step")}
                    | {monitor for monitor, _ in monitored})
    metric = args.metric or (monitored[0][0] if monitored else None)
    if metric not in logged:
        raise UsageError(f"metric {metric} was never logged by these runs (logged: {', '.join(logged) or 'nothing'})")
    recorded_mode = next((mode for monitor, mode in monitored if monitor == metric and mode), None)
    mode = args.mode or recorded_mode or ("min" if any(word in metric for word in ("loss", "err")) else "max")
    maximize = mode == "max"
    test_key = f"test/{metric.split('/')[-1]}"
    for r in records:
        r["best"] = best_of(r, metric, maximize)
        r["test_value"] = number(r["test"].get(test_key))
    several = len(by_experiment) > 1
    keys = list(dict.fromkeys(k for records in by_experiment.values() for k in swept_keys(records)))
    groups = [g for records in by_experiment.values() for g in group(records, swept_keys(records))]
    out = args.out if args.out else (
        experiment_results_dir(config_dir / names[0]) / "report" if not several
        else experiment_results_dir(config_dir / next(iter(by_experiment))).parent / "report")
    out.mkdir(parents=True, exist_ok=True)
    print_tables(records, groups, keys, metric, test_key, several)
    written = write_csvs(out, records, groups, keys, metric) + plot(out, records, keys, metric, several)
    print("written: " + ", ".join(shown(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
