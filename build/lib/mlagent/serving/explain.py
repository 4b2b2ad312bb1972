"""SHAP explanations, built once per deployment inside the serving worker.

Tree models get `TreeExplainer` (exact, no background needed); linear models get
`LinearExplainer` with the uploaded training data as background; anything else gets
`KernelExplainer` over a k-means summary of the training data. For a classifier the row's
predicted class is explained: values are contributions to that class's output
(probability for trees and the kernel explainer, log-odds / decision value for linear
models), so `base_value + sum(feature_importance) == output`."""

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
            self._output = (lambda x: model.predict_proba(x)) if self.classes else (lambda x: model.predict(x))
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
        else:
            raw = self._explainer.shap_values(x)
        values = np.asarray(raw, dtype=np.float64)
        if isinstance(raw, list):  # older shap: one array per class
            values = np.stack([np.asarray(r) for r in raw], axis=-1)
        base = np.atleast_1d(np.asarray(self._explainer.expected_value, dtype=np.float64))
        outputs = np.asarray(self._output(x), dtype=np.float64)
        if values.ndim == 2:
            values = values[:, :, None]
        if outputs.ndim == 1:
            outputs = outputs[:, None]
        out = []
        for i in range(x.shape[0]):
            sign, k = 1.0, 0
            if self.classes is not None:
                c = self.classes.index(predicted[i])
                if values.shape[2] > 1:
                    k = c
                elif len(self.classes) == 2 and c == 0:  # one binary output, explained for class 1
                    sign = -1.0
            item = {"feature_importance": (sign * values[i, :, k]).tolist(),
                    "base_value": float(sign * base[min(k, len(base) - 1)]),
                    "output": float(sign * outputs[i, min(k, outputs.shape[1] - 1)]),
                    "method": "shap", "explainer": self.kind}
            if self.classes is not None:
                item["explained_class"] = _plain(predicted[i])
            out.append(item)
        return out


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
