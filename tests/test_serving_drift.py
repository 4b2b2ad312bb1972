"""Drift statistics: same distribution -> no drift; a shifted feature -> drift, per method."""

from __future__ import annotations

import numpy as np
import pytest

from mlagent.serving.drift import drift_report


@pytest.mark.parametrize("method", [0, 1, 2])
def test_shifted_feature_drifts_and_the_other_does_not(method):
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(2000, 2))
    current = rng.normal(size=(500, 2))
    current[:, 1] += 1.5
    report = drift_report(["stable", "shifted"], reference, current, method)
    assert [f.feature for f in report] == ["stable", "shifted"]
    assert report[0].drift is False and report[1].drift is True
    if method == 1:
        assert report[0].p_value is None and report[1].statistic > 0.2 > report[0].statistic
    else:
        assert report[1].p_value < 0.05 < report[0].p_value


@pytest.mark.parametrize("method", [0, 1, 2])
def test_the_report_carries_both_distributions_over_the_training_deciles(method):
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(1000, 1))
    current = reference[:200] + 5.0  # every served value above the training data
    [f] = drift_report(["x"], reference, current, method)
    assert len(f.edges) == 9 and f.edges == sorted(f.edges)
    assert len(f.reference_share) == len(f.current_share) == 10
    assert sum(f.reference_share) == pytest.approx(1) and sum(f.current_share) == pytest.approx(1)
    assert all(share == pytest.approx(0.1) for share in f.reference_share)
    assert f.current_share[-1] == pytest.approx(1)  # all in the top decile
