"""Continuous toxicity-monitoring boundaries for a single-arm trial (exact, via scipy).

After each evaluable patient n = 1..N the trial stops when the number of patients with a
dose-limiting toxicity reaches `reject_at[n - 1]`. Two published ways to set the boundary,
both calibrated so that the probability of ever crossing it when the true toxicity rate is
`p0` is at most `alpha`, and as close to it as the discrete boundary allows:

- "bayes": Geller NL, Follmann D, Leifer ES, Carter SL. Design of early trials in stem
  cell transplantation: a hybrid frequentist-Bayesian approach. In: Advances in Clinical
  Trial Biostatistics, 2003. Stop when P(p > p0 | data) under a Beta(a, b) prior reaches a
  posterior cutoff; the cutoff is the smallest one that keeps the crossing probability <= alpha.
- "pocock": Ivanova A, Qaqish BF, Schell MJ. Continuous toxicity monitoring in phase II
  trials in oncology. Biometrics 2005;61(2):540-545. Stop when the binomial tail
  P(X >= d | n, p0) falls to a nominal level that is the same at every n (Pocock-type);
  the level is the largest one that keeps the crossing probability <= alpha.

Both reproduce the worked examples of the `stoppingrule` R package (Martens MJ,
github.com/mjmartens/stoppingrule, README; Martens & Logan, Clin Trials 2024;21(2):152-161);
see tests/unit/test_stopping.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Literal

import numpy as np
from pydantic import Field
from pydantic.dataclasses import dataclass as config_dataclass
from scipy.stats import beta, binom

Method = Literal["bayes", "pocock"]


@config_dataclass(frozen=True, slots=True)
class StoppingConfig:
    """The monitored toxicity and its boundary (CARTWATCH_RULES__TOXICITY__*);
    docs/ALERT_RULES.md."""

    method: Method = "bayes"
    max_patients: Annotated[int, Field(ge=1, le=1000)] = 100
    p0: Annotated[float, Field(gt=0, lt=1)] = 0.20  # acceptable rate of dose-limiting toxicity
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.10  # P(stop) when the true rate is p0
    # Beta(0.6, 2.4): prior mean p0 = 0.20 worth 3 patients.
    prior_a: Annotated[float, Field(gt=0)] = 0.6
    prior_b: Annotated[float, Field(gt=0)] = 2.4
    # Onset within 28 days of the first infusion.
    dlt_window_days: Annotated[float, Field(gt=0)] = 28.0
    # CRS or ICANS at or above this grade; any grade 5 counts.
    dlt_min_grade: Annotated[int, Field(ge=1, le=5)] = 4


@dataclass(frozen=True, slots=True)
class Boundary:
    """A computed boundary: reject_at[n - 1] > n means the trial cannot stop at n."""

    reject_at: tuple[int, ...]
    constant: float  # bayes: the posterior cutoff reached; pocock: the nominal level
    crossing_probability: float  # under p0: the type I error actually spent

    def stop_at(self, n: int) -> int | None:
        """DLT count that stops the trial with n evaluable patients; None when it cannot."""
        if not 1 <= n <= len(self.reject_at) or self.reject_at[n - 1] > n:
            return None
        return self.reject_at[n - 1]


def crossing_probability(reject_at: tuple[int, ...] | list[int], p: float) -> float:
    """Probability that the DLT count ever reaches the boundary when each patient has rate p."""
    n_max = len(reject_at)
    alive = np.zeros(n_max + 2)  # alive[d]: P(d DLTs so far and not yet stopped)
    alive[0], stopped = 1.0, 0.0
    for bound in reject_at:
        alive[1:] = alive[1:] * (1 - p) + alive[:-1] * p
        alive[0] *= 1 - p
        stopped += alive[bound:].sum()
        alive[bound:] = 0.0
    return float(stopped)


def _scores(config: StoppingConfig) -> np.ndarray:
    """score[n - 1, d]: evidence against p0 after d DLTs in n patients (increasing in d)."""
    n = np.arange(1, config.max_patients + 1)[:, None]
    d = np.arange(config.max_patients + 1)[None, :]
    with np.errstate(invalid="ignore"):
        if config.method == "bayes":  # posterior P(p > p0) under Beta(a + d, b + n - d)
            score = beta.sf(config.p0, config.prior_a + d, config.prior_b + n - d)
        else:  # minus the binomial tail P(X >= d), so that "stop when score >= c" holds
            score = -binom.sf(d - 1, n, config.p0)
    return np.where(d <= n, score, -np.inf)


def _bounds_for(scores: np.ndarray, cutoff: float) -> tuple[int, ...]:
    hits = scores >= cutoff
    first = hits.argmax(axis=1)
    n = np.arange(1, scores.shape[0] + 1)
    return tuple(int(b) for b in np.where(hits.any(axis=1), first, n + 1))


@lru_cache(maxsize=32)
def compute_boundary(config: StoppingConfig) -> Boundary:
    """The most liberal boundary whose crossing probability under p0 is at most alpha."""
    scores = _scores(config)
    cutoffs = np.unique(scores[np.isfinite(scores)])[::-1]  # strictest first
    low, high = -1, len(cutoffs) - 1  # invariant: cutoffs[low] (or none) keeps alpha
    while low < high:  # the crossing probability grows as the cutoff falls
        mid = (low + high + 1) // 2
        if crossing_probability(_bounds_for(scores, cutoffs[mid]), config.p0) <= config.alpha:
            low = mid
        else:
            high = mid - 1
    if low < 0:  # even stopping only when every patient has a DLT spends too much
        bounds = tuple(range(2, config.max_patients + 2))
        return Boundary(bounds, float("nan"), 0.0)
    bounds = _bounds_for(scores, cutoffs[low])
    constant = float(cutoffs[low]) if config.method == "bayes" else -float(cutoffs[low])
    return Boundary(bounds, constant, crossing_probability(bounds, config.p0))


def boundary_table(config: StoppingConfig) -> list[dict]:
    """One row per number of evaluable patients: the DLT count that stops (null: cannot)."""
    boundary = compute_boundary(config)
    return [
        {"n_evaluable": n, "stop_at_dlt": boundary.stop_at(n)}
        for n in range(1, config.max_patients + 1)
    ]
