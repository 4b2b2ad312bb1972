"""A scripted `trl sft` HF Job for the fake hub, for namespaces with a profile.

It reads the job's command as TRL would: the model (`--model_name_or_path`) and the dataset
repo (`--dataset_name`, with `train.jsonl` and, for `--dataset_test_split`, a validation
file) must exist and be readable with the job's HF_TOKEN secret, or the job ends ERROR as
the real one would. Otherwise it stays SCHEDULING for `scheduling` inspects, prints one
trainer log dict per RUNNING inspect (loss falling with the number of training rows), then
an eval dict and the train summary, pushes `--hub_model_id` and completes.

Profile keys: scheduling (inspects, default 1), steps (RUNNING inspects, default 3),
error (a message: the job ends ERROR after its steps), no_push (complete without pushing),
gate ("SCHEDULING" / "RUNNING": the job does not leave that stage while it is set). The
job holds the profile itself, so a test moves it on by changing `gate`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .hub import FakeHub


def _arg(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command and command.index(name) + 1 < len(command) else None


def start(hub: FakeHub, job: dict[str, Any], profile: dict[str, Any]) -> None:
    job["profile"] = profile
    job["stage"] = "SCHEDULING" if profile.get("scheduling", 1) > 0 else "RUNNING"
    job["scheduled"] = 0
    job["logs"] = []


def _fail(job: dict[str, Any], message: str, line: str, now) -> None:
    job["stage"], job["message"] = "ERROR", message
    job["logs"].append((line, now()))


def step(hub: FakeHub, job: dict[str, Any], now) -> None:
    profile, command = job["profile"], job["spec"].get("command") or []
    if job["stage"] == "SCHEDULING":
        job["scheduled"] += 1
        if job["scheduled"] < profile.get("scheduling", 1) or profile.get("gate") == "SCHEDULING":
            return
        job["stage"] = "RUNNING"
        job["logs"].append(("Job started", now()))
        token = (job["spec"].get("secrets") or {}).get("HF_TOKEN") or ""
        job["token_owner"] = hub.tokens.get(token, {}).get("name")
        dataset = hub.repos.get(("dataset", _arg(command, "--dataset_name") or ""))
        model = hub.repos.get(("model", _arg(command, "--model_name_or_path") or ""))
        if command[:2] != ["uv", "run"] or command[4:6] != ["trl", "sft"]:
            return _fail(job, "not a trl sft command", f"error: unexpected command {command[:6]}", now)
        if model is None or (model["private"] and model["owner"] != job["token_owner"]):
            return _fail(job, "model not found", "OSError: model is not a valid model identifier", now)
        if dataset is None or (dataset["private"] and dataset["owner"] != job["token_owner"]):
            return _fail(job, "dataset not found", "DatasetNotFoundError: Dataset doesn't exist on the Hub", now)
        if "train.jsonl" not in dataset["files"]:
            return _fail(job, "no train split", "ValueError: no train split", now)
        job["rows"] = dataset["files"]["train.jsonl"].count(b"\n")
        job["eval"] = "--dataset_test_split" in command and "validation.jsonl" in dataset["files"]
        return
    if job["stage"] != "RUNNING":
        return
    if profile.get("gate") == "RUNNING" and job["inspects"] + 1 >= profile.get("steps", 3):
        return
    job["inspects"] += 1
    n, epochs = job["inspects"], float(_arg(command, "--num_train_epochs") or 1)
    loss = round(2.5 / (1 + 0.3 * n) + 1.0 / max(1, job["rows"]), 4)
    job["logs"].append((f"{{'loss': {loss}, 'grad_norm': 1.5, 'learning_rate': "
                        f"{_arg(command, '--learning_rate')}, 'mean_token_accuracy': {round(0.5 + 0.05 * n, 4)}, "
                        f"'epoch': {round(epochs * n / profile.get('steps', 3), 2)}}}", now()))
    if n < profile.get("steps", 3):
        return
    if profile.get("error"):
        return _fail(job, profile["error"], f"RuntimeError: {profile['error']}", now)
    if job["eval"]:
        job["logs"].append((f"{{'eval_loss': {round(loss * 1.1, 4)}, 'eval_mean_token_accuracy': 0.71, "
                            f"'eval_runtime': 1.2, 'epoch': {epochs}}}", now()))
    job["logs"].append((f"{{'train_runtime': 30.5, 'train_samples_per_second': 3.2, 'train_loss': {loss}, "
                        f"'epoch': {epochs}}}", now()))
    repo_id = _arg(command, "--hub_model_id")
    if repo_id and not profile.get("no_push"):
        owner = job["token_owner"]
        if owner is None or repo_id.split("/")[0] != owner:
            return _fail(job, "push failed", "huggingface_hub.errors.HfHubHTTPError: 401 Unauthorized", now)
        private = _arg(command, "--hub_private_repo") == "true"
        repo = hub.repos.get(("model", repo_id)) or hub.create_repo("model", repo_id, owner, private)
        repo["files"]["model.safetensors"] = b"weights"
        job["logs"].append((f"Pushed model to {hub.url}/{repo_id}", now()))
    job["stage"] = "COMPLETED"
