"""SHAP on a compiled spec, in the API process, equals shap's on the scikit-learn model (Tree
SHAP for forests, the linear explainer for linear regressors); a spec that is not a
well-formed tree is refused before shap's C code walks it."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlagent.serving.compiled import SpecError, compile_spec, pack, unpack
from mlagent.serving.specshap import MAX_DEPTH, TreeShap, build

from .mlconnector.client import api_client, upload, wait_deployment


def _shap_on_sklearn(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    explainer = shap.TreeExplainer(model)
    values = np.asarray(explainer.shap_values(x))
    return (values if values.ndim == 3 else values[:, :, None]), np.atleast_1d(explainer.expected_value)


@pytest.mark.parametrize("make, data", [
    (lambda: RandomForestClassifier(n_estimators=100, random_state=0), "iris"),
    (lambda: ExtraTreesClassifier(n_estimators=30, random_state=1), "iris"),
    (lambda: DecisionTreeClassifier(random_state=0), "iris"),
    (lambda: RandomForestClassifier(n_estimators=20, random_state=0), "binary"),
    (lambda: RandomForestRegressor(n_estimators=30, random_state=0), "diabetes"),
    (lambda: DecisionTreeRegressor(max_depth=8, random_state=0), "diabetes"),
])
def test_values_equal_shap_on_the_sklearn_model(make, data):
    X, y = load_diabetes(return_X_y=True) if data == "diabetes" else load_iris(return_X_y=True)
    if data == "binary":
        y = (y == 1).astype(int)
    model = make().fit(X, y)
    spec, fast = compile_spec(model, X, model.predict)
    spec = json.loads(json.dumps(spec))  # as it crosses the pipe
    rows = np.vstack([X[::7], np.random.default_rng(0).normal(X.mean(0), X.std(0) * 2, size=(20, X.shape[1]))])
    items = TreeShap(spec).explain(rows, fast(rows))
    values, base = _shap_on_sklearn(model, rows)
    classes = list(getattr(model, "classes_", [])) or None
    for i, item in enumerate(items):
        k = classes.index(item["explained_class"]) if classes else 0
        assert item["feature_importance"] == pytest.approx(values[i, :, k].tolist(), abs=1e-9)
        assert item["base_value"] == pytest.approx(base[k], abs=1e-9)
        expected = model.predict_proba(rows[i:i + 1])[0, k] if classes else model.predict(rows[i:i + 1])[0]
        assert item["output"] == pytest.approx(expected, abs=1e-9)
        assert item["base_value"] + sum(item["feature_importance"]) == pytest.approx(item["output"], abs=1e-9)


@pytest.mark.parametrize("make", [lambda: Ridge(alpha=1.0), lambda: Lasso(alpha=0.1), LinearRegression])
def test_linear_values_equal_shap_on_the_sklearn_model(make):
    X, y = load_diabetes(return_X_y=True)
    model = make().fit(X, y)
    spec, fast = compile_spec(model, X, model.predict)
    explainer = build(json.loads(json.dumps({**spec, "mean": pack(X.mean(0), "<f8")})))
    reference = shap.LinearExplainer(model, shap.maskers.Independent(X, max_samples=len(X)))
    rows = X[::9]
    values = reference.shap_values(rows)
    for i, item in enumerate(explainer.explain(rows, fast(rows))):
        assert item["explainer"] == "linear"
        assert item["feature_importance"] == pytest.approx(values[i].tolist(), abs=1e-9)
        assert item["base_value"] == pytest.approx(float(reference.expected_value), abs=1e-9)
        assert item["output"] == pytest.approx(model.predict(rows[i:i + 1])[0], rel=1e-12)
    with pytest.raises(SpecError):
        build(spec)  # no training means: explained in the worker


def _forest_spec():
    X, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    return json.loads(json.dumps(compile_spec(model, X, model.predict)[0]))


def _set(spec, key, index, value):
    arr = unpack(spec[key], spec[key]["dtype"], (1, 2)).copy()
    arr[index] = value
    spec[key] = pack(arr, spec[key]["dtype"])


def _tamper_cycle(spec):  # a child pointing back at its tree's root
    left = unpack(spec["left"], "<i8", 1)
    _set(spec, "left", int(np.flatnonzero(left[1:] != -1)[0]) + 1, 0)


def _tamper_shared_child(spec):  # two parents for one node
    left, _right = unpack(spec["left"], "<i8", 1), unpack(spec["right"], "<i8", 1)
    _set(spec, "right", 0, int(left[0]))


def _tamper_other_tree(spec):  # a child in the next tree
    roots = unpack(spec["roots"], "<i8", 1)
    _set(spec, "left", 0, int(roots[1]))


def _tamper_cover(spec):
    _set(spec, "cover", 0, float("nan"))


@pytest.mark.parametrize("tamper", [_tamper_cycle, _tamper_shared_child, _tamper_other_tree, _tamper_cover,
                                    lambda s: s.pop("cover")])
def test_malformed_trees_are_refused(tamper):
    spec = _forest_spec()
    TreeShap(copy.deepcopy(spec))  # the untouched spec is fine
    tamper(spec)
    with pytest.raises((SpecError, KeyError)):
        TreeShap(spec)


def test_trees_deeper_than_the_cap_are_refused():
    n = MAX_DEPTH + 1  # a chain: inner node 2i splits into leaf 2i+1 and node 2i+2; node 2n is a leaf
    size = 2 * n + 1
    left = [2 * (i // 2) + 2 if i % 2 == 0 and i < 2 * n else -1 for i in range(size)]
    right = [i + 1 if i % 2 == 0 and i < 2 * n else -1 for i in range(size)]
    spec = {"kind": "forest", "n_features": 1, "classes": None, "scale": False, "depth": n,
            "roots": pack([0], "<i8"), "feature": pack(np.zeros(size), "<i8"), "threshold": pack(np.zeros(size), "<f8"),
            "left": pack(left, "<i8"), "right": pack(right, "<i8"), "value": pack(np.ones((size, 1)), "<f8"),
            "cover": pack(np.ones(size), "<f8")}
    with pytest.raises(SpecError, match="deeper"):
        TreeShap(spec)
    short = n - 2  # the same chain within the cap is accepted
    cut = 2 * short + 1
    spec.update(roots=pack([0], "<i8"), feature=pack(np.zeros(cut), "<i8"), threshold=pack(np.zeros(cut), "<f8"),
                left=pack([v if v < cut else -1 for v in left[:cut]], "<i8"),
                right=pack([v if v < cut else -1 for v in right[:cut]], "<i8"),
                value=pack(np.ones((cut, 1)), "<f8"), cover=pack(np.ones(cut), "<f8"))
    TreeShap(spec)


def test_a_served_forest_explains_as_shap_does(make_server):
    X, y = load_iris(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y)
    csv = pd.DataFrame(np.column_stack([X, y]), columns=["a", "b", "c", "d", "y"]).to_csv(index=False)
    server = make_server().start()
    with api_client(server) as c:
        mid = c.post("/model/add", json={"modelname": "rf", "modelkind": "classification"}).json()["id"]
        upload(c, mid, "rf.pkl", pickle.dumps(forest), "model")
        upload(c, mid, "iris.csv", csv.encode(), "data")
        c.post("/deployment/add", json={"modelid": mid, "deployment_id": "dep-shap"})
        assert wait_deployment(c, "dep-shap")["model"]["in_process"] is True
        rows = X[::10]
        body = c.post("/deployment/dep-shap/predict", json={"data": rows.tolist(), "explain": True}).json()
    log = server.log_path.read_text()
    assert "explanations stay in the serving worker" not in log
    values, base = _shap_on_sklearn(forest, rows)
    e = body["explanation"]
    assert body["prediction"] == forest.predict(rows).tolist() == e["explained_class"]
    for i, k in enumerate(body["prediction"]):
        assert e["feature_importance"][i] == pytest.approx(values[i, :, k].tolist(), abs=1e-9)
        assert e["base_value"][i] == pytest.approx(base[k], abs=1e-9)
        assert e["output"][i] == pytest.approx(forest.predict_proba(rows[i:i + 1])[0, k], abs=1e-9)
