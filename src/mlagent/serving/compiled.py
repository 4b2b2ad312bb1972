"""Fast, exact predict paths for common scikit-learn models, as plain numeric specs.

scikit-learn's `predict` validates its input on every call and walks a forest tree by tree in
Python; for one row that overhead dominates. Here a fitted model is exported once (in the
serving worker, the only process that loads the uploaded file) to a *spec*: numbers only,

* linear regressors: `coef_`, `intercept_`, evaluated as `X @ coef_.T + intercept_`, the
  very expression sklearn evaluates;
* trees and forests: every tree's nodes concatenated into flat arrays, walked for all trees
  at once, one vectorised step per depth level (with each node's training cover, which
  Tree SHAP needs: specshap.py). Inputs are rounded to float32 before the
  comparisons, as sklearn's tree code does, and the per-tree outputs are accumulated in
  estimator order (a cumulative sum), as sklearn's forests do.

`build(spec)` turns a spec into a predict function with NumPy alone and validates every index
and size first, so the API process can evaluate a spec a worker sent without ever
unpickling anything. The caps below also bound the *work* of a spec (trees, trees x depth)
and the memory of a call (rows are walked in chunks), so a hostile worker can send wrong
numbers for its own deployment, which it could answer anyway, but cannot stall or exhaust
the API process. `compile_spec` keeps a spec only if it equals the
model's own predict on a sample (or random rows) bit for bit, as JSON: the wire format."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]
Spec = dict[str, Any]

DTYPES = ("<f8", "<i8")  # the only array types a spec may carry: never objects
MAX_NODES = 4_000_000
MAX_VALUES = 16_000_000
MAX_DEPTH = 4096
MAX_TREES = 10_000
MAX_STEPS = 1_000_000  # trees x depth: the vectorised steps a forest costs per row
CHUNK_ELEMENTS = 1 << 20  # (row, tree) pairs walked at once: bounds a call's memory


class SpecError(ValueError):
    """A spec that is malformed or out of bounds."""


def pack(a: Any, dtype: str) -> dict[str, Any]:
    arr = np.ascontiguousarray(np.asarray(a, dtype=dtype))
    return {"dtype": dtype, "shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode()}


def unpack(d: Any, dtype: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    if not isinstance(d, dict) or d.get("dtype") != dtype or dtype not in DTYPES:
        raise SpecError(f"expected a {dtype} array")
    shape = d.get("shape")
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if not isinstance(shape, list) or len(shape) not in dims or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise SpecError("bad array shape")
    raw = base64.b64decode(d.get("b64", ""), validate=True)
    count = int(np.prod(shape)) if shape else 1
    if len(raw) != count * 8:
        raise SpecError("array size does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal as the client would see them: the same JSON text (floats round-trip exactly)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and json.dumps(a.tolist()) == json.dumps(b.tolist())


# -- export (worker side) --------------------------------------------------------------------------
def _linear_specs(model) -> list[Spec]:
    """Two candidates: BLAS may sum in another order for a Fortran-ordered input, and sklearn
    sees one when it is given a DataFrame; `compile_spec` keeps whichever matches."""
    from sklearn.base import is_regressor
    from sklearn.linear_model._base import LinearModel

    if not (is_regressor(model) and isinstance(model, LinearModel)):  # equality is checked after
        return []
    coef = np.asarray(model.coef_, dtype=np.float64)
    base = {"kind": "linear", "n_features": int(coef.shape[-1]), "coef_t": pack(coef.T, "<f8"),
            "intercept": pack(model.intercept_, "<f8")}
    return [{**base, "order": "C"}, {**base, "order": "F"}]


def _tree_specs(model) -> list[Spec]:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
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
    k = len(model.classes_) if classifier else 1
    roots, feats, thrs, lefts, rights, values, covers = [], [], [], [], [], [], []
    off, depth = 0, 0
    for tree in trees:
        t = tree.tree_
        n = t.node_count
        leaf = t.children_left == -1
        roots.append(off)
        feats.append(t.feature)
        thrs.append(t.threshold)
        lefts.append(np.where(leaf, -1, t.children_left + off))
        rights.append(np.where(leaf, -1, t.children_right + off))
        values.append(t.value.reshape(n, -1)[:, :k])
        covers.append(t.weighted_n_node_samples)
        off += n
        depth = max(depth, int(t.max_depth))
    classes = [c.item() if hasattr(c, "item") else c for c in model.classes_] if classifier else None
    return [{"kind": "forest", "n_features": int(model.n_features_in_), "classes": classes, "scale": scale,
             "depth": depth, "roots": pack(roots, "<i8"), "feature": pack(np.concatenate(feats), "<i8"),
             "threshold": pack(np.concatenate(thrs), "<f8"), "left": pack(np.concatenate(lefts), "<i8"),
             "right": pack(np.concatenate(rights), "<i8"), "value": pack(np.concatenate(values), "<f8"),
             "cover": pack(np.concatenate(covers), "<f8")}]  # training weight per node: for Tree SHAP


# -- build (either side) ----------------------------------------------------------------------------
def _build_linear(spec: Spec) -> Predict:
    n = spec["n_features"]
    coef_t = unpack(spec["coef_t"], "<f8", (1, 2))
    intercept = unpack(spec["intercept"], "<f8", (0, 1))
    if coef_t.shape[0] != n or (intercept.ndim == 1 and coef_t.ndim == 2 and intercept.shape[0] != coef_t.shape[1]):
        raise SpecError("linear spec shapes disagree")
    if intercept.ndim == 0:
        intercept = intercept[()]  # a NumPy scalar, as sklearn's float intercept_
    if spec.get("order") == "F":
        return lambda x: np.asfortranarray(x) @ coef_t + intercept
    return lambda x: x @ coef_t + intercept


class _Forest:
    def __init__(self, spec: Spec) -> None:
        n_features = spec["n_features"]
        self.roots = unpack(spec["roots"], "<i8", 1).astype(np.intp)
        feature = unpack(spec["feature"], "<i8", 1)
        threshold = unpack(spec["threshold"], "<f8", 1)
        left = unpack(spec["left"], "<i8", 1)
        right = unpack(spec["right"], "<i8", 1)
        self.value = unpack(spec["value"], "<f8", 2)
        n = len(feature)
        if not (0 < n <= MAX_NODES and self.value.size <= MAX_VALUES and len(threshold) == len(left) == len(right)
                == len(self.value) == n and 0 < len(self.roots) <= n):
            raise SpecError("forest spec sizes disagree or exceed the limits")
        self.depth = spec["depth"]
        if not isinstance(self.depth, int) or not 0 <= self.depth <= min(MAX_DEPTH, n):
            raise SpecError("bad forest depth")
        if len(self.roots) > MAX_TREES or len(self.roots) * max(self.depth, 1) > MAX_STEPS:
            raise SpecError("forest spec too costly to evaluate (trees or trees x depth over the caps)")
        leaf = left == -1
        inner = ~leaf
        if ((self.roots < 0) | (self.roots >= n)).any() or (right[leaf] != -1).any() or \
                ((left[inner] < 0) | (left[inner] >= n) | (right[inner] < 0) | (right[inner] >= n)).any() or \
                ((feature[inner] < 0) | (feature[inner] >= n_features)).any():
            raise SpecError("forest spec indexes out of range")
        idx = np.arange(n, dtype=np.intp)
        self.feature = np.where(leaf, 0, feature).astype(np.intp)
        self.threshold = np.where(leaf, np.inf, threshold)
        self.left = np.where(leaf, idx, left).astype(np.intp)  # a leaf steps to itself
        self.right = np.where(leaf, idx, right).astype(np.intp)
        self.n_trees = len(self.roots)
        self.scale = bool(spec["scale"])

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """Leaf index of every (row, tree). Lookups by `take` on flat arrays: NumPy's fancy
        indexing costs several times more per call for the same gather (a 100-row call of a
        100-tree forest: ~40% of its CPU)."""
        x32 = np.asarray(x, dtype=np.float32).astype(np.float64)
        flat = x32.ravel()
        row_start = (np.arange(x32.shape[0]) * x32.shape[1])[:, None]
        node = np.broadcast_to(self.roots, (x32.shape[0], self.n_trees)).copy()
        for _ in range(self.depth):
            go_left = flat.take(row_start + self.feature.take(node)) <= self.threshold.take(node)
            node = np.where(go_left, self.left.take(node), self.right.take(node))
        return node

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        """Rows in chunks (each row's sum is independent of the others: same answers)."""
        step = max(1, CHUNK_ELEMENTS // self.n_trees)
        if len(x) <= step:
            return self._accumulate(x)
        return np.concatenate([self._accumulate(x[i:i + step]) for i in range(0, len(x), step)])

    def _accumulate(self, x: np.ndarray) -> np.ndarray:
        per_tree = self.value.take(self.leaves(x).T, axis=0)  # (trees, rows, k): summed tree after tree
        if self.n_trees == 1:
            return per_tree[0]
        total = np.cumsum(per_tree, axis=0)[-1]
        return total / self.n_trees if self.scale else total


def _build_forest(spec: Spec) -> Predict:
    forest = _Forest(spec)
    classes = spec.get("classes")
    if classes is None:
        if forest.value.shape[1] != 1:
            raise SpecError("a regression forest has one output")
        return lambda x: forest.accumulate(x)[:, 0]
    if not isinstance(classes, list) or len(classes) != forest.value.shape[1] or \
            not all(isinstance(c, (str, int, float, bool)) for c in classes):
        raise SpecError("bad forest classes")
    labels = np.asarray(classes)
    return lambda x: labels.take(np.argmax(forest.accumulate(x), axis=1), axis=0)


def work(spec: Spec) -> int:
    """Vectorised steps per row of a built spec: trees x depth, or a linear model's weights."""
    if spec.get("kind") == "forest":
        return int(spec["roots"]["shape"][0]) * max(int(spec["depth"]), 1)
    return int(np.prod(spec["coef_t"]["shape"]))


def build(spec: Spec) -> Predict:
    """A predict function for `spec`; SpecError if it is malformed. Rows must have n_features columns."""
    try:
        if not isinstance(spec.get("n_features"), int) or spec["n_features"] <= 0:
            raise SpecError("bad n_features")
        if spec.get("kind") == "linear":
            return _build_linear(spec)
        if spec.get("kind") == "forest":
            return _build_forest(spec)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SpecError(f"malformed spec: {exc}") from None
    raise SpecError("unknown spec kind")


def compile_spec(model, sample: np.ndarray | None, reference: Predict) -> tuple[Spec, Predict] | None:
    """A spec (and its predict) equal to `reference` on `sample` (or on random rows), else None."""
    try:
        candidates = _linear_specs(model) or _tree_specs(model)
    except Exception:  # noqa: BLE001 - an unusual fitted state: keep sklearn's path
        return None
    n_features = int(getattr(model, "n_features_in_", 0) or (sample.shape[1] if sample is not None else 0))
    if not n_features:
        return None
    rng = np.random.default_rng(0)
    probes = [rng.normal(size=(64, n_features)) * 10]
    if sample is not None and sample.shape[1] == n_features:
        probes.append(np.ascontiguousarray(sample[:2000]))  # C order, as parsed request rows are
    for spec in candidates:
        try:
            fast = build(spec)
            if all(same(fast(rows), reference(rows)) for probe in probes for rows in (probe, probe[:1])):
                return spec, fast
        except Exception:  # noqa: BLE001 - this candidate does not fit the model
            continue
    return None


def compile_model(model, sample: np.ndarray | None, reference: Predict) -> Predict | None:
    """A compiled predict equal to `reference` on `sample` (or on random rows), else None."""
    found = compile_spec(model, sample, reference)
    return found[1] if found else None


def checked(spec: Spec, probes: list[tuple[np.ndarray, str]]) -> Predict:
    """`build(spec)`, verified here on (rows, expected JSON) pairs: the process that evaluates a
    spec checks it gives the reference's exact answers in its own NumPy/BLAS, else SpecError."""
    fast = build(spec)
    if not probes:
        raise SpecError("no probes to check the spec against")
    for rows, expected in probes:
        if rows.ndim != 2 or rows.shape[1] != spec["n_features"]:
            raise SpecError("a probe has the wrong number of features")
        if json.dumps(np.asarray(fast(rows)).tolist()) != expected:
            raise SpecError("the spec's predictions differ from the model's in this process")
    return fast
