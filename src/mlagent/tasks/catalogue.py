"""The models the agent can use, in seed 001's `ModelDetail` shape, from the same
configuration as `/api/config/model` (`MLAGENT_MODELS`, `MLAGENT_DEFAULT_MODEL`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from ..config import Settings
from ..errors import not_found


class ModelDetail(BaseModel):
    id: str
    name: str
    version: str
    description: str
    parameters: dict[str, Any]
    created_at: str
    updated_at: str


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ModelCatalogue:
    """Configured at start-up: `created_at`/`updated_at` are when this configuration loaded."""

    def __init__(self, settings: Settings, version: str = "1.0.0") -> None:
        self.settings = settings
        self.version = version
        self.loaded_at = iso(time.time())

    def _detail(self, model_id: str) -> ModelDetail:
        repo, _, provider = model_id.partition(":")
        name = repo.rsplit("/", 1)[-1]
        default = model_id == self.settings.default_model_id
        where = f"provider '{provider}' via {self.settings.inference_base_url}" if provider else \
            self.settings.inference_base_url
        return ModelDetail(
            id=model_id, name=name, version=self.version,
            description=f"Chat model for the agent's reasoning, served by {where}"
                        + (" (the default)." if default else "."),
            parameters={"provider": provider or None, "default": default,
                        "max_agent_steps": self.settings.max_agent_steps,
                        "timeout_seconds": self.settings.llm_timeout_seconds},
            created_at=self.loaded_at, updated_at=self.loaded_at,
        )

    def list(self) -> list[ModelDetail]:
        return [self._detail(m) for m in self.settings.model_ids]

    def get(self, model_id: str) -> ModelDetail:
        if model_id not in self.settings.model_ids:
            raise not_found("model", model_id, "model_id")
        return self._detail(model_id)
