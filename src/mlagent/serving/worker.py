"""The serving worker: a separate, resource-limited process that loads one deployment's model.

Uploaded pickles run arbitrary code when loaded, so they are only ever loaded here, never in
the API process; the API process starts this with setrlimit limits and a scrubbed
environment (jobs/limits.py) and talks to it over stdin/stdout in JSON frames (frames.py).

Frame 1 from the parent is the init message; the worker answers `{"ok": true, ...model
info}` once the model is loaded (its explainer is built in a background thread), then serves predict requests until
stdin closes."""

from __future__ import annotations

import json
import os
import pickle
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any

import numpy as np

from .frames import encode, read_sync

if TYPE_CHECKING:
    from .compiled import Predict, Spec
    from .explain import Explainer

SPEC_BYTES = 64 * 1024 * 1024


def _source(init: dict[str, Any], key: str) -> Any:
    """A file the parent passed as an inherited descriptor (under bwrap the worker sees no
    data directory), else its path."""
    fd = init.get(f"{key}_fd")
    return os.fdopen(fd, "rb") if fd is not None else open(init[f"{key}_path"], "rb")


def _load(init: dict[str, Any]) -> Any:
    fmt, trusted = init["model_format"], init.get("trusted_types") or []
    with _source(init, "model") as f:
        if fmt == "skops":
            from skops.io import load

            return load(f, trusted=trusted)
        if fmt == "joblib":
            import joblib

            return joblib.load(f)
        return pickle.load(f)  # noqa: S301 - this process exists to contain exactly this


def _background(init: dict[str, Any], model: Any) -> tuple[np.ndarray | None, list[str] | None, str | None]:
    """The training data's input columns as a float matrix, their names, and any problem."""
    if not init.get("data_path"):
        return None, None, None
    import pandas as pd

    with _source(init, "data") as f:
        frame = pd.read_csv(f)
    inputs, targets = init.get("inputs") or [], init.get("targets") or []
    names = list(getattr(model, "feature_names_in_", []))
    n = getattr(model, "n_features_in_", None)
    if inputs:
        cols = inputs
    elif names:
        cols = names
    else:
        cols = [c for c in frame.columns if c not in targets]
        if n is not None and len(cols) == n + 1:
            cols = cols[:-1]  # the last column is the target
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        return None, None, f"training data lacks feature column(s) {missing}"
    if n is not None and len(cols) != n:
        return None, None, f"training data has {len(cols)} feature columns, the model expects {n}"
    try:
        return frame[cols].to_numpy(dtype=np.float64), [str(c) for c in cols], None
    except (ValueError, TypeError) as exc:
        return None, None, f"training data features are not numeric ({exc})"


class Served:
    def __init__(self, init: dict[str, Any]) -> None:
        from .compiled import compile_spec

        self.model = _load(init)
        if not hasattr(self.model, "predict"):
            raise TypeError(f"the uploaded object ({type(self.model).__name__}) has no predict method")
        self.background, data_names, self.data_problem = _background(init, self.model)
        names = list(getattr(self.model, "feature_names_in_", [])) or init.get("inputs") or data_names
        self.feature_names = [str(n) for n in names] if names else None
        self.n_features = getattr(self.model, "n_features_in_", None) or (
            len(self.feature_names) if self.feature_names else None)
        self.classes = [c.item() if hasattr(c, "item") else c for c in getattr(self.model, "classes_", [])] or None
        found = compile_spec(self.model, self.background, self._sk_predict)
        self.spec: Spec | None = found[0] if found else None
        self.fast: Predict | None = found[1] if found else None
        self.explainer: Explainer | None = None
        self.explain_error: str | None = "explanations are turned off for this deployment"
        self._building = threading.Thread(target=self._build_explainer, daemon=True)
        if init.get("explain", True):
            self._building.start()  # shap is slow to import: build while predictions are served

    def _build_explainer(self) -> None:
        try:
            from .explain import Explainer

            self.explainer = Explainer(self.model, self.background)
            self.explain_error = None
        except Exception as exc:  # noqa: BLE001 - predictions still work without explanations
            self.explain_error = self.data_problem or str(exc)

    def _frame(self, x: np.ndarray) -> Any:
        if getattr(self.model, "feature_names_in_", None) is not None:
            import pandas as pd

            return pd.DataFrame(x, columns=self.model.feature_names_in_)
        return x

    def _sk_predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(self._frame(x)))

    def info(self) -> dict[str, Any]:
        return {"ok": True, "model_type": f"{type(self.model).__module__}.{type(self.model).__name__}",
                "feature_names": self.feature_names, "n_features": self.n_features, "classes": self.classes,
                "compiled": self.fast is not None, "spec": self._spec_for_parent()}

    def _spec_for_parent(self) -> dict[str, Any] | None:
        """The compiled spec (numbers only) with probe rows and this model's own answers to them,
        so the API process can evaluate it in-process and first check it answers identically."""
        if self.spec is None:
            return None
        from .compiled import pack

        n = self.spec["n_features"]
        rng = np.random.default_rng(1)
        probes = [rng.normal(size=(64, n)) * 10]
        if self.background is not None and self.background.shape[1] == n:
            probes += [self.background[:500], *(self.background[i:i + 1] for i in range(min(16, len(self.background))))]
        probes.insert(1, probes[0][:1])
        probes = [np.ascontiguousarray(p) for p in probes]  # C order, as parsed request rows are
        size = sum(len(v["b64"]) for v in self.spec.values() if isinstance(v, dict))
        if size > SPEC_BYTES:
            return None  # too big to be worth copying: predictions stay in this worker
        spec = self.spec
        if spec["kind"] == "linear" and self.background is not None and self.background.shape[1] == n:
            spec = {**spec, "mean": pack(self.background.mean(0), "<f8")}  # for SHAP in the API process
        return {"spec": spec, "probes": [{"rows": pack(p, "<f8"), "expected": json.dumps(
            np.asarray(self._sk_predict(p)).tolist())} for p in probes]}

    def predict(self, request: dict[str, Any]) -> dict[str, Any]:
        x = np.asarray(request["rows"], dtype=np.float64)
        pred = self.fast(x) if self.fast is not None else self._sk_predict(x)
        out: dict[str, Any] = {"ok": True, "prediction": pred.tolist()}
        if request.get("explain"):
            if self._building.ident is not None:
                self._building.join()
            if self.explainer is None:
                return {"ok": False, "status": 409, "error": "Explanations are unavailable for this deployment: "
                        + (self.explain_error or "no explainer")}
            out["explanation"] = self.explainer.explain(self._frame(x) if self.explainer.kind != "kernel" else x,
                                                        np.asarray(pred))
        return out


class Generator:
    """A transformers causal LM (a `.tar.gz` of a save_pretrained directory, safetensors
    weights only; registry/checks.audit_archive), unpacked into this worker's private /tmp.
    Generation is greedy, so the same prompt gives the same text."""

    def __init__(self, init: dict[str, Any]) -> None:
        import tarfile
        import tempfile

        root = tempfile.mkdtemp(prefix="model-")
        with _source(init, "model") as f, tarfile.open(fileobj=f, mode="r:gz") as tar:
            tar.extractall(root, filter="data")  # plain files only, nothing outside root
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(1)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(root, local_files_only=True, use_safetensors=True,
                                                          trust_remote_code=False)
        self.model.eval()
        cfg = self.model.config
        self.context = int(getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", 0) or 1024)

    def info(self) -> dict[str, Any]:
        return {"ok": True, "model_type": f"transformers.{type(self.model).__name__}", "task": "text-generation",
                "feature_names": None, "n_features": None, "classes": None, "compiled": False, "spec": None}

    def predict(self, request: dict[str, Any]) -> dict[str, Any]:
        max_new = int(request.get("max_new_tokens") or 32)
        texts = []
        for prompt in request["prompts"]:
            ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"]
            keep = max(1, self.context - max_new)
            ids = ids[:, -keep:]  # the prompt's end, leaving room for the answer
            room = min(max_new, self.context - ids.shape[1])
            with self.torch.no_grad():
                out = self.model.generate(input_ids=ids, attention_mask=self.torch.ones_like(ids),
                                          max_new_tokens=room, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
            texts.append(self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
        return {"ok": True, "prediction": texts}


def main() -> None:
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to the log, not the frames
    init = read_sync(inp)
    if init is None:
        return
    try:
        served = Generator(init) if init.get("model_format") == "transformers" else Served(init)
    except Exception as exc:  # noqa: BLE001 - report why the model cannot be served
        traceback.print_exc()
        out.write(encode({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        return
    out.write(encode(served.info()))
    while (request := read_sync(inp)) is not None:
        try:
            reply = served.predict(request)
        except Exception as exc:  # noqa: BLE001 - a bad row must not kill the deployment
            reply = {"ok": False, "status": 422, "error": f"{type(exc).__name__}: {exc}"}
        reply["id"] = request.get("id")
        out.write(encode(reply))


if __name__ == "__main__":
    main()
