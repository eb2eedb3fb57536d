"""Is a setting better than the baseline, or is the gap noise? The statistics of ``sh/report.py --baseline``.

Each run of a setting gives one score (its best monitored value). A setting's runs are its repeats:
the seeds and folds it was run with (``REPEAT_KEYS``). When the setting and the baseline ran the
same repeats, the runs pair up (seed 0 with seed 0, fold 3 with fold 3) and the paired t-test is
used; otherwise Welch's t-test, which assumes neither equal spread nor equal numbers. Both come
from scipy, with the 95 % confidence interval of the difference (setting minus baseline).
With fewer than 2 scored runs on a side there is no spread to test against: "n too small".
"""
from dataclasses import dataclass
from typing import Optional

CONFIDENCE = 0.95
MIN_RUNS = 2
PAIRED, WELCH, TOO_FEW = "paired t-test", "Welch's t-test", "n too small"


@dataclass(frozen=True)
class Comparison:
    """A setting against the baseline: runs on each side, the test used, difference, interval and p-value."""

    n: int
    n_baseline: int
    test: str
    difference: Optional[float] = None  # mean of the setting's scores minus the baseline's
    low: Optional[float] = None
    high: Optional[float] = None
    p_value: Optional[float] = None

    @property
    def excludes_zero(self) -> Optional[bool]:
        """Whether the 95 % interval of the difference leaves out 0 (None without a test)."""
        return None if self.low is None else self.low > 0 or self.high < 0


def _scored(runs: list) -> dict:
    """``runs`` as {repeat: score}, dropping runs without a score; None when two runs share a repeat."""
    scored = [(repeat, score) for repeat, score in runs if score is not None]
    by_repeat = dict(scored)
    return by_repeat if len(by_repeat) == len(scored) else None


def compare(runs: list, baseline: list) -> Comparison:
    """Compare two lists of ``(repeat, score)`` pairs, where ``repeat`` names the seed and fold of a run."""
    from scipy import stats

    ours = [score for _, score in runs if score is not None]
    theirs = [score for _, score in baseline if score is not None]
    if len(ours) < MIN_RUNS or len(theirs) < MIN_RUNS:
        return Comparison(len(ours), len(theirs), TOO_FEW)
    ours_by_repeat, theirs_by_repeat = _scored(runs), _scored(baseline)
    paired = None not in (ours_by_repeat, theirs_by_repeat) and ours_by_repeat.keys() == theirs_by_repeat.keys()
    if paired:
        repeats = list(ours_by_repeat)
        ours, theirs = [ours_by_repeat[r] for r in repeats], [theirs_by_repeat[r] for r in repeats]
        gaps = [a - b for a, b in zip(ours, theirs, strict=True)]
        if len(set(gaps)) == 1:  # no spread at all: the t statistic is 0/0 or infinite
            return _without_spread(len(ours), PAIRED, gaps[0])
        result = stats.ttest_rel(ours, theirs)
    else:
        if len(set(ours)) == 1 and len(set(theirs)) == 1:
            return _without_spread(len(ours), WELCH, ours[0] - theirs[0], len(theirs))
        result = stats.ttest_ind(ours, theirs, equal_var=False)
    interval = result.confidence_interval(confidence_level=CONFIDENCE)
    difference = sum(ours) / len(ours) - sum(theirs) / len(theirs)
    return Comparison(len(ours), len(theirs), PAIRED if paired else WELCH, difference, float(interval.low),
                      float(interval.high), float(result.pvalue))


def _without_spread(n: int, test: str, gap: float, n_baseline: Optional[int] = None) -> Comparison:
    """Every run differs by the same ``gap``: the interval is that point; p is 1 for no gap and 0 otherwise."""
    p_value = 1.0 if gap == 0 else 0.0
    return Comparison(n, n if n_baseline is None else n_baseline, test, gap, gap, gap, p_value)


def verdict(comparison: Comparison, maximize: bool) -> str:
    """"better", "worse" (the interval excludes 0, on that side) or "no clear difference"; "-" without a test."""
    if comparison.excludes_zero is None:
        return "-"
    if not comparison.excludes_zero:
        return "no clear difference"
    return "better" if (comparison.difference > 0) == maximize else "worse"
