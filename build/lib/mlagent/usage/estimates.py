"""Cost estimates for each kind of billable action (seed 000, "Cost control").

- inference: prompt tokens (about 4 characters each) and an assumed answer length,
  times the model's per-token prices; the actual token counts replace it afterwards;
- HF Jobs: the flavor's hourly price times the timeout, billed by the started minute;
- sandboxes: the sandbox hourly rate times the run's wall-clock limit (estimate) or
  its measured runtime (actual).
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel

from .prices import PriceTable

CHARS_PER_TOKEN = 4


class Cost(BaseModel):
    """An amount in USD; `priced` False means no price was known (the amount is 0 and
    any total including it is a lower bound)."""

    usd: float = 0.0
    priced: bool = True


def prompt_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    size = len(json.dumps(messages, ensure_ascii=False))
    if tools:
        size += len(json.dumps(tools, ensure_ascii=False))
    return max(1, size // CHARS_PER_TOKEN)


def token_cost(prices: PriceTable, model: str, input_tokens: int, output_tokens: int) -> Cost:
    price = prices.model_price(model)
    if price is None:
        return Cost(usd=0.0, priced=False)
    usd = (input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / 1_000_000
    return Cost(usd=usd)


def inference_estimate(prices: PriceTable, model: str, messages: list[dict[str, Any]],
                       tools: list[dict[str, Any]] | None = None) -> Cost:
    return token_cost(prices, model, prompt_tokens(messages, tools), prices.estimate.output_tokens)


def job_cost(prices: PriceTable, flavor: str, seconds: float | None = None) -> Cost:
    """A job on `flavor` for `seconds` (the timeout for an estimate, the runtime for an
    actual; the configured default timeout when None). Billed per started minute."""
    hourly = prices.job_hourly(flavor)
    if hourly is None:
        return Cost(usd=0.0, priced=False)
    seconds = prices.estimate.job_timeout_seconds if seconds is None else max(0.0, seconds)
    return Cost(usd=hourly * math.ceil(seconds / 60) / 60)


def sandbox_cost(prices: PriceTable, seconds: float) -> Cost:
    return Cost(usd=prices.sandbox.hourly_usd * max(0.0, seconds) / 3600)


def parse_timeout(value: Any) -> float | None:
    """HF Jobs timeouts: a number of seconds or a string like "30m", "2h", "90s", "1d"."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        return None
