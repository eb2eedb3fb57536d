"""The figures of sh/report.py, each as PNG, PDF and SVG (sh/_figures.py): validation curves, the best score
against each swept hyperparameter, and for an optuna study its parameter importances and optimisation history."""
import statistics
from pathlib import Path

from _figures import figure, save, use_paper_style
from runtime.run_folder import number


def curves(out: Path, records, metric: str, name_of) -> list:
    """curves.png: ``metric`` per epoch for each version that logged it (history.csv)."""
    from matplotlib.ticker import MaxNLocator

    shown = [r for r in records if any(number(row.get(metric)) is not None for row in r["history"])]
    if not shown:
        return []
    fig = figure()
    ax = fig.subplots()
    for r in shown:
        points = [(number(row.get("epoch")), number(row.get(metric))) for row in r["history"]]
        points = [(x, y) for x, y in points if x is not None and y is not None]
        ax.plot([x for x, _ in points], [y for _, y in points], marker=".", label=name_of(r))
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="x-small" if len(shown) > 6 else None, ncol=max(1, len(shown) // 8))
    return [save(fig, out, "curves")]


def score_against(out: Path, finished, key: str, metric: str) -> Path:
    """<metric>_vs_<key>.png: each finished run's best score against ``key``, with the mean per value."""
    values = [r["params"].get(key) for r in finished]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    fig = figure()
    ax = fig.subplots()
    if numeric:
        xs = values
        if all(v > 0 for v in values) and max(values) / min(values) >= 10:  # a decade or more: learning rates
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
    ax.legend()
    return save(fig, out, f"{metric.replace('/', '-')}_vs_{key}")


def optuna_figures(out: Path, storage: str, study_name: str) -> tuple[list, list]:
    """(files, notes): optuna's parameter importances and optimisation history of the study (as every figure).

    A study without two finished trials, or whose importances cannot be computed, gets a note instead."""
    import warnings

    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except (KeyError, ValueError, RuntimeError) as error:  # gone, or the database moved
        return [], [f"optuna study {study_name}: not loaded ({error})"]
    finished = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(finished) < 2:
        return [], [f"optuna study {study_name}: {len(finished)} finished trial(s), too few for its plots"]
    written, notes = [], []
    stem = f"optuna_{study_name}".replace("/", "-")
    use_paper_style()
    import matplotlib.pyplot as plt  # optuna draws with pyplot

    def save_and_close(ax, name):
        written.append(save(ax.figure, out, f"{stem}_{name}"))
        plt.close(ax.figure)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

        save_and_close(plot_optimization_history(study), "history")
        try:
            importances = optuna.importance.get_param_importances(study)
            save_and_close(plot_param_importances(study), "importances")
            notes.append(f"optuna study {study_name}: importances "
                         + ", ".join(f"{name} {value:.2f}" for name, value in importances.items()))
        except (RuntimeError, ValueError) as error:  # e.g. every trial sampled the same values
            notes.append(f"optuna study {study_name}: no importances ({error})")
    return written, notes
