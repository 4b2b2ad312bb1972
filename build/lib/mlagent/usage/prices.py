"""The price table: per-model token prices, HF Jobs flavor hourly prices, sandbox rate.

Loaded once at start-up from the built-in `prices.yaml`, overlaid key by key with the
operator's file (`MLAGENT_PRICE_TABLE`, YAML or JSON). Pure: no I/O after loading.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

BUILTIN = Path(__file__).with_name("prices.yaml")


class ModelPrice(BaseModel):
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class SandboxPrice(BaseModel):
    hourly_usd: float = Field(0.0, ge=0)


class EstimateSettings(BaseModel):
    output_tokens: int = Field(1024, ge=0)
    job_timeout_seconds: float = Field(1800, gt=0)


class PriceTable(BaseModel):
    models: dict[str, ModelPrice] = Field(default_factory=dict)
    jobs: dict[str, float] = Field(default_factory=dict)
    sandbox: SandboxPrice = Field(default_factory=SandboxPrice)
    estimate: EstimateSettings = Field(default_factory=EstimateSettings)

    def model_price(self, model: str) -> ModelPrice | None:
        """The price of `model`; `org/name:provider` falls back to `org/name`."""
        price = self.models.get(model)
        if price is None and ":" in model:
            price = self.models.get(model.rsplit(":", 1)[0])
        return price

    def job_hourly(self, flavor: str) -> float | None:
        return self.jobs.get(flavor)


class PriceTableError(Exception):
    pass


def _read(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PriceTableError(f"cannot read the price table {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise PriceTableError(f"the price table {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PriceTableError(f"the price table {path} must be a mapping with models/jobs/sandbox/estimate")
    return data


def load_prices(path: Path | None = None) -> PriceTable:
    """The built-in table, with the sections of `path` (when given) laid over it."""
    data = _read(BUILTIN)
    if path is not None:
        for section, value in _read(Path(path)).items():
            if isinstance(value, dict) and isinstance(data.get(section), dict):
                data[section] = {**data[section], **value}
            else:
                data[section] = value
    try:
        return PriceTable.model_validate(data)
    except ValidationError as exc:
        raise PriceTableError(f"invalid price table {path or BUILTIN}: {exc}") from None
