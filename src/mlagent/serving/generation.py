"""Predict's input for a text-generation deployment (a transformers causal LM, such as a
fine-tuned model registered from /ml-api): prompts and how many tokens to generate."""

from __future__ import annotations

from typing import Any

from ..errors import ServiceError

MAX_PROMPTS = 16
MAX_PROMPT_CHARS = 4000
MAX_NEW_TOKENS = 256
DEFAULT_NEW_TOKENS = 32


def _bad(message: str, param: str = "data") -> ServiceError:
    return ServiceError(422, "invalid_input", message, param, retryable=False)


def parse_prompts(data: Any) -> tuple[list[str], int]:
    """`"text"`, `["text", …]`, or `{"prompt": "text" | [...], "max_new_tokens": n}`."""
    max_new = DEFAULT_NEW_TOKENS
    if isinstance(data, dict):
        unknown = set(data) - {"prompt", "max_new_tokens"}
        if unknown:
            raise _bad(f"Unknown field(s) {sorted(unknown)}: a generation request takes 'prompt' and "
                       "'max_new_tokens'.", f"data.{min(unknown)}")
        value = data.get("max_new_tokens", DEFAULT_NEW_TOKENS)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_NEW_TOKENS:
            raise _bad(f"'max_new_tokens' must be an integer from 1 to {MAX_NEW_TOKENS}.", "data.max_new_tokens")
        max_new, data = value, data.get("prompt")
    prompts = [data] if isinstance(data, str) else data
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise _bad("This deployment generates text: send 'data' as a prompt string, a list of prompts, or "
                   "{\"prompt\": …, \"max_new_tokens\": n}.")
    if len(prompts) > MAX_PROMPTS:
        raise _bad(f"At most {MAX_PROMPTS} prompts per request.")
    for i, p in enumerate(prompts):
        if len(p) > MAX_PROMPT_CHARS:
            raise _bad(f"Prompt {i} is longer than {MAX_PROMPT_CHARS} characters.")
    return prompts, max_new
