"""The hf backend's recipe: the `trl sft` command an HF Job runs, the repo names it uses,
and the metrics read back from its logs. Pure functions, so the tests can pin them.

The job runs TRL's own CLI (`trl sft`) from the uv image — `uv run --with trl` installs
TRL (and torch with CUDA from PyPI) in the job; nothing of mlagent runs on the Hub. The
training (and validation) file sits in a private dataset repo as `train.jsonl`
(`validation.jsonl`), which `datasets` maps to the `train` (`validation`) split.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

UV_IMAGE = "ghcr.io/astral-sh/uv:python3.12-bookworm"
TRL_REQUIREMENT = "trl"
# Hyperparameters for an hf job when compute_config leaves them unset: the local backend's
# defaults (20 epochs at lr 0.01 for a tiny byte model) would wreck a pretrained LLM.
HF_DEFAULTS: dict[str, Any] = {"epochs": 3, "learning_rate": 2e-5, "batch_size": 8, "timeout_seconds": 3600}
LOGGING_STEPS = 5
_DICT = re.compile(r"\{[^{}]*\}")
_REPO_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def repo_name(text: str, limit: int = 96) -> str:
    """A valid Hub repo name from free text (letters, digits, `._-`; no leading/trailing `.-`)."""
    name = _REPO_CHARS.sub("-", text).strip(".-")
    return name[:limit].strip(".-") or "model"


def model_repo(namespace: str, base_model: str, suffix: str | None, job_id: str) -> str:
    base = base_model.rsplit("/", 1)[-1]
    short = job_id.removeprefix("ft-")[:12]
    label = suffix or "ft"
    return f"{namespace}/{repo_name(f'{base}-{label}', 80)}-{short}"


def dataset_repo(namespace: str, job_id: str) -> str:
    return f"{namespace}/mlagent-{repo_name(job_id)}"


def sft_command(*, model_id: str, dataset: str, hub_model_id: str, epochs: int, learning_rate: float,
                batch_size: int, has_validation: bool, trl: str = TRL_REQUIREMENT) -> list[str]:
    """`uv run --with trl trl sft …`: train on the dataset repo, push to `hub_model_id` (private)."""
    args = ["uv", "run", "--with", trl, "trl", "sft",
            "--model_name_or_path", model_id, "--dataset_name", dataset, "--dataset_train_split", "train",
            "--output_dir", "/tmp/mlagent-sft", "--num_train_epochs", str(epochs),
            "--learning_rate", repr(float(learning_rate)), "--per_device_train_batch_size", str(batch_size),
            "--logging_steps", str(LOGGING_STEPS), "--disable_tqdm", "true", "--report_to", "none",
            "--push_to_hub", "true", "--hub_model_id", hub_model_id, "--hub_private_repo", "true"]
    if has_validation:
        args += ["--dataset_test_split", "validation", "--eval_strategy", "epoch",
                 "--per_device_eval_batch_size", str(batch_size)]
    return args


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):  # newer transformers print formatted strings: {'loss': '1.234'}
        try:
            return float(value)
        except ValueError:
            return None
    return None


def log_dicts(lines: list[str]) -> list[dict[str, float]]:
    """The trainer's log dicts (`{'loss': 1.23, 'epoch': 0.5}`, Python or JSON), oldest first."""
    found = []
    for line in lines:
        for text in _DICT.findall(line):
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                try:
                    value = json.loads(text)
                except ValueError:
                    continue
            if not isinstance(value, dict):
                continue
            numbers = {str(k): n for k, v in value.items() if (n := _number(v)) is not None}
            if numbers and any(k.endswith("loss") or k.endswith("accuracy") for k in numbers):
                found.append(numbers)
    return found


def metrics_from_logs(lines: list[str], previous: dict[str, float] | None = None) -> dict[str, float]:
    """Fold the log dicts into the job's metrics: the latest value of each key, plus
    `loss` (the last logged training loss, else the run's `train_loss`), `eval_loss`,
    `accuracy` (eval token accuracy, where there is an eval) and `train_accuracy`
    (training token accuracy)."""
    merged: dict[str, float] = dict(previous or {})
    for d in log_dicts(lines):
        merged.update({k: v for k, v in d.items() if k not in ("total_flos",)})
        if "train_loss" in d and "loss" not in merged:  # no step was logged: the run's mean loss
            merged["loss"] = d["train_loss"]
    for source, target in (("eval_mean_token_accuracy", "accuracy"), ("eval_accuracy", "accuracy"),
                           ("mean_token_accuracy", "train_accuracy")):
        if source in merged:
            merged[target] = merged[source]
    return merged
