"""`/api/config/model`: the model ids this server accepts, and the default."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from .deps import Svc

router = APIRouter(tags=["config"])


class ModelOption(BaseModel):
    id: str
    default: bool


class ModelConfig(BaseModel):
    default: str
    models: list[ModelOption]


@router.get("/api/config/model", response_model=ModelConfig)
async def model_config(svc: Svc) -> ModelConfig:
    s = svc.settings
    return ModelConfig(default=s.default_model_id, models=[ModelOption(id=m, default=m == s.default_model_id)
                                                           for m in s.model_ids])
