"""SHAP in the API process, on a compiled model's spec (numbers only): forests and linear models.

A forest's `explain=true` used to cross the worker's pipe and run scikit-learn there: SHAP
itself is ~0.1 ms a row, but `predict_proba` for the output cost ~10 ms of thread-pool
overhead a call. Here the spec the worker exported (compiled.py; with each node's training
cover) is handed to shap's own `TreeExplainer` as the tree dictionary it accepts, built the
way shap builds one from the scikit-learn model (classifier leaves normalised to
probabilities, a forest's trees scaled by 1/n), so the values are shap's on the model.

shap's C code recurses over the trees without checking them, so a spec is accepted only as
well-formed trees: every child after its parent and inside its tree, every node but a root
the child of exactly one node, and at most MAX_DEPTH levels (its path buffers grow with the
depth squared). A worker can still send wrong numbers, which only misexplain its own model.

A linear model's SHAP values with an independent masker over the training data are
`coef * (x - mean)` and its base value `mean @ coef + intercept` (what shap's
`LinearExplainer` computes); the worker adds the training data's column means to the spec."""

from __future__ import annotations

from typing import Any

import numpy as np

from .compiled import Spec, SpecError, unpack
from .explain import describe

MAX_DEPTH = 128


class TreeShap:
    kind = "tree"

    def __init__(self, spec: Spec) -> None:
        import shap

        roots = unpack(spec["roots"], "<i8", 1)
        feature, threshold = unpack(spec["feature"], "<i8", 1), unpack(spec["threshold"], "<f8", 1)
        left, right = unpack(spec["left"], "<i8", 1), unpack(spec["right"], "<i8", 1)
        value, cover = unpack(spec["value"], "<f8", 2), unpack(spec.get("cover"), "<f8", 1)
        n, n_features = len(feature), spec["n_features"]
        if not (len(threshold) == len(left) == len(right) == len(value) == len(cover) == n > 0):
            raise SpecError("tree arrays disagree in length")
        if not (np.isfinite(cover).all() and (cover >= 0).all() and np.isfinite(value).all()):
            raise SpecError("bad node covers or values")
        ends = _check_trees(roots, feature, left, right, n, n_features)
        self.classes: list[Any] | None = spec.get("classes")
        if self.classes is not None:
            total = value.sum(1, keepdims=True)
            value = value / np.where(total == 0, 1, total)  # leaves as probabilities, as shap does
        if spec.get("scale"):
            value = value / len(roots)
        trees = []
        for a, b in zip(roots, ends, strict=False):
            inner = left[a:b] != -1
            lo = np.where(inner, left[a:b] - a, -1)
            trees.append({"children_left": lo, "children_right": np.where(inner, right[a:b] - a, -1),
                          "children_default": lo, "features": np.where(inner, feature[a:b], -2),
                          "thresholds": np.where(inner, threshold[a:b], -2.0), "values": value[a:b],
                          "node_sample_weight": cover[a:b]})
        self._explainer = shap.TreeExplainer({
            "trees": trees, "input_dtype": np.float32, "internal_dtype": np.float64,
            "tree_output": "probability" if self.classes is not None else "raw_value"})

    def explain(self, x: np.ndarray, predicted: np.ndarray) -> list[dict[str, Any]]:
        values = self._explainer.shap_values(x, check_additivity=False)
        return describe(self.kind, self.classes, values, self._explainer.expected_value,
                        self._explainer.model.predict(x), predicted)


class LinearShap:
    kind = "linear"

    def __init__(self, spec: Spec) -> None:
        coef = unpack(spec["coef_t"], "<f8", (1, 2))
        intercept = unpack(spec["intercept"], "<f8", (0, 1))
        mean = unpack(spec.get("mean"), "<f8", 1)
        if coef.ndim != 1 or intercept.size != 1 or not len(coef) == len(mean) == spec["n_features"]:
            raise SpecError("a single-output linear model's coefficients and means")
        if not (np.isfinite(coef).all() and np.isfinite(mean).all() and np.isfinite(intercept).all()):
            raise SpecError("bad coefficients or means")
        self.coef, self.mean = coef, mean
        self.base = float(mean @ coef + intercept.reshape(-1)[0])

    def explain(self, x: np.ndarray, predicted: np.ndarray) -> list[dict[str, Any]]:
        return describe(self.kind, None, (x - self.mean) * self.coef, self.base, predicted, predicted)


def build(spec: Spec) -> TreeShap | LinearShap:
    """The explainer for a checked spec; SpecError when it cannot be explained here."""
    if spec.get("kind") == "forest":
        return TreeShap(spec)
    if spec.get("kind") == "linear" and "mean" in spec:
        return LinearShap(spec)
    raise SpecError("no in-process explainer for this spec")


def _check_trees(roots: np.ndarray, feature: np.ndarray, left: np.ndarray, right: np.ndarray, n: int,
                 n_features: int) -> np.ndarray:
    """Each tree's end index, if the arrays are well-formed trees of at most MAX_DEPTH levels."""
    if len(roots) == 0 or roots[0] != 0 or (np.diff(roots) <= 0).any() or roots[-1] >= n:
        raise SpecError("tree roots must start at 0 and increase")
    ends = np.append(roots[1:], n)
    idx = np.arange(n)
    end_of = np.repeat(ends, ends - roots)
    inner = left != -1
    if (right[~inner] != -1).any():
        raise SpecError("a leaf with one child")
    for child in (left[inner], right[inner]):
        if ((child <= idx[inner]) | (child >= end_of[inner])).any():
            raise SpecError("a child before its parent or outside its tree")
    if ((feature[inner] < 0) | (feature[inner] >= n_features)).any():
        raise SpecError("a split on a feature out of range")
    parents = np.bincount(np.concatenate([left[inner], right[inner]]), minlength=n)
    expected = np.ones(n, dtype=parents.dtype)
    expected[roots] = 0
    if (parents != expected).any():
        raise SpecError("a node that is not the child of exactly one node")
    frontier = roots
    for _ in range(MAX_DEPTH + 1):
        frontier = frontier[inner[frontier]]
        if not len(frontier):
            return ends
        frontier = np.concatenate([left[frontier], right[frontier]])
    raise SpecError(f"trees deeper than {MAX_DEPTH} levels are explained in the worker")
