"""The deployment surface's typed shapes (seed 003: MLDeploymentCreate, MLDeploymentOpos...)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..jobs.placement import Placement


class MLDeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    modelid: str = Field(min_length=1)
    ownerid: str = Field("", max_length=200)
    placement: Placement = Field(default_factory=Placement)
    deployment_id: str = Field("", max_length=200, pattern=r"^[A-Za-z0-9._-]*$")
    inference_data: int = Field(1, ge=0, le=1, strict=True)


class ModelInfo(BaseModel):
    model_type: str
    feature_names: list[str] | None = None
    n_features: int | None = None
    classes: list[Any] | None = None
    compiled: bool = False
    in_process: bool = False
    isolation: str = "none"


class MLDeploymentReturn(BaseModel):
    deployment_id: str
    modelid: str
    model_file_id: str | None
    ownerid: str
    placement: Placement
    inference_data: int
    status: str
    reason: str | None = None
    endpoint: str
    model: ModelInfo | None = None
    created_at: float
    updated_at: float


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: Any = Field(description="one row (list of numbers or {feature: value}) or a list of rows")
    explain: bool = Field(False, strict=True)


class PredictResponse(BaseModel):
    prediction: list[Any]
    explanation: dict[str, Any] | None = None


class MLDeploymentOposCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ownerid: str = Field(min_length=1, max_length=200)
    deploymentid: str = Field(min_length=1, max_length=200)
    modelid: str = Field(min_length=1, max_length=64)
    data: str = Field(max_length=10_000_000)
    result: str = Field(max_length=10_000_000)


class MLDeploymentOposReturn(BaseModel):
    operationid: int
    ownerid: str
    deploymentid: str
    modelid: str
    data: str
    result: str
    created_at: float


class FeatureDrift(BaseModel):
    feature: str
    statistic: float
    p_value: float | None
    drift: bool
    # Both distributions over the training data's deciles, so a client can draw one
    # against the other: bin i holds values below edges[i] (and >= edges[i-1]).
    edges: list[float] = []
    reference_share: list[float] = []
    current_share: list[float] = []


class DriftReport(BaseModel):
    deployment_id: str
    modelid: str
    method: int
    method_name: str
    threshold: str
    n_reference: int
    n_current: int
    skipped_operations: int
    drift_detected: bool
    features: list[FeatureDrift]
