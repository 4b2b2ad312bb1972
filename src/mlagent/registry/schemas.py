"""The registry's typed boundary: the seed's MLModelCreate / MLModel / FileSchema shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..jobs.placement import Placement

FileKind = Literal["model", "data", "code", "env"]


class _Open(BaseModel):
    """Seed sub-objects: the documented fields are typed, extra ones are kept."""

    model_config = ConfigDict(extra="allow")


class Hyperparameter(_Open):
    parameter: str
    value: Any = None


class Performance(_Open):
    metric: str
    order: int | None = Field(None, strict=True)
    threshold: float | None = Field(None, strict=True)


class Resource(_Open):
    resource_name: str
    value: float | None = Field(None, strict=True)
    deploy: str | None = None


class Feature(_Open):
    """`kind`: 0 = input feature, 1 = target (see docs/mlconnector.md)."""

    feature_name: str
    type: str | None = None
    kind: int = Field(0, strict=True)
    units: Any = None


class InferenceSpec(_Open):
    type: str
    value: Any = None


class DriftSpec(BaseModel):
    """`is_true` 1 turns drift detection on; `method`: 0 = KS, 1 = PSI, 2 = chi-square."""

    is_true: int = Field(0, ge=0, le=1, strict=True)
    method: int = Field(0, ge=0, le=2, strict=True)


class MLModelFields(BaseModel):
    hyperparameter: list[Hyperparameter] = []
    modelperformance: list[Performance] = []
    trainingresource: list[Resource] = []
    runresource: list[Resource] = []
    featurelist: list[Feature] = []
    inference: list[InferenceSpec] = []
    modeltags: list[str] = []
    drift_detection: list[DriftSpec] = []


class MLModelCreate(MLModelFields):
    model_config = ConfigDict(extra="forbid")
    modelname: str = Field(min_length=1, max_length=300)
    modelkind: str = Field(min_length=1, max_length=100)

    @field_validator("modeltags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        if any(not t.strip() or len(t) > 100 for t in v):
            raise ValueError("tags must be non-empty strings of at most 100 characters")
        return v


class MLModelUpdate(BaseModel):
    """PATCH body: any subset of MLModelCreate's fields."""

    model_config = ConfigDict(extra="forbid")
    modelname: str | None = Field(None, min_length=1, max_length=300)
    modelkind: str | None = Field(None, min_length=1, max_length=100)
    hyperparameter: list[Hyperparameter] | None = None
    modelperformance: list[Performance] | None = None
    trainingresource: list[Resource] | None = None
    runresource: list[Resource] | None = None
    featurelist: list[Feature] | None = None
    inference: list[InferenceSpec] | None = None
    modeltags: list[str] | None = None
    drift_detection: list[DriftSpec] | None = None


class FileSchema(BaseModel):
    id: str
    modelid: str
    filename: str
    file_kind: FileKind
    size: int
    sha256: str
    version: int
    source: Literal["upload", "training"]
    created_at: float


class MLModel(MLModelFields):
    id: str
    modelid: str
    modelname: str
    modelkind: str
    files: list[FileSchema] = []
    created_at: float
    updated_at: float

    @property
    def drift(self) -> DriftSpec | None:
        on = [d for d in self.drift_detection if d.is_true]
        return on[0] if on else None

    def feature_names(self) -> tuple[list[str], list[str]]:
        """(input feature names, target names) from featurelist."""
        inputs = [f.feature_name for f in self.featurelist if f.kind != 1]
        targets = [f.feature_name for f in self.featurelist if f.kind == 1]
        return inputs, targets


class MLTrainCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    modelid: str = Field(min_length=1)
    placement: Placement = Field(default_factory=Placement)


class MLTrain(BaseModel):
    id: str
    modelid: str
    placement: Placement
    backend: str
    job_id: str | None
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    reason: str | None
    metrics: dict[str, Any]
    result_file: FileSchema | None
    created_at: float
    updated_at: float
