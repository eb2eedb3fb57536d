"""sh/report.py --latex: the settings table as a booktabs LaTeX table, ready for ``\\input{}`` in a paper.

One row per setting: the hyperparameters that vary, the best validation score and the test score as
mean ± std over its finished runs (its seeds and folds), and n, how many runs that is: the numbers of
groups.csv, rounded to ``DIGITS`` decimals. The best value of each score column is bold (ties too, as
printed), higher or lower as the metric's mode says. With --baseline, the baseline's row says so, and a
dagger marks a setting whose difference to it is significant: the 95 % confidence interval of the
difference in best scores leaves out 0 (sh/_compare.py: a paired t-test on the same seeds and folds,
else Welch's). The preamble needs ``\\usepackage{booktabs}``.
"""
import re

from runtime.run_folder import write_text_atomic

DIGITS = 4
SIGNIFICANT = r"^{\dagger}"
SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
           "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text) -> str:
    """``text`` as LaTeX prints it literally (underscores, percent signs, ...)."""
    return re.sub(r"[\\&%$#_{}~^]", lambda match: SPECIAL[match.group()], str(text))


def score(mean, std) -> str:
    """``mean ± std`` rounded to DIGITS decimals, as LaTeX math; "--" for no score."""
    if mean is None:
        return "--"
    return f"{mean:.{DIGITS}f}" + (rf" \pm {std:.{DIGITS}f}" if std is not None else "")


def best_rounded(means, maximize: bool):
    """The best mean as it is printed (rounded), so that ties in print are bold together; None for none."""
    printed = [round(mean, DIGITS) for mean in means if mean is not None]
    return (max(printed) if maximize else min(printed)) if printed else None


def command(name: str, argument: str) -> str:
    """``\\name{argument}``."""
    return "\\" + name + "{" + argument + "}"


def cell(mean, std, best, marker: str = "") -> str:
    if mean is None:
        return "--"
    body = score(mean, std)
    return "$" + (command("mathbf", body) if best is not None and round(mean, DIGITS) == best else body) + marker + "$"


def latex_table(rows, params, metric: str, test_key: str, maximize: bool, repeats: str, label: str,
                baseline=None, significant=(), compared_by: str = "") -> str:
    """The table's text. ``rows``: (setting's values of ``params``, its group_stats, the experiment or None) per
    setting; ``baseline`` the index of the baseline's row, ``significant`` the indices of the rows marked."""
    experiments = rows and rows[0][2] is not None
    heads = [*(["experiment"] if experiments else []), *params, f"best {metric}", test_key, "$n$"]
    best_val = best_rounded([stats["best_mean"] for _, stats, _ in rows], maximize)
    best_test = best_rounded([stats["test_mean"] for _, stats, _ in rows], maximize)
    lines = []
    for i, (values, stats, experiment) in enumerate(rows):
        settings = [escape(value) for value in values]
        if i == baseline and settings:
            settings[-1] += " (baseline)"
        marker = SIGNIFICANT if i in significant else ""
        lines.append(" & ".join([*([escape(experiment)] if experiments else []), *settings,
                                 cell(stats["best_mean"], stats["best_std"], best_val, marker),
                                 cell(stats["test_mean"], stats["test_std"], best_test),
                                 str(stats["finished"])]) + r" \\")
    direction = "higher" if maximize else "lower"
    caption = (f"Best {escape(metric)} and {escape(test_key)}: mean $\\pm$ std over {repeats} "
               f"($n$ finished runs). Bold: the best of each column ({direction} is better).")
    if baseline is not None:
        caption += (f" $^\\dagger$: the 95\\,\\% confidence interval of the difference in best {escape(metric)} to "
                    f"the baseline excludes 0 ({compared_by}).")
    align = "l" * (len(heads) - 3) + "rrr"
    return "\n".join([
        "% Written by sh/report.py --latex; needs \\usepackage{booktabs}. Numbers: groups.csv, rounded.",
        "\\begin{table}[t]",
        "  \\centering",
        "  " + command("caption", caption),
        "  " + command("label", "tab:" + re.sub(r"[^A-Za-z0-9:-]+", "-", label)),
        "  " + command("begin", "tabular") + "{" + align + "}",
        "    \\toprule",
        "    " + " & ".join(head if head == "$n$" else escape(head) for head in heads) + r" \\",
        "    \\midrule",
        *(f"    {line}" for line in lines),
        "    \\bottomrule",
        "  \\end{tabular}",
        "\\end{table}",
        "",
    ])


def write_latex(path, text: str):
    write_text_atomic(path, text)
    return path
