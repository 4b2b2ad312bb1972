"""Typed requests and answers of the fine-tuning surfaces (REST `/ml-api/`, gRPC MLService)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

STATUSES = ("created", "queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")


class ComputeConfig(BaseModel):
    """Where and how long a job trains. `instance_type` `cpu`/`local` runs on this server's
    CPU (the local backend); an HF Jobs flavor (`a10g-small`, `t4-small`, …) runs a TRL SFT
    job on Hugging Face Jobs (the hf backend, whose defaults for unset fields differ:
    finetune/trl_job.py HF_DEFAULTS). One instance; the hyperparameters ride along."""

    model_config = ConfigDict(extra="forbid")

    instance_type: str = "cpu"
    instance_count: int = Field(1, ge=1, le=1, strict=True)
    epochs: int = Field(20, ge=1, le=200, strict=True)
    learning_rate: float = Field(0.01, gt=0, le=1, strict=True)
    batch_size: int = Field(64, ge=1, le=4096, strict=True)
    timeout_seconds: float = Field(600, ge=1, le=86_400, strict=True)


class CreateFineTuningJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(min_length=1, max_length=300)
    training_file: str = Field(min_length=1, max_length=64)
    validation_file: str | None = Field(None, max_length=64)
    suffix: str | None = Field(None, max_length=40, pattern=r"^[A-Za-z0-9_.-]*$")
    compute_config: ComputeConfig = Field(default_factory=ComputeConfig)


class HubJobOut(BaseModel):
    """Where an hf-backend job lives on the Hub (never a token)."""

    namespace: str
    flavor: str
    dataset_repo: str
    model_repo: str
    job_id: str | None = None
    url: str | None = None


class FineTuningJobOut(BaseModel):
    id: str
    model_id: str
    status: str
    created_at: str
    updated_at: str
    fine_tuned_model: str | None = None
    training_file: str
    validation_file: str | None = None
    metrics: dict[str, float] | None = None
    error: str | None = None
    suffix: str | None = None
    compute_config: dict[str, Any] = Field(default_factory=dict)
    backend: str = "local"
    hub: HubJobOut | None = None
    estimated_cost_usd: float | None = None
    cost_usd: float | None = None


class CancelResult(BaseModel):
    status: str = "success"
    message: str


class FileOut(BaseModel):
    id: str
    object: str = "file"
    filename: str
    purpose: str
    bytes: int
    sha256: str
    created_at: str


class BaseModelOut(BaseModel):
    """A model that fine-tuning jobs can start from."""

    id: str
    kind: str
    config: dict[str, Any]


class FineTuningEvent(BaseModel):
    """One event of a job (OpenAI's `fine_tuning.job.event`): `type` "message" or "metrics"."""

    object: str = "fine_tuning.job.event"
    id: str
    created_at: float
    level: str = "info"
    type: str = "message"
    message: str
    data: dict[str, Any] = {}
