"""Plain formatting shared by the live stream and the static views: cut-short text, money,
durations, call signatures, and `scrub`, which keeps server text from reaching the terminal as
escape sequences."""

from __future__ import annotations

import json
import re
from typing import Any

from rich.style import Style
from rich.text import Text

# C0 controls but tab and newline, DEL, and C1 controls: what the agent writes (often from
# web pages it read) must not reach the terminal as escape sequences (titles, clipboard, …).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def scrub(value: Any) -> Any:
    """`value` with every string's control characters removed (dicts and lists walked)."""
    if isinstance(value, str):
        return CONTROL.sub("", value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def money(value: float | None) -> str:
    if value is None:
        return "?"
    return f"${value:.4f}" if 0 < abs(value) < 0.01 else f"${value:.2f}"


def link(url: Any) -> Style:
    """A terminal hyperlink (OSC 8) to `url`, underlined."""
    return Style(link=str(url), underline=True)


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def call_signature(name: str, arguments: str | None, limit: int = 120) -> str:
    """`name(key="value", n=3)` from a JSON arguments string, each value and the whole cut short
    (just `name` when there are no arguments: an inference action)."""
    if arguments is None:
        return name
    try:
        args = json.loads(arguments) if arguments else {}
    except ValueError:
        return short(f"{name}({arguments})", limit)
    if not isinstance(args, dict):
        return short(f"{name}({arguments})", limit)
    parts = [f"{k}={short(json.dumps(v, ensure_ascii=False), 48)}" for k, v in args.items()]
    return short(f"{name}({', '.join(parts)})", limit)


def one_line(output: str, limit: int = 90) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return "(no output)"
    first = short(lines[0], limit)
    return first + (" …" if len(lines) > 1 and not first.endswith("…") else "")


def artifact_name(artifact: dict[str, Any]) -> str:
    for key in ("repo_id", "space_id", "id", "slug", "name"):
        if artifact.get(key):
            return str(artifact[key])
    return ""


def response_text(response: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for item in response.get("output") or [] if item.get("type") == "message"
                   for part in item.get("content") or [])


def session_cost(response: dict[str, Any]) -> dict[str, Any] | None:
    return ((response.get("usage") or {}).get("cost")) or None


# Output items that are a tool call: `mcp_call` (the agent's own tool run, done on the server)
# and `function_call` (a client tool the client must answer; in logs written before the
# change, also the agent's own runs, followed by a `function_call_output`).
TOOL_CALLS = ("mcp_call", "function_call")


def call_key(item: dict[str, Any]) -> str:
    return str(item.get("call_id") or item.get("id") or "")


def tool_line(name: str, arguments: str | None, output: str, status: Any = None, took: float | None = None,
              limit: int = 120) -> Text:
    """`✓ name(args)  1.2s  → first line of the result` (`✘` for an error result, `⏹` for a
    run the turn's cancellation or a restart cut short, `▶` for one still running)."""
    failed = output.startswith("Error")
    marks = {"incomplete": (("⏹ ", "yellow"), "interrupted"), "in_progress": (("▶ ", "cyan"), "running")}
    mark, result = marks.get(status, (("✘ ", "red") if failed else ("✓ ", "green"), one_line(output)))
    line = Text.assemble(mark, (call_signature(name, arguments, limit), "bold"))
    if took is not None:
        line.append(f"  {duration(took)}", "magenta")
    line.append(f"  → {result}", "red" if failed else "dim")
    return line


def waiting_line(name: str, arguments: str | None) -> Text:
    return Text.assemble(("⧗ ", "bold yellow"), (call_signature(name, arguments, 90), "bold"),
                         ("  → waiting for the client's tool output (function_call)", "yellow"))
