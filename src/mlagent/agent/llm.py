"""Streaming chat completions from any OpenAI-compatible server, as the caller."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .steps import AgentError

if TYPE_CHECKING:  # the SDK costs ~0.6 CPU-s to import: loaded by the first run, not at start-up
    import openai
    from openai import AsyncOpenAI
    from openai._base_client import Platform


@dataclass
class ToolCallRequest:
    call_id: str
    name: str
    arguments: str


@dataclass
class Completion:
    """One finished chat completion."""

    text: str = ""
    reasoning: str = ""
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


@dataclass
class ReasoningChunk:
    """Reasoning text the upstream streams beside the answer (`reasoning_content`)."""

    text: str


@dataclass
class ModelOptions:
    """Per-request sampling and format settings passed through to every model call
    (`tool_choice` is set by the loop per call)."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    reasoning_effort: str | None = None
    response_format: dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    prompt_cache_key: str | None = None
    user: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


def _estimate_tokens(payload: Any) -> int:
    return max(1, len(json.dumps(payload, ensure_ascii=False)) // 4)


class LLMClients:
    """One `AsyncOpenAI` (one pooled HTTP client, connections kept alive) per LLM base URL,
    shared by every run. Building a client costs ~30 ms (most of it an SSL context, even for
    plain http); `for_caller` costs ~0.04 ms: a copy that shares the connection pool and
    carries the caller's key, so a key never reaches another caller's requests. The shared
    clients hold no caller's key (a placeholder that is never sent: every request goes
    through a copy)."""

    _NO_KEY = "unset-use-for_caller"

    def __init__(self, timeout: float, max_retries: int = 2) -> None:
        self._timeout = timeout
        self._max_retries = max_retries
        self._shared: dict[str, AsyncOpenAI] = {}
        self._platform: Platform | None = None

    def for_caller(self, base_url: str, api_key: str) -> ChatLLM:
        shared = self._shared.get(base_url)
        if shared is None:
            from openai import AsyncOpenAI

            shared = self._shared[base_url] = AsyncOpenAI(
                base_url=base_url, api_key=self._NO_KEY, timeout=self._timeout, max_retries=self._max_retries)
        client = shared.with_options(api_key=api_key)
        # The SDK learns the platform for its headers on each client's first request, in a
        # worker thread (blocking IO): a thread hop per run. It is the same for every copy.
        if self._platform is None:
            from openai._base_client import get_platform  # the SDK's own, to share it across copies

            self._platform = get_platform()
        client._platform = self._platform
        return ChatLLM(client)

    async def close(self) -> None:
        shared, self._shared = self._shared, {}
        for client in shared.values():
            await client.close()


class ChatLLM:
    """A thin layer over `AsyncOpenAI` that maps failures to `AgentError` codes; made by
    `LLMClients.for_caller` (the caller's key on a shared connection pool)."""

    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    async def stream(
        self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
        options: ModelOptions | None = None, tool_choice: str | dict[str, Any] | None = None,
    ) -> AsyncIterator[TextChunk | ReasoningChunk | Completion]:
        """Yield reasoning and text chunks as they come, then one `Completion`."""
        import openai

        started = time.perf_counter()
        done = Completion()
        calls: dict[int, dict[str, str]] = {}
        body: dict[str, Any] = {"model": model, "stream": True, "messages": messages,
                                "stream_options": {"include_usage": True}}
        extra = options.kwargs() if options is not None else {}
        if tools:
            body["tools"] = tools
            if tool_choice is not None:
                body["tool_choice"] = tool_choice
        else:
            extra.pop("parallel_tool_calls", None)
        body.update(extra)
        try:
            # The SDK's documented custom request (`client.post`) rather than
            # `chat.completions.create`: the same request (path, body, auth, retries, timeout,
            # status errors), but each streamed chunk stays the parsed JSON dict
            # (`AsyncStream[object]`) instead of a typed `ChatCompletionChunk` built per chunk
            # (~25% of a live run's event-loop time), and the body is sent as the plain JSON
            # it already is (the typed transform of `messages` and `tools` cost 4-12 ms a call).
            stream = await self._client.post("/chat/completions", cast_to=object, body=body, stream=True,
                                             stream_cls=openai.AsyncStream[object],
                                             options={"security": {"bearer_auth": True}})
            async for chunk in stream:
                if not isinstance(chunk, dict):
                    continue
                usage = chunk.get("usage")
                if isinstance(usage, dict):
                    done.input_tokens = usage.get("prompt_tokens") or 0
                    done.output_tokens = usage.get("completion_tokens") or 0
                for choice in chunk.get("choices") or ():
                    if not isinstance(choice, dict):
                        continue
                    delta = choice.get("delta")
                    if not isinstance(delta, dict):
                        delta = {}
                    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                    if reasoning and isinstance(reasoning, str):
                        done.reasoning += reasoning
                        yield ReasoningChunk(reasoning)
                    content = delta.get("content")
                    if content and isinstance(content, str):
                        done.text += content
                        yield TextChunk(content)
                    for tc in delta.get("tool_calls") or ():
                        if not isinstance(tc, dict):
                            continue
                        slot = calls.setdefault(tc.get("index") or 0, {"id": "", "name": "", "arguments": ""})
                        if tc.get("id"):
                            slot["id"] = tc["id"]
                        function = tc.get("function")
                        if isinstance(function, dict):
                            slot["name"] += function.get("name") or ""
                            slot["arguments"] += function.get("arguments") or ""
                    if choice.get("finish_reason"):
                        done.finish_reason = choice["finish_reason"]
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
            if "response_format" in body and exc.status_code in (400, 422):
                fmt = body["response_format"]["type"]
                raise AgentError(
                    "structured_output_unsupported",
                    f"The model {model!r} refused the requested text.format ({fmt}) (HTTP {exc.status_code}: "
                    f"{_upstream_message(exc)}); use a model that supports structured outputs or omit text.format.",
                ) from None
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


def _upstream_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or exc.message)[:300]
