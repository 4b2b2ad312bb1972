"""The local fine-tuning recipe, run as `python -m mlagent.finetune.train SPEC.json`.

It fine-tunes a tiny byte-level language model (an MLP over the previous `context`
bytes) built from a config, with numpy only: no Hub download, no torch. The base
weights are either the config's deterministic initialisation (`seed`) or the weights
of an earlier fine-tuned model, so jobs can be chained. Progress goes to stdout as JSON
lines (`{"event": "metrics", ...}`); the result is `model.npz` + `config.json` in the
output directory. Training text comes from JSONL (`text`, `prompt`+`completion`, or
chat `messages`) or plain text.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BASE_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny-byte-lm": {"context": 8, "embed": 16, "hidden": 64, "vocab": 256, "seed": 0},
}


def read_text(path: Path) -> str:
    raw = path.read_text(encoding="utf-8", errors="replace")
    texts: list[str] = []
    for line in raw.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except ValueError:
            return raw  # plain text file
        if not isinstance(row, dict):
            return raw
        if "messages" in row:
            texts.append("\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in row["messages"]))
        elif "prompt" in row or "completion" in row:
            texts.append(f"{row.get('prompt', '')}{row.get('completion', '')}")
        else:
            texts.append(str(row.get("text", "")))
    return "\n".join(t for t in texts if t.strip())


def windows(text: str, context: int) -> tuple[np.ndarray, np.ndarray]:
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
    padded = np.concatenate([np.zeros(context, dtype=np.int64), data])
    idx = np.arange(len(data))[:, None] + np.arange(context)[None, :]
    return padded[idx], data


def init_params(cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(cfg["seed"])
    v, e, h, c = cfg["vocab"], cfg["embed"], cfg["hidden"], cfg["context"]
    return {
        "emb": rng.normal(0, 0.1, (v, e)),
        "w1": rng.normal(0, 1 / np.sqrt(c * e), (c * e, h)), "b1": np.zeros(h),
        "w2": rng.normal(0, 1 / np.sqrt(h), (h, v)), "b2": np.zeros(v),
    }


def forward(p: dict[str, np.ndarray], x: np.ndarray):
    flat = p["emb"][x].reshape(len(x), -1)
    hid = np.tanh(flat @ p["w1"] + p["b1"])
    logits = hid @ p["w2"] + p["b2"]
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return flat, hid, probs


def evaluate(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    _, _, probs = forward(p, x)
    loss = float(-np.log(probs[np.arange(len(y)), y] + 1e-12).mean())
    return loss, float((probs.argmax(axis=1) == y).mean())


def step(p, m, v, t, x, y, lr, cfg):
    flat, hid, probs = forward(p, x)
    n = len(y)
    loss = float(-np.log(probs[np.arange(n), y] + 1e-12).mean())
    d = probs
    d[np.arange(n), y] -= 1
    d /= n
    grads = {"w2": hid.T @ d, "b2": d.sum(0)}
    dh = (d @ p["w2"].T) * (1 - hid ** 2)
    grads["w1"], grads["b1"] = flat.T @ dh, dh.sum(0)
    dflat = (dh @ p["w1"].T).reshape(n, cfg["context"], cfg["embed"])
    demb = np.zeros_like(p["emb"])
    np.add.at(demb, x, dflat)
    grads["emb"] = demb
    for k, g in grads.items():  # Adam
        m[k] = 0.9 * m[k] + 0.1 * g
        v[k] = 0.999 * v[k] + 0.001 * g * g
        mh, vh = m[k] / (1 - 0.9 ** t), v[k] / (1 - 0.999 ** t)
        p[k] -= lr * mh / (np.sqrt(vh) + 1e-8)
    return loss


def emit(**payload: Any) -> None:
    print(json.dumps(payload), flush=True)


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    if spec.get("base_weights"):
        base = Path(spec["base_weights"])
        cfg = json.loads((base / "config.json").read_text())
        with np.load(base / "model.npz") as z:
            params = {k: z[k].astype(np.float64) for k in z.files}
    else:
        cfg = dict(BASE_CONFIGS[spec["base_config"]])
        params = init_params(cfg)
    text = read_text(Path(spec["training_file"]))
    x, y = windows(text, cfg["context"])
    if not text.strip():
        emit(event="error", message="the training file holds no text")
        return 2
    val = None
    if spec.get("validation_file"):
        vx, vy = windows(read_text(Path(spec["validation_file"])), cfg["context"])
        val = (vx, vy) if len(vy) else None
    epochs, lr, batch = int(spec.get("epochs", 3)), float(spec.get("learning_rate", 0.01)), int(spec.get("batch_size", 64))
    m = {k: np.zeros_like(a) for k, a in params.items()}
    v = {k: np.zeros_like(a) for k, a in params.items()}
    rng = np.random.default_rng(cfg["seed"] + 1)
    t = 0
    started = time.time()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(y))
        losses = []
        for i in range(0, len(y), batch):
            t += 1
            sel = order[i:i + batch]
            losses.append(step(params, m, v, t, x[sel], y[sel], lr, cfg))
        metrics: dict[str, float] = {"epoch": float(epoch), "step": float(t), "loss": float(np.mean(losses))}
        if val is not None:
            metrics["val_loss"], metrics["accuracy"] = evaluate(params, *val)
        else:
            metrics["train_accuracy"] = evaluate(params, x, y)[1]
        emit(event="metrics", **metrics)
    np.savez(out / "model.npz", **params)
    (out / "config.json").write_text(json.dumps(cfg))
    emit(event="done", seconds=round(time.time() - started, 3), examples=int(len(y)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
