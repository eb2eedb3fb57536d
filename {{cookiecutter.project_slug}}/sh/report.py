#!/usr/bin/env python
"""Collect every version of one or more experiments into tables, CSV files, plots and an HTML page.

    python sh/report.py -e lr_bs                      # writes res/lr_bs/report/
    python sh/report.py -e lr_bs --baseline version_0 # is each setting better than version_0's?
    python sh/report.py -e lr_bs --baseline optimizer.init_args.lr=0.001 --html   # and res/lr_bs/report.html
    python sh/report.py -e lr_bs --latex --baseline version_0   # and res/lr_bs/report.tex, for the paper
    python sh/report.py -e lr_bs -e lr_rand --out res/compare
    python sh/report.py --all_ex --metric val/loss

For each version: the settings it was trained with (the run's config.yaml: share.yaml, version.yaml
and any -o, as dotted keys; for a version not run yet, what main.py would merge from share.yaml and
its version.yaml), status, fit time and cost (manifest.json), epochs, best score of the monitored
metric (``run.monitor``, better as ``run.mode`` says) and test metrics (metrics.json). The tables
show the settings that differ between versions. Versions that differ only in their seed
(seed_everything) or fold (sh/hparams.py --folds) are one setting, repeated: its mean ± std, how
many of its runs finished, median fit time, GPU-hours, peak memory and samples/s.

--baseline (a version, or key=value[,key=value] naming one setting) compares every setting with it:
the difference of mean best scores with its 95 % confidence interval and p-value, from the paired
t-test when both ran the same seeds and folds, else Welch's t-test (sh/_compare.py); "n too small"
with fewer than 2 finished runs a side. Written files:

    runs.csv     one row per version          groups.csv      one row per setting
    curves.png   validation curves            comparison.csv  --baseline's table
    <metric>_vs_<key>.png   the best score against each hyperparameter that varies
    optuna_<study>_history.png, optuna_<study>_importances.png   for an optuna study
    ../report.html (--html)  all of it in one page (res/<exp>/report.html)
    ../report.tex (--latex)  the settings table in booktabs LaTeX (sh/_report_latex.py)

Every figure is written as PNG, PDF and SVG, one paper column wide, fonts embedded (sh/_figures.py).
"""
import argparse
import re
import statistics
import sys
from pathlib import Path

import yaml

from _compare import compare, verdict
from _experiments import (
    REPEAT_KEYS,
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
from _report_html import write_html
from _report_latex import latex_table, write_latex
from _report_plots import curves, optuna_figures, score_against
from runtime.run_folder import flatten, number, read_csv, run_status, run_summary, write_csv_atomic

# A run's identity and where it writes (main.py fills these per run), and callbacks such as optuna's pruning.
NOT_HYPERPARAMETERS = ("run.", "trainer.callbacks", "trainer.logger", "trainer.default_root_dir", "trainer.profiler",
                       "ckpt_path")
OPTUNA_CALLBACK = "runtime.optuna_trials.OptunaPruning"


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-e", "--ex_name", action="append", help="experiment to report (repeat for several)")
    parser.add_argument("--all_ex", action="store_true", help="every experiment with finished runs")
    parser.add_path_argument("-c", "--config", default="config", help="config folder")
    parser.add_argument("--metric", help="validation metric to compare (default: the runs' run.monitor)")
    parser.add_argument("--mode", choices=("max", "min"),
                        help="whether higher or lower --metric is better (default: the runs' run.mode)")
    parser.add_argument("--baseline", help="compare every setting with this one: a version (version_3, 3, "
                                           "exp/version_3) or key=value[,key=value] (lr=0.001)")
    parser.add_argument("--html", action="store_true", help="also write report.html beside the report folder")
    parser.add_argument("--latex", action="store_true",
                        help="also write report.tex beside the report folder: the settings table for a paper")
    parser.add_path_argument("--out", help="output folder (default: res/<exp>/report, or res/report for several)")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- one record per version

def settings(tree: dict) -> dict:
    """What a version trains with, as dotted keys, without where it writes (``NOT_HYPERPARAMETERS``)."""
    flat = {k: v for k, v in flatten(tree or {}).items() if not k.startswith(NOT_HYPERPARAMETERS)}
    if isinstance(flat.get("trainer.devices"), list):
        flat["trainer.devices"] = len(flat["trainer.devices"])  # how many GPUs, not which ones (free-GPU choice)
    return flat


def optuna_study(tree: dict):
    """(storage, study name) of the optuna trial a version is, from its pruning callback; None for no trial."""
    callbacks = ((tree or {}).get("trainer") or {}).get("callbacks") or []
    for callback in callbacks if isinstance(callbacks, list) else []:
        if isinstance(callback, dict) and callback.get("class_path") == OPTUNA_CALLBACK:
            init = callback.get("init_args") or {}
            return init.get("storage"), init.get("study_name")
    return None


def collect(experiment_dir: Path) -> list:
    """One record per version of the experiment; never raises on a broken or half-written run folder.

    Settings come from each run's config.yaml; for the versions not trained yet, main.py's parser merges
    their configs (one process for all of them)."""
    records, untrained = [], []
    for k in version_numbers(experiment_dir):
        version = Version(experiment_dir, k)
        record = {"experiment": experiment_dir.name, "version": f"version_{k}", "number": k, "study": None}
        try:
            paths = version.paths
            trained = read_yaml(paths.config_file) if paths.config_file.is_file() else {}
        except UsageError as error:
            records.append({**record, "params": {}, "status": "bad config", "note": str(error), "test": {},
                            "history": []})
            continue
        status = run_status(paths)
        record.update(run_summary(paths), status="not run" if status == "new" else status,
                      history=read_csv(paths.history_file), params=settings(trained), study=optuna_study(trained))
        records.append(record)
        if not trained:
            untrained.append((record, version))
    merged = merged_configs([["fit", "-c", str(share), "-c", str(own)]
                             for share, own in (version.config_files for _, version in untrained)])
    for (record, _), config in zip(untrained, merged, strict=True):
        record.update(params=settings(config), study=optuna_study(config))
    return records


def best_of(record, metric, maximize) -> float:
    """The record's best ``metric``: metrics.json's best score when it monitors it, else history.csv's best."""
    if record.get("monitor") == metric and number(record.get("best_score")) is not None:
        return number(record["best_score"])
    values = [v for v in (number(row.get(metric)) for row in record["history"]) if v is not None]
    return (max(values) if maximize else min(values)) if values else None


def repeat_of(record) -> tuple:
    """Which repeat of its setting a run is: its seed and fold."""
    return tuple(record["params"].get(key) for key in REPEAT_KEYS)


# ----------------------------------------------------------------------------- settings: versions grouped

def swept_keys(records) -> list:
    """Keys whose values differ between the versions that have them (seed and fold last), in first-seen order.

    (A version not run yet lacks the defaults a run's config.yaml spells out: that alone is no difference.)
    """
    keys = list(dict.fromkeys(key for record in records for key in record["params"]))
    varying = [key for key in keys if len({repr(r["params"][key]) for r in records if key in r["params"]}) > 1]
    return [key for key in varying if key not in REPEAT_KEYS] + [key for key in REPEAT_KEYS if key in varying]


def hyperparameters(keys) -> list:
    return [key for key in keys if key not in REPEAT_KEYS]


def group(records, keys) -> list:
    """Versions of one experiment that differ only in seed and fold, as groups (in first-seen order)."""
    groups = {}
    for record in records:
        key = (record["experiment"], tuple(repr(record["params"].get(k)) for k in hyperparameters(keys)))
        groups.setdefault(key, []).append(record)
    return list(groups.values())


def mean_std(values) -> tuple:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def median(values):
    values = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


def group_stats(members) -> dict:
    """Scores (mean and std over the finished runs) and cost of one setting."""
    finished = [m for m in members if m["status"] == "finished"]
    best_mean, best_std = mean_std([m["best"] for m in finished])
    test_mean, test_std = mean_std([m["test_value"] for m in finished])
    gpu_hours = [m.get("gpu_hours") for m in members if m.get("gpu_hours") is not None]
    memory = [m.get("peak_memory_mb") for m in members if m.get("peak_memory_mb") is not None]
    return {"finished": len(finished), "best_mean": best_mean, "best_std": best_std, "test_mean": test_mean,
            "test_std": test_std, "median_s": median([m.get("duration_s") for m in finished]),
            "gpu_hours": sum(gpu_hours) if gpu_hours else None, "peak_mb": max(memory) if memory else None,
            "samples_per_sec": median([m.get("samples_per_sec") for m in finished])}


def short_key(key: str, keys) -> str:
    """``key``'s last part when no other key ends the same way: lr for optimizer.init_args.lr."""
    last = key.rsplit(".", 1)[-1]
    return last if sum(k.rsplit(".", 1)[-1] == last for k in keys) == 1 else key


def label(members, params, several) -> str:
    """A setting as it reads: lr=0.001, batch_size=64 (its versions when no hyperparameter differs)."""
    first = members[0]
    text = ", ".join(f"{short_key(k, params)}={fmt_param(first['params'].get(k))}" for k in params)
    text = text or " ".join(m["version"] for m in members)
    return f"{first['experiment']}: {text}" if several else text


def find_baseline(spec: str, groups, params, several) -> list:
    """The setting ``--baseline`` names: a version (3, version_3, exp/version_3) or key=value[,key=value]."""
    version = re.fullmatch(r"(?:([\w.-]+)/)?(?:version_)?(\d+)", spec)
    if version:
        experiment, k = version.group(1), int(version.group(2))
        found = [g for g in groups for m in g if m["number"] == k and experiment in (None, m["experiment"])]
        if len(found) != 1:
            raise UsageError(f"--baseline {spec}: " + ("no such version in this report" if not found else
                             "a version of several experiments: name it as <experiment>/version_k"))
        return found[0]
    wanted = {}
    for pair in spec.split(","):
        key, sep, value = pair.partition("=")
        matches = [k for k in params if k == key.strip() or k.endswith("." + key.strip())]
        if not sep or len(matches) != 1:
            why = "is not key=value" if not sep else f"{key.strip()!r} names {len(matches)} of the settings that vary"
            raise UsageError(f"--baseline {spec}: {pair!r} {why} (they are: {', '.join(params) or 'none'})")
        wanted[matches[0]] = yaml.safe_load(value)
    found = [g for g in groups if all(g[0]["params"].get(k) == v for k, v in wanted.items())]
    if len(found) != 1:
        names = "; ".join(label(g, params, several) for g in found)
        raise UsageError(f"--baseline {spec} matches {len(found)} settings" + (f" ({names}): add keys" if found else
                         ": see the settings table for the values that were run"))
    return found[0]


# ----------------------------------------------------------------------------- tables

def fmt(value) -> str:
    """A metric with 4 decimals; an epoch count as it is; "-" for nothing."""
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def fmt_param(value) -> str:
    """A hyperparameter as it reads: 0.001, 1e-05, cnn."""
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def fmt_mean_std(mean, std) -> str:
    return "-" if mean is None else f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "")


def fmt_cost(value, unit: str, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def fmt_p(p) -> str:
    return "-" if p is None else f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def runs_table(records, keys, metric, test_key, several) -> tuple:
    columns = ["version", "status", *keys, "epochs", "fit time", "GPU-h", "peak MB", "samples/s", f"best {metric}",
               test_key]
    rows = [[f"{r['experiment']}/{r['version']}" if several else r["version"], r["status"],
             *(fmt_param(r["params"].get(k)) for k in keys), fmt(r.get("epochs")),
             fmt_cost(r.get("duration_s"), "s", 1), fmt_cost(r.get("gpu_hours"), "", 3),
             fmt_cost(r.get("peak_memory_mb"), ""), fmt_cost(r.get("samples_per_sec"), ""), fmt(r["best"]),
             fmt(r["test_value"])] for r in records]
    return "runs", columns, rows


def repeats_of(keys) -> str:
    """What a setting's runs repeat over: "seeds", "folds", "seeds and folds", or "their runs"."""
    words = [word for key, word in zip(REPEAT_KEYS, ("seeds", "folds"), strict=True) if key in keys]
    return " and ".join(words) or "their runs"


def settings_table(groups, keys, metric, test_key, several) -> tuple:
    params = hyperparameters(keys)
    columns = (["experiment"] if several else []) + [*params, "finished", f"best {metric}", test_key,
                                                      "median fit time", "GPU-h", "peak MB", "samples/s"]
    rows = []
    for members in groups:
        first, s = members[0], group_stats(members)
        rows.append([*([first["experiment"]] if several else []), *(fmt_param(first["params"].get(k)) for k in params),
                     f"{s['finished']}/{len(members)}", fmt_mean_std(s["best_mean"], s["best_std"]),
                     fmt_mean_std(s["test_mean"], s["test_std"]), fmt_cost(s["median_s"], "s", 1),
                     fmt_cost(s["gpu_hours"], "", 3), fmt_cost(s["peak_mb"], ""), fmt_cost(s["samples_per_sec"], "")])
    return f"settings: mean ± std over {repeats_of(keys)}", columns, rows


def comparisons(groups, baseline, maximize) -> list:
    """(group, Comparison, verdict) for every setting but the baseline, on the finished runs' best scores."""
    def scores(members):
        return [(repeat_of(m), m["best"]) for m in members if m["status"] == "finished"]

    result = []
    for members in groups:
        if members is not baseline:
            comparison = compare(scores(members), scores(baseline))
            result.append((members, comparison, verdict(comparison, maximize)))
    return result


def comparison_table(compared, baseline, params, metric, several) -> tuple:
    columns = ["setting", "runs (vs baseline)", "test", f"difference in best {metric}", "95% CI", "p",
               "CI excludes 0"]
    rows = []
    for members, c, judged in compared:
        if c.difference is None:
            rows.append([label(members, params, several), f"{c.n} vs {c.n_baseline}", c.test, "n too small", "-", "-",
                         "-"])
            continue
        excluded = f"yes, {judged}" if c.excludes_zero else "no"
        rows.append([label(members, params, several), f"{c.n} vs {c.n_baseline}", c.test, f"{c.difference:+.4f}",
                     f"[{c.low:+.4f}, {c.high:+.4f}]", fmt_p(c.p_value), excluded])
    return f"against the baseline {label(baseline, params, several)} (setting minus baseline)", columns, rows


def paper_table(groups, keys, metric, test_key, maximize, several, label, baseline, compared) -> str:
    """The settings table in LaTeX (sh/_report_latex.py), from the same numbers as groups.csv."""
    params = hyperparameters(keys)
    rows = [([fmt_param(members[0]["params"].get(k)) for k in params], group_stats(members),
             members[0]["experiment"] if several else None) for members in groups]
    significant = {groups.index(members) for members, c, _ in compared or () if c.excludes_zero}
    tests = sorted({c.test for _, c, _ in compared or () if c.difference is not None})
    return latex_table(rows, [short_key(k, params) for k in params], metric, test_key, maximize, repeats_of(keys),
                       label, baseline=groups.index(baseline) if baseline else None, significant=significant,
                       compared_by=" or ".join(tests) or "no test: n too small")


def print_tables(tables, notes) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 240)
    for title, columns, rows in tables:
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for note in notes:
        console.print(note, markup=False, highlight=False)


# ----------------------------------------------------------------------------- files

def write_csv(path: Path, columns, rows) -> Path:
    """Replace ``path`` whole: a report stopped midway keeps the previous file."""
    write_csv_atomic(path, columns, [["" if cell is None else cell for cell in row] for row in rows])
    return path


def write_csvs(out: Path, records, groups, keys, metric, compared) -> list:
    test_keys = sorted({key for r in records for key in r["test"]})
    params = hyperparameters(keys)
    all_params = list(dict.fromkeys(key for r in records for key in r["params"]))
    written = [write_csv(out / "runs.csv",
                         ["experiment", "version", "status", "duration_s", "gpu_hours", "epochs", "peak_memory_mb",
                          "samples_per_sec", f"best {metric}", *test_keys, *all_params],
                         [[r["experiment"], r["version"], r["status"], r.get("duration_s"), r.get("gpu_hours"),
                           r.get("epochs"), r.get("peak_memory_mb"), r.get("samples_per_sec"), r["best"],
                           *(r["test"].get(k) for k in test_keys), *(r["params"].get(k) for k in all_params)]
                          for r in records])]
    stats = [(members, group_stats(members)) for members in groups]
    written.append(write_csv(out / "groups.csv",
                             ["experiment", *params, "versions", "finished", f"best {metric} mean",
                              f"best {metric} std", "test mean", "test std", "median_duration_s", "gpu_hours",
                              "peak_memory_mb", "samples_per_sec"],
                             [[m[0]["experiment"], *(m[0]["params"].get(k) for k in params),
                               " ".join(x["version"] for x in m), s["finished"], s["best_mean"], s["best_std"],
                               s["test_mean"], s["test_std"], s["median_s"], s["gpu_hours"], s["peak_mb"],
                               s["samples_per_sec"]] for m, s in stats]))
    if compared is not None:
        written.append(write_csv(out / "comparison.csv",
                                 ["experiment", *params, "versions", "n", "n_baseline", "test", "difference",
                                  "ci_low", "ci_high", "p_value", "ci_excludes_0", "verdict"],
                                 [[m[0]["experiment"], *(m[0]["params"].get(k) for k in params),
                                   " ".join(x["version"] for x in m), c.n, c.n_baseline, c.test, c.difference, c.low,
                                   c.high, c.p_value, c.excludes_zero, judged] for m, c, judged in compared]))
    return written


def plot(out: Path, records, keys, metric, several) -> tuple[list, list]:
    """(files, notes): the curves, the best score against each swept hyperparameter, the optuna studies' plots."""
    written = curves(out, records, metric, lambda r: f"{r['experiment']}/{r['version']}" if several else r["version"])
    finished = [r for r in records if r["status"] == "finished" and r["best"] is not None]
    for key in hyperparameters(keys) if finished else []:  # no points without a finished score
        written.append(score_against(out, finished, key, metric))
    notes = []
    for storage, study_name in dict.fromkeys(r["study"] for r in records if r["study"]):
        files, study_notes = optuna_figures(out, storage, study_name)
        written += files
        notes += study_notes
    return written, notes


# ----------------------------------------------------------------------------- main

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
    baseline = find_baseline(args.baseline, groups, hyperparameters(keys), several) if args.baseline else None
    compared = comparisons(groups, baseline, maximize) if baseline else None
    results_dir = (experiment_results_dir(config_dir / names[0]) if not several
                   else experiment_results_dir(config_dir / next(iter(by_experiment))).parent)
    out = args.out or results_dir / "report"
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {shown(out)} is a file; name a folder for the report")
    out.mkdir(parents=True, exist_ok=True)
    tables = [runs_table(records, keys, metric, test_key, several)]
    if baseline or any(len(members) > 1 for members in groups):
        tables.append(settings_table(groups, keys, metric, test_key, several))
    if compared is not None:
        tables.append(comparison_table(compared, baseline, hyperparameters(keys), metric, several))
    notes = [f"{r['experiment']}/{r['version']}: {r['note']}" for r in records if r.get("note")]
    written = write_csvs(out, records, groups, keys, metric, compared)
    figures, figure_notes = plot(out, records, keys, metric, several)
    notes += figure_notes
    print_tables(tables, notes)
    if args.html:
        page = (out if args.out else results_dir) / "report.html"
        title = f"{', '.join(by_experiment)}: best {metric} ({mode})"
        written.append(write_html(page, title, tables, notes, figures))
    if args.latex:
        text = paper_table(groups, keys, metric, test_key, maximize, several, "-".join(by_experiment), baseline,
                           compared)
        written.append(write_latex((out if args.out else results_dir) / "report.tex", text))
    print("written: " + ", ".join(shown(path) for path in written + figures)
          + (" (each figure also as .pdf and .svg)" if figures else ""))
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
