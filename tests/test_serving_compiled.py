"""The compiled predict paths equal scikit-learn's bit for bit; unknown models keep sklearn's path."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlagent.serving.compiled import compile_model


@pytest.mark.parametrize("make", [
    lambda: RandomForestClassifier(n_estimators=100, random_state=0),
    lambda: ExtraTreesClassifier(n_estimators=30, random_state=1),
    lambda: DecisionTreeClassifier(random_state=0),
])
def test_tree_classifiers_exact(make):
    X, y = load_iris(return_X_y=True)
    model = make().fit(X, y)
    fast = compile_model(model, X, model.predict)
    assert fast is not None
    rng = np.random.default_rng(3)
    probe = np.vstack([X, rng.normal(X.mean(0), X.std(0) * 2, size=(500, 4)), X + 1e-7])
    assert np.array_equal(fast(probe), model.predict(probe))
    for row in probe[:40]:
        assert fast(row[None, :]).tolist() == model.predict(row[None, :]).tolist()


@pytest.mark.parametrize("make", [
    lambda: Ridge(alpha=1.0, random_state=0), lambda: LinearRegression(), lambda: Lasso(alpha=0.1),
    lambda: RandomForestRegressor(n_estimators=40, random_state=0), lambda: DecisionTreeRegressor(max_depth=6),
])
def test_regressors_exact(make):
    X, y = load_diabetes(return_X_y=True)
    model = make().fit(X, y)
    fast = compile_model(model, X, model.predict)
    assert fast is not None
    probe = np.vstack([X, np.random.default_rng(0).normal(size=(300, X.shape[1])) * 0.1])
    assert np.array_equal(fast(probe), model.predict(probe))
    assert np.array_equal(fast(probe[:1]), model.predict(probe[:1]))


def test_string_classes_and_unsupported_models():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, names)
    assert compile_model(model, X, model.predict)(X[:5]).tolist() == model.predict(X[:5]).tolist()
    gbr = GradientBoostingRegressor(n_estimators=5).fit(X, y)
    assert compile_model(gbr, X, gbr.predict) is None


def test_a_wrong_reference_refuses_compilation():
    X, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    assert compile_model(model, X, lambda x: np.zeros(len(x), dtype=int)) is None


def test_models_fitted_on_dataframes_match_dataframe_predict():
    import pandas as pd

    data = load_diabetes(as_frame=True)
    model = Ridge(alpha=1.0, random_state=0).fit(data.data, data.target)

    def reference(x):
        return model.predict(pd.DataFrame(x, columns=model.feature_names_in_))

    fast = compile_model(model, data.data.to_numpy(), reference)
    assert fast is not None
    probe = data.data.to_numpy()
    assert np.array_equal(fast(probe), reference(probe))
    assert all(fast(probe[i:i + 1]).tolist() == reference(probe[i:i + 1]).tolist() for i in range(50))


def _forest_spec():
    from mlagent.serving.compiled import compile_spec

    X, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    spec, _ = compile_spec(model, X, model.predict)
    return spec, X, model


def test_a_spec_rebuilt_from_json_predicts_exactly():
    """What the API process does with a worker's spec: JSON round trip, build, same answers."""
    import json

    from mlagent.serving.compiled import build, checked, same

    spec, X, model = _forest_spec()
    fast = build(json.loads(json.dumps(spec)))
    assert same(fast(X), model.predict(X))
    assert checked(spec, [(X[:3], json.dumps(model.predict(X[:3]).tolist()))]) is not None


@pytest.mark.parametrize("tamper", [
    lambda s: s["left"].update(dtype="|O"),  # never objects
    lambda s: s.update(depth=10 ** 9),
    lambda s: s.update(n_features=1),  # features out of range
    lambda s: s.update(classes=[{"x": 1}, 2, 3]),
    lambda s: s.update(kind="pickle"),
    lambda s: s["roots"].update(b64="AAAA"),  # size disagrees with the shape
])
def test_hostile_specs_are_refused(tamper):
    import copy

    from mlagent.serving.compiled import SpecError, build

    spec, _, _ = _forest_spec()
    bad = copy.deepcopy(spec)
    tamper(bad)
    with pytest.raises(SpecError):
        build(bad)


def test_out_of_range_children_and_wrong_answers_are_refused():
    import json

    from mlagent.serving.compiled import SpecError, checked, pack, unpack

    spec, X, model = _forest_spec()
    left = unpack(spec["left"], "<i8", 1).copy()
    left[left >= 0] += 10 ** 6
    with pytest.raises(SpecError):
        checked({**spec, "left": pack(left, "<i8")}, [(X[:2], "[]")])
    with pytest.raises(SpecError):  # a worker claiming other answers than the spec gives
        checked(spec, [(X[:2], json.dumps([9, 9]))])


def _leaf_forest(n_trees: int, depth: int) -> dict:
    """A spec within the node caps whose every predict walks n_trees x depth steps."""
    from mlagent.serving.compiled import pack

    zeros = np.zeros(n_trees)
    return {"kind": "forest", "n_features": 1, "classes": None, "scale": True, "depth": depth,
            "roots": pack(np.arange(n_trees), "<i8"), "feature": pack(zeros, "<i8"),
            "threshold": pack(zeros, "<f8"), "left": pack(zeros - 1, "<i8"), "right": pack(zeros - 1, "<i8"),
            "value": pack(zeros[:, None], "<f8")}


def test_a_spec_that_would_stall_the_api_process_is_refused():
    """Node caps alone let a worker send 200k one-leaf trees walked 4096 levels deep: minutes
    of NumPy per row on the API's event loop. Trees and trees x depth are capped too."""
    from mlagent.serving.compiled import SpecError, build

    with pytest.raises(SpecError):
        build(_leaf_forest(200_000, 4096))
    with pytest.raises(SpecError):
        build(_leaf_forest(5_000, 4096))
    assert build(_leaf_forest(100, 30))(np.zeros((2, 1))).tolist() == [0.0, 0.0]


def test_big_batches_are_walked_in_bounded_chunks(monkeypatch):
    """Memory per call is rows-chunk x trees, not rows x trees; answers are unchanged."""
    import mlagent.serving.compiled as compiled

    spec, X, model = _forest_spec()
    monkeypatch.setattr(compiled, "CHUNK_ELEMENTS", 7)  # 1 row per chunk for 5 trees
    fast = compiled.build(spec)
    assert compiled.same(fast(X), model.predict(X))
    assert compiled.work(spec) == 5 * spec["depth"]
