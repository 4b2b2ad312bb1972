"""The values the stores return and take: frozen, slotted dataclasses, never ORM rows.

A record is a copy of one row at the time it was read. Nothing outside `store/` holds an
ORM object, so nothing can lazy-load or flush by accident, and a record can cross a task,
a thread or a test without a database session behind it. The field names are the column
names (`TurnRecord(**row._mapping)` builds one from a Core row at no extra round trip).
`frozen` is shallow: the JSON fields (`request`, `snapshot`, `messages`, `pending`) are
plain dicts and lists that callers must treat as read-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAUSED = "incomplete"
ACTIVE = ("queued", "in_progress")


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One response (a turn of a session); `snapshot` is its log's projection."""

    id: str
    session_id: str
    account: str
    status: str
    request: dict[str, Any]
    snapshot: dict[str, Any]
    last_seq: int
    cancel_requested: bool
    lease_owner: str | None
    lease_expires_at: float | None
    idempotency_key: str | None
    created_at: float
    updated_at: float
    agent: str | None = None  # the agent addressed when not the session's own (operator inject)


def paused_on_approval(turn: TurnRecord) -> bool:
    """Paused on an approval: its session stays busy until the approval is decided."""
    details = (turn.snapshot or {}).get("incomplete_details") or {}
    return turn.status == PAUSED and details.get("reason") == "approval_required"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A conversation: the LLM history and budget its chained responses share."""

    id: str
    account: str
    agent: str
    model: str
    max_cost_usd: float
    spent_usd: float
    messages: list[Any]
    pending: dict[str, Any] | None
    closed: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """Someone who has called the server: a Hugging Face user or an API-key account."""

    name: str
    kind: str
    created_at: float
    last_seen_at: float


# -- the model registry (store/registry.py; tables in registry_tables.py) --------------------


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """A registered model: the seed's MLModelCreate fields in `spec`, owned by `account`."""

    id: str
    account: str
    modelname: str
    modelkind: str
    spec: dict[str, Any]
    tags: list[Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class ModelFileRecord:
    """An uploaded (or trained) artifact of a model; the bytes are content-addressed by `sha256`."""

    id: str
    model_id: str
    kind: str
    filename: str
    size: int
    sha256: str
    version: int
    source: str
    created_at: float


@dataclass(frozen=True, slots=True)
class TrainingRecord:
    """One run of a model's training code on its data, as a job on a job backend."""

    id: str
    account: str
    model_id: str
    placement: dict[str, Any]
    backend: str
    job_id: str | None
    status: str
    reason: str | None
    metrics: dict[str, Any]
    result_file_id: str | None
    created_at: float
    updated_at: float
    lease_owner: str | None
    lease_expires_at: float | None


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """A deployment of a model file; `pk` is the store's key, `deployment_id` the account's name."""

    pk: int
    account: str
    deployment_id: str
    model_id: str
    file_id: str | None
    ownerid: str
    placement: dict[str, Any]
    inference_data: int
    status: str
    reason: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """One inference operation of a deployment: its inputs (`data`) and `result` as stored text."""

    id: int
    account: str
    ownerid: str
    deployment_id: str
    model_id: str
    data: str
    result: str
    created_at: float


# -- fine-tuning (store/finetune.py) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UploadedFileRecord:
    """A file uploaded for fine-tuning; `path` is its key in the blob store."""

    id: str
    account: str
    filename: str
    purpose: str
    bytes: int
    sha256: str
    path: str
    created_at: float


@dataclass(frozen=True, slots=True)
class FineTuningJobRecord:
    """A fine-tuning job; `hub` holds an hf job's references (never a token)."""

    id: str
    account: str
    model_id: str
    status: str
    training_file: str
    validation_file: str | None
    suffix: str | None
    compute_config: dict[str, Any]
    backend: str
    fine_tuned_model: str | None
    output_dir: str | None
    metrics: dict[str, Any] | None
    error: str | None
    created_at: float
    updated_at: float
    hub: dict[str, Any] | None = None
    estimated_cost_usd: float | None = None
    cost_usd: float | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
