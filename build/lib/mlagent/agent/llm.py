"""Streaming chat completions from any OpenAI-compatible server, as the caller."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI

from .steps import AgentError


@dataclass
class ToolCallRequest:
    call_id: str
    name: str
    arguments: str


@dataclass
class Completion:
    """One finished chat completion."""

    text: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    latency_ms: float = 0.0

    def assistant_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return message


@dataclass
class TextChunk:
    text: str


def _estimate_tokens(payload: Any) -> int:
    return max(1, len(json.dumps(payload, ensure_ascii=False)) // 4)


class ChatLLM:
    """A thin layer over `AsyncOpenAI` that maps failures to `AgentError` codes."""

    def __init__(self, base_url: str, api_key: str, timeout: float, max_retries: int = 2) -> None:
        self._client = AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)

    async def close(self) -> None:
        await self._client.close()

    async def stream(
        self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[TextChunk | Completion]:
        """Yield text chunks as they come, then one `Completion`."""
        started = time.perf_counter()
        done = Completion()
        calls: dict[int, dict[str, str]] = {}
        kwargs: dict[str, Any] = {"model": model, "messages": messages, "stream": True,
                                  "stream_options": {"include_usage": True}}
        if tools:
            kwargs["tools"] = tools
        try:
            stream = await self._client.chat.completions.create(**kwargs)
            async for chunk in stream:
                if chunk.usage is not None:
                    done.input_tokens = chunk.usage.prompt_tokens or 0
                    done.output_tokens = chunk.usage.completion_tokens or 0
                for choice in chunk.choices or ():
                    delta = choice.delta
                    if delta is not None and delta.content:
                        done.text += delta.content
                        yield TextChunk(delta.content)
                    for tc in (delta.tool_calls or ()) if delta is not None else ():
                        slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                        if tc.id:
                            slot["id"] = tc.id
                        if tc.function is not None:
                            slot["name"] += tc.function.name or ""
                            slot["arguments"] += tc.function.arguments or ""
                    if choice.finish_reason:
                        done.finish_reason = choice.finish_reason
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise AgentError(
                "inference_provider_permission_required",
                f"The inference provider refused the caller's token (HTTP {exc.status_code}).",
            ) from None
        except openai.APITimeoutError:
            raise AgentError("llm_timeout", "The language model did not answer in time.") from None
        except openai.NotFoundError:
            raise AgentError("model_not_found", f"The inference server does not serve model {model!r}.") from None
        except openai.APIStatusError as exc:
            raise AgentError("llm_error", f"The language model failed (HTTP {exc.status_code}).") from None
        except openai.APIError as exc:
            raise AgentError("llm_error", f"The language model failed: {exc.__class__.__name__}.") from None
        done.tool_calls = [
            ToolCallRequest(call_id=slot["id"] or f"call_{i}", name=slot["name"], arguments=slot["arguments"] or "{}")
            for i, slot in sorted(calls.items())
        ]
        if not done.input_tokens:
            done.input_tokens = _estimate_tokens(messages)
        if not done.output_tokens and (done.text or done.tool_calls):
            done.output_tokens = _estimate_tokens([done.text, [c.arguments for c in done.tool_calls]])
        done.latency_ms = (time.perf_counter() - started) * 1000
        yield done
