"""Per-feature drift between the training data and the inputs a deployment has served.

`drift_detection.method`: 0 = two-sample Kolmogorov-Smirnov (drift when p < 0.05),
1 = population stability index over the training data's deciles (drift when PSI > 0.2),
2 = chi-square goodness of fit of the served inputs to the training deciles (p < 0.05)."""

from __future__ import annotations

import numpy as np

from .schemas import FeatureDrift

METHODS = {0: ("ks", "p_value < 0.05"), 1: ("psi", "psi > 0.2"), 2: ("chi_square", "p_value < 0.05")}
EPS = 1e-6


def _bins(reference: np.ndarray) -> np.ndarray:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, 11)[1:-1]))
    return edges


def _counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1).astype(np.float64)


def feature_drift(name: str, reference: np.ndarray, current: np.ndarray, method: int) -> FeatureDrift:
    from scipy import stats

    edges = _bins(reference)
    ref = _counts(reference, edges)
    cur = _counts(current, edges)
    shares = {"edges": [float(e) for e in edges], "reference_share": [float(x) for x in ref / ref.sum()],
              "current_share": [float(x) for x in cur / cur.sum()]}
    if method == 0:
        result = stats.ks_2samp(reference, current)
        p = float(result.pvalue)
        return FeatureDrift(feature=name, statistic=float(result.statistic), p_value=p, drift=p < 0.05, **shares)
    ref_p = np.maximum(ref / ref.sum(), EPS)
    cur_p = np.maximum(cur / cur.sum(), EPS)
    if method == 1:
        psi = float(np.sum((cur_p - ref_p) * np.log(cur_p / ref_p)))
        return FeatureDrift(feature=name, statistic=psi, p_value=None, drift=psi > 0.2, **shares)
    expected = ref_p / ref_p.sum() * cur.sum()
    chi = stats.chisquare(cur, expected)
    p = float(chi.pvalue)
    return FeatureDrift(feature=name, statistic=float(chi.statistic), p_value=p, drift=p < 0.05, **shares)


def drift_report(names: list[str], reference: np.ndarray, current: np.ndarray, method: int) -> list[FeatureDrift]:
    return [feature_drift(names[j], reference[:, j], current[:, j], method) for j in range(reference.shape[1])]
