"""Unit tests of cost estimation: the price table, inference, HF Jobs, sandboxes."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, strategies as st

from mlagent.usage.estimates import (
    inference_estimate,
    job_cost,
    parse_timeout,
    prompt_tokens,
    sandbox_cost,
    token_cost,
)
from mlagent.usage.prices import PriceTable, PriceTableError, load_prices


def test_builtin_table_prices_the_default_models_and_job_flavors():
    prices = load_prices()
    assert prices.model_price("moonshotai/Kimi-K2.6:novita") is not None  # provider suffix falls back
    assert prices.job_hourly("cpu-basic") == 0.01 and prices.job_hourly("a10g-large") == 1.5
    assert prices.sandbox.hourly_usd == 0.01  # like cpu-basic


def test_operator_file_overlays_the_builtin_table(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("models:\n  acme/m: {input_per_mtok: 1, output_per_mtok: 2}\njobs:\n  a10g-large: 9\n"
                    "sandbox: {hourly_usd: 0.36}\n")
    prices = load_prices(path)
    assert prices.model_price("acme/m").output_per_mtok == 2
    assert prices.model_price("moonshotai/Kimi-K2.6") is not None  # built-in entries kept
    assert prices.job_hourly("a10g-large") == 9 and prices.job_hourly("cpu-basic") == 0.01
    assert sandbox_cost(prices, 600).usd == pytest.approx(0.06)
    exact = prices.model_copy(update={"models": {"acme/m:fast": prices.models["acme/m"]}})
    assert exact.model_price("acme/m:fast") is not None


@pytest.mark.parametrize("text, message", [("[1, 2]", "mapping"), ("models: {x: {input_per_mtok: -1, "
                                                                    "output_per_mtok: 1}}", "invalid"),
                                           ("models: [", "not valid YAML")])
def test_bad_price_tables_are_refused_with_a_clear_message(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PriceTableError, match=message):
        load_prices(path)
    with pytest.raises(PriceTableError, match="cannot read"):
        load_prices(tmp_path / "missing.json")


def test_token_cost_and_unpriced_models():
    prices = PriceTable.model_validate({"models": {"m": {"input_per_mtok": 3, "output_per_mtok": 15}}})
    assert token_cost(prices, "m", 1_000_000, 0).usd == 3
    assert token_cost(prices, "m", 200, 40).usd == pytest.approx((200 * 3 + 40 * 15) / 1e6)
    free = token_cost(prices, "other", 10_000, 10_000)
    assert free.usd == 0 and free.priced is False


def test_inference_estimate_counts_the_prompt_and_the_assumed_answer():
    prices = PriceTable.model_validate({"models": {"m": {"input_per_mtok": 1e6, "output_per_mtok": 0}},
                                        "estimate": {"output_tokens": 0}})
    messages = [{"role": "user", "content": "x" * 400}]
    tools = [{"type": "function", "function": {"name": "t", "description": "y" * 400, "parameters": {}}}]
    assert prompt_tokens(messages) == len(json.dumps(messages)) // 4
    assert inference_estimate(prices, "m", messages).usd == prompt_tokens(messages)
    assert inference_estimate(prices, "m", messages, tools).usd == prompt_tokens(messages, tools)
    answer = PriceTable.model_validate({"models": {"m": {"input_per_mtok": 0, "output_per_mtok": 1e6}},
                                        "estimate": {"output_tokens": 1024}})
    assert inference_estimate(answer, "m", messages).usd == 1024


def test_job_cost_is_hourly_price_times_timeout_billed_per_minute():
    prices = PriceTable.model_validate({"jobs": {"a10g-large": 1.5}, "estimate": {"job_timeout_seconds": 1800}})
    assert job_cost(prices, "a10g-large", parse_timeout("2h")).usd == pytest.approx(3.0)
    assert job_cost(prices, "a10g-large").usd == pytest.approx(0.75)  # default timeout: 30 minutes
    assert job_cost(prices, "a10g-large", 61).usd == pytest.approx(1.5 * 2 / 60)  # a started minute counts
    unknown = job_cost(prices, "quantum-xl", 3600)
    assert unknown.usd == 0 and unknown.priced is False


@pytest.mark.parametrize("value, seconds", [(90, 90.0), ("90s", 90.0), ("30m", 1800.0), ("2h", 7200.0),
                                            ("1d", 86400.0), ("45", 45.0), ("soon", None), (None, None)])
def test_parse_timeout(value, seconds):
    assert parse_timeout(value) == seconds


@given(st.floats(0, 1000), st.floats(0, 10 * 86400), st.floats(0, 10 * 86400))
def test_job_cost_is_monotonic_and_never_below_the_exact_runtime(hourly, a, b):
    prices = PriceTable.model_validate({"jobs": {"f": hourly}})
    low, high = sorted((a, b))
    assert job_cost(prices, "f", low).usd <= job_cost(prices, "f", high).usd
    assert job_cost(prices, "f", low).usd >= hourly * low / 3600 - 1e-9
    assert job_cost(prices, "f", low).usd == pytest.approx(hourly * math.ceil(low / 60) / 60)
