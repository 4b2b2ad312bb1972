"""SHAP explanations, built once per deployment inside the serving worker.

Tree models get `TreeExplainer` (exact, path-dependent, no background needed; a compiled
forest is explained in the API process instead, specshap.py); linear models get
`LinearExplainer` with the uploaded training data as background (a compiled one is
explained in the API process, specshap.py); anything else gets
`KernelExplainer` over a k-means summary of the training data. For a classifier the row's
predicted class is explained: values are contributions to that class's output
(probability for trees and the kernel explainer, log-odds / decision value for linear
models), so `base_value + sum(feature_importance) == output`. A tree model's output is the
ensemble's own, as SHAP evaluates it (a forest's class probability): scikit-learn's
`predict_proba` would cost a forest ~10 ms of thread-pool overhead per call."""

from __future__ import annotations

from typing import Any

import numpy as np

TREE_MODULES = ("sklearn.ensemble._forest", "sklearn.tree", "sklearn.ensemble._gb", "xgboost", "lightgbm",
                "sklearn.ensemble._hist_gradient_boosting")


class Explainer:
    def __init__(self, model: Any, background: np.ndarray | None) -> None:
        import shap

        self.model = model
        self.classes = list(getattr(model, "classes_", [])) or None
        module = type(model).__module__
        from sklearn.linear_model._base import LinearModel

        if module.startswith(TREE_MODULES):
            self.kind = "tree"
            self._explainer = shap.TreeExplainer(model)
            self._output = self._explainer.model.predict
        elif isinstance(model, LinearModel) or hasattr(model, "coef_") and hasattr(model, "intercept_"):
            if background is None:
                raise ValueError("a linear model's explanation needs its training data: upload a 'data' file")
            self.kind = "linear"
            masker = shap.maskers.Independent(background, max_samples=len(background))  # the whole data
            self._explainer = shap.LinearExplainer(model, masker)
            self._output = (lambda x: model.decision_function(x)) if self.classes else (lambda x: model.predict(x))
        else:
            if background is None:
                raise ValueError("this model's explanation needs its training data: upload a 'data' file")
            self.kind = "kernel"
            fn = model.predict_proba if self.classes and hasattr(model, "predict_proba") else model.predict
            summary = shap.kmeans(background, min(10, len(background))) if len(background) > 10 else background
            self._explainer = shap.KernelExplainer(fn, summary)
            self._output = fn

    def explain(self, x: np.ndarray, predicted: np.ndarray) -> list[dict[str, Any]]:
        if self.kind == "kernel":
            raw = self._explainer.shap_values(x, nsamples=min(2048, 2 * x.shape[1] + 512), silent=True)
        elif self.kind == "tree":
            raw = self._explainer.shap_values(x, check_additivity=False)  # the check re-predicts every row
        else:
            raw = self._explainer.shap_values(x)
        if isinstance(raw, list):  # older shap: one array per class
            raw = np.stack([np.asarray(r) for r in raw], axis=-1)
        return describe(self.kind, self.classes, raw, self._explainer.expected_value,
                        self._output(np.asarray(x) if self.kind == "tree" else x), predicted)


def describe(kind: str, classes: list[Any] | None, values: Any, base: Any, outputs: Any,
             predicted: np.ndarray) -> list[dict[str, Any]]:
    """Per row: the SHAP values, base value and output of the predicted class's output."""
    values = np.asarray(values, dtype=np.float64)
    base = np.atleast_1d(np.asarray(base, dtype=np.float64))
    outputs = np.asarray(outputs, dtype=np.float64)
    if values.ndim == 2:
        values = values[:, :, None]
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    out = []
    for i in range(values.shape[0]):
        sign, k = 1.0, 0
        if classes is not None:
            c = classes.index(predicted[i])
            if values.shape[2] > 1:
                k = c
            elif len(classes) == 2 and c == 0:  # one binary output, explained for class 1
                sign = -1.0
        item = {"feature_importance": (sign * values[i, :, k]).tolist(),
                "base_value": float(sign * base[min(k, len(base) - 1)]),
                "output": float(sign * outputs[i, min(k, outputs.shape[1] - 1)]),
                "method": "shap", "explainer": kind}
        if classes is not None:
            item["explained_class"] = _plain(predicted[i])
        out.append(item)
    return out


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
