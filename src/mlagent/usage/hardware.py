"""HF Jobs' hardware catalogue: which flavors exist and what each costs an hour.

The Hub publishes it (`GET {HF_ENDPOINT}/api/jobs/hardware`, `HfApi.list_jobs_hardware()`),
so a hand-kept list cannot drift from what HF Jobs offers. The answer is cached for
`ttl_seconds`; while the Hub cannot be reached (or before the first answer) the price
table's `jobs` section is the offline fallback. A fetched catalogue *replaces* the table's
`jobs` section in place, so every reader of the one `PriceTable` — the job tools' estimates,
the fine-tuning flavors and their costs, the budget gate — sees the same prices.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from .prices import PriceTable

log = logging.getLogger("mlagent.usage.hardware")
PER_HOUR = {"second": 3600.0, "minute": 60.0, "hour": 1.0}


def hourly_prices(hardware: list[Any]) -> dict[str, float]:
    """`JobHardwareInfo`s -> {flavor: USD per hour}; a flavor billed in an unknown unit is left out."""
    table: dict[str, float] = {}
    for hw in hardware:
        factor = PER_HOUR.get(str(getattr(hw, "unit_label", "")).lower())
        micro = getattr(hw, "unit_cost_micro_usd", None)
        if factor is None or not isinstance(micro, int | float) or micro < 0:
            log.warning("HF Jobs flavor %r has an unusable price (%r per %r); left out", hw.name, micro,
                        getattr(hw, "unit_label", None))
            continue
        table[str(hw.name)] = round(micro * factor / 1_000_000, 4)  # per-minute micro-USD: to 1/100 cent an hour
    return table


def list_jobs_hardware(endpoint: str, token: str | None) -> list[Any]:
    """The Hub's catalogue, in a worker thread: huggingface_hub is imported here (a slow import,
    ~0.2 CPU-s with httpx) so that neither start-up nor the event loop pays for it."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint).list_jobs_hardware(token=token or False)


class JobHardware:
    """The flavors HF Jobs offers, with hourly prices: the Hub's catalogue, cached."""

    def __init__(self, endpoint: str, prices: PriceTable, ttl_seconds: float = 3600.0,
                 retry_seconds: float = 60.0) -> None:
        self.endpoint = endpoint
        self.prices = prices
        self.fallback = dict(prices.jobs)
        self.ttl = ttl_seconds
        self.retry = retry_seconds
        self.source = "builtin"  # "hub" once a catalogue was fetched
        self.fetched_at: float | None = None
        self._next_fetch = 0.0
        self._lock = asyncio.Lock()

    def names(self) -> list[str]:
        return sorted(self.prices.jobs)

    def hourly(self, flavor: str) -> float | None:
        return self.prices.jobs.get(flavor)

    async def refresh(self, token: str | None = None) -> list[str]:
        """Fetch the catalogue when the cached one is stale (at most once per `retry_seconds`
        after a failure); answers the flavor names either way."""
        if time.monotonic() < self._next_fetch:
            return self.names()
        async with self._lock:
            if time.monotonic() >= self._next_fetch:
                await self._fetch(token)
        return self.names()

    async def _fetch(self, token: str | None) -> None:
        try:
            hardware = await asyncio.to_thread(list_jobs_hardware, self.endpoint, token)
            table = hourly_prices(hardware)
        except Exception as exc:  # noqa: BLE001 — offline, 401/404 or a changed shape: keep what we have
            log.warning("HF Jobs hardware catalogue unavailable (%s); using the %s table", exc.__class__.__name__,
                        self.source)
            self._next_fetch = time.monotonic() + self.retry
            return
        if not table:
            log.warning("HF Jobs hardware catalogue is empty; using the %s table", self.source)
            self._next_fetch = time.monotonic() + self.retry
            return
        self.prices.jobs = table
        self.source, self.fetched_at = "hub", time.time()
        self._next_fetch = time.monotonic() + self.ttl
