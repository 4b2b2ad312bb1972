"""A predict call's `data` becomes one float64 matrix (serving/inputs.py), and the predict
route still documents its caller headers though it resolves the caller itself."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi import FastAPI

from mlagent.api import deployments
from mlagent.errors import ServiceError
from mlagent.serving.inputs import parse_rows


def test_rows_become_one_c_ordered_float64_matrix():
    x, batch = parse_rows([[1.5, 2.0], [3.0, 4.25]], None, 2, 100)
    assert batch and x.dtype == np.float64 and x.flags.c_contiguous and x.tolist() == [[1.5, 2.0], [3.0, 4.25]]
    x, batch = parse_rows([1, 2.5], None, 2, 100)  # one row; integers are numbers
    assert not batch and x.tolist() == [[1.0, 2.5]]
    x, _ = parse_rows([{"b": 2.0, "a": 1}], ["a", "b"], 2, 100)  # by name, in the model's order
    assert x.tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize("data", [[[1.0, True]], [[1.0, float("nan")]], [[1.0, "2"]], [[1.0, 2.0], [1.0]],
                                  [[1.0, 2.0], [3.0, 4.0]] * 3])
def test_bad_rows_are_422_naming_data(data):
    with pytest.raises(ServiceError) as err:
        parse_rows(data, None, None if len(data) != 6 else 2, 5)
    assert err.value.status == 422 and err.value.param == "data"


def test_rows_of_unequal_length_are_refused_when_the_model_does_not_say_how_many():
    with pytest.raises(ServiceError, match="same number"):
        parse_rows([[1.0, 2.0], [1.0, 2.0, 3.0]], None, None, 100)


def test_predict_documents_its_caller_headers():
    app = FastAPI()
    app.include_router(deployments.router)
    op = app.openapi()["paths"]["/deployment/{deployment_id}/predict"]["post"]
    assert [p["name"] for p in op["parameters"]] == ["deployment_id", "authorization", "x-api-key"]
    assert "requestBody" in op
