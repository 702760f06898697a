"""Paired bootstrap confidence intervals for "optimizer minus naive" on the same examples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PairedDiff:
    mean_a: float
    mean_b: float
    diff: float  # mean(b) - mean(a)
    lo: float
    hi: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "baseline": round(self.mean_a, 6),
            "value": round(self.mean_b, 6),
            "diff": round(self.diff, 6),
            "ci_low": round(self.lo, 6),
            "ci_high": round(self.hi, 6),
            "n": self.n,
        }


def paired_bootstrap(
    a: Sequence[float] | Sequence[Sequence[float]],
    b: Sequence[float] | Sequence[Sequence[float]],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDiff:
    """Percentile CI of ``mean(b) - mean(a)`` resampling example indices with replacement.

    ``a[i]`` and ``b[i]`` are the scores of the same example under the baseline and the
    candidate. Given lists of groups (one per task), resampling is stratified per group and the
    statistic is the macro mean over groups (each task counts once, whatever its size).
    """
    import numpy as np

    grouped = bool(a) and isinstance(a[0], Sequence)
    groups_a = [np.asarray(g, dtype=float) for g in (a if grouped else [a])]
    groups_b = [np.asarray(g, dtype=float) for g in (b if grouped else [b])]
    if len(groups_a) != len(groups_b) or any(
        x.shape != y.shape for x, y in zip(groups_a, groups_b, strict=False)
    ):
        raise ValueError("paired_bootstrap needs a and b of the same shape (paired examples)")
    groups_a = [g for g in groups_a if g.size]
    groups_b = [g for g in groups_b if g.size]
    if not groups_a:
        raise ValueError("paired_bootstrap needs at least one pair")
    rng = np.random.default_rng(seed)
    diffs = [gb - ga for ga, gb in zip(groups_a, groups_b, strict=True)]
    stat = np.zeros(n_resamples)
    for d in diffs:
        idx = rng.integers(0, d.size, size=(n_resamples, d.size))
        stat += d[idx].mean(axis=1)
    stat /= len(diffs)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stat, [alpha, 1 - alpha])
    mean_a = float(np.mean([g.mean() for g in groups_a]))
    mean_b = float(np.mean([g.mean() for g in groups_b]))
    return PairedDiff(
        mean_a=mean_a,
        mean_b=mean_b,
        diff=mean_b - mean_a,
        lo=float(lo),
        hi=float(hi),
        n=int(sum(g.size for g in groups_a)),
    )
