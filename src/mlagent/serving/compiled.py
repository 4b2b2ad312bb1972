"""Fast, exact predict paths for common scikit-learn models (used inside the serving worker).

scikit-learn's `predict` validates its input on every call and walks a forest tree by tree in
Python; for one row that overhead dominates. Here a fitted model is compiled once into
plain NumPy arrays:

* linear regressors: `X @ coef_.T + intercept_`, the very expression sklearn evaluates;
* trees and forests: every tree's nodes concatenated into flat arrays and walked for all
  trees at once, one vectorised step per depth level. Inputs are rounded to float32 before
  the comparisons, as sklearn's tree code does, and the per-tree outputs are accumulated
  in estimator order (a cumulative sum), as sklearn's forests do.

`compile_model` checks the compiled path against the model's own predict on a sample and
returns None (use sklearn) if they differ in a single bit."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


def _linear(model) -> list[Predict]:
    """Two candidates: BLAS may sum in another order for a Fortran-ordered input, and sklearn
    sees one when it is given a DataFrame; `compile_model` keeps whichever matches."""
    from sklearn.base import is_regressor
    from sklearn.linear_model._base import LinearModel

    if not (is_regressor(model) and isinstance(model, LinearModel)):  # equality is checked after
        return []
    coef_t = np.asarray(model.coef_, dtype=np.float64).T
    intercept = model.intercept_

    def predict(x: np.ndarray) -> np.ndarray:
        return x @ coef_t + intercept

    def predict_f(x: np.ndarray) -> np.ndarray:
        return np.asfortranarray(x) @ coef_t + intercept

    return [predict, predict_f]


class _Forest:
    def __init__(self, trees: list, classifier: bool, n_classes: int, scale: bool) -> None:
        offsets, feats, thrs, lefts, rights, values = [], [], [], [], [], []
        off, depth = 0, 0
        for tree in trees:
            t = tree.tree_
            n = t.node_count
            leaf = t.children_left == -1
            idx = np.arange(n) + off
            feats.append(np.where(leaf, 0, t.feature).astype(np.intp))
            thrs.append(np.where(leaf, np.inf, t.threshold))
            lefts.append(np.where(leaf, idx, t.children_left + off))
            rights.append(np.where(leaf, idx, t.children_right + off))
            v = t.value.reshape(n, -1)
            values.append(v[:, :n_classes] if classifier else v[:, :1])
            offsets.append(off)
            off += n
            depth = max(depth, t.max_depth)
        self.roots = np.asarray(offsets, dtype=np.intp)
        self.feature = np.concatenate(feats)
        self.threshold = np.concatenate(thrs)
        self.left = np.concatenate(lefts)
        self.right = np.concatenate(rights)
        self.value = np.concatenate(values).astype(np.float64)
        self.depth = depth
        self.n_trees = len(trees)
        self.scale = scale

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """Leaf index of every (row, tree)."""
        x32 = np.asarray(x, dtype=np.float32).astype(np.float64)
        rows = np.arange(x32.shape[0])[:, None]
        node = np.broadcast_to(self.roots, (x32.shape[0], self.n_trees)).copy()
        for _ in range(self.depth):
            go_left = x32[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        return node

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        per_tree = self.value[self.leaves(x)]  # (rows, trees, k)
        if self.n_trees == 1:
            return per_tree[:, 0, :]
        total = np.cumsum(per_tree, axis=1)[:, -1, :]
        return total / self.n_trees if self.scale else total


def _trees(model) -> list[Predict]:
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, \
        RandomForestRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

    single = (DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor)
    forests = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor)
    if type(model) in single:
        trees, scale = [model], False
    elif type(model) in forests:
        trees, scale = list(model.estimators_), True
    else:
        return []
    if getattr(model, "n_outputs_", 1) != 1:
        return []
    classifier = hasattr(model, "classes_")
    n_classes = len(model.classes_) if classifier else 1
    forest = _Forest(trees, classifier, n_classes, scale)
    if classifier:
        classes = np.asarray(model.classes_)

        def predict(x: np.ndarray) -> np.ndarray:
            return classes.take(np.argmax(forest.accumulate(x), axis=1), axis=0)
    else:
        def predict(x: np.ndarray) -> np.ndarray:
            return forest.accumulate(x)[:, 0]
    return [predict]


def compile_model(model, sample: np.ndarray | None, reference: Predict) -> Predict | None:
    """A compiled predict equal to `reference` on `sample` (or on random rows), else None."""
    try:
        candidates = _linear(model) or _trees(model)
    except Exception:  # noqa: BLE001 - an unusual fitted state: keep sklearn's path
        return None
    n_features = int(getattr(model, "n_features_in_", 0) or (sample.shape[1] if sample is not None else 0))
    if not n_features:
        return None
    rng = np.random.default_rng(0)
    probes = [rng.normal(size=(64, n_features)) * 10]
    if sample is not None and sample.shape[1] == n_features:
        probes.append(sample[:2000])
    for fast in candidates:
        if all(np.array_equal(fast(rows), reference(rows)) for probe in probes for rows in (probe, probe[:1])):
            return fast
    return None
