"""Dataset inspection through the dataset viewer API: splits, features, size, sample rows."""

from __future__ import annotations

import json
from typing import Any

from .base import Tool, ToolContext, ToolError
from .hubclient import HubClient, clamp, hub_error, need_str, token_of

CELL_CHARS = 400


class DatasetInspectTool(Tool):
    name = "dataset_inspect"
    description = ("Inspect a Hub dataset for training use: its configs and splits with row counts, the "
                   "features (columns and types), size, and a few sample rows.")
    parameters = {
        "type": "object",
        "properties": {
            "dataset": {"type": "string", "description": "e.g. 'HuggingFaceH4/ultrachat_200k'"},
            "config": {"type": "string", "description": "config (subset); default: the first"},
            "split": {"type": "string", "description": "split for the sample rows; default: the first"},
            "rows": {"type": "integer", "minimum": 0, "maximum": 10, "description": "sample rows (default 3)"},
        },
        "required": ["dataset"],
    }

    def __init__(self, hub: HubClient) -> None:
        self.hub = hub

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        dataset = need_str(arguments, "dataset")
        rows = clamp(arguments.get("rows"), 0, 10, 3)
        from huggingface_hub.utils import build_hf_headers, get_session  # a slow import: not at start

        headers = build_hf_headers(token=token_of(ctx))
        base = self.hub.viewer_url

        def get(path: str, **params: Any) -> dict[str, Any]:
            r = get_session().get(f"{base}/{path}", params=params, headers=headers, timeout=30)
            if r.status_code >= 400:
                try:
                    message = r.json().get("error", r.text)
                except ValueError:
                    message = r.text
                if r.status_code in (401, 403, 404):
                    raise ToolError(f"The dataset viewer cannot read {dataset!r} (HTTP {r.status_code}): {message}. "
                                    "It may not exist, be gated or private, or have no viewer support.")
                raise ToolError(f"The dataset viewer answered HTTP {r.status_code} for {path}: {message}")
            answer: dict[str, Any] = r.json()
            return answer

        async def call(path: str, **params: Any) -> dict[str, Any]:
            try:
                return await self.hub.call(f"inspect {dataset}", get, path, dataset=dataset, **params)
            except ToolError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise hub_error(exc, f"inspect {dataset}", self.hub.endpoint) from None

        splits = (await call("splits")).get("splits", [])
        if not splits:
            raise ToolError(f"{dataset!r} has no splits in the dataset viewer")
        config = arguments.get("config") or splits[0]["config"]
        configs = sorted({s["config"] for s in splits})
        if config not in configs:
            raise ToolError(f"config {config!r} not found; configs: {', '.join(configs)}")
        names = [s["split"] for s in splits if s["config"] == config]
        split = arguments.get("split") or names[0]
        if split not in names:
            raise ToolError(f"split {split!r} not found in config {config!r}; splits: {', '.join(names)}")
        lines = [f"dataset {dataset} — {self.hub.repo_url(dataset, 'dataset')}", f"configs: {', '.join(configs)}"]
        info = (await call("info", config=config)).get("dataset_info", {})
        counts = {name: s.get("num_examples") for name, s in (info.get("splits") or {}).items()}
        lines.append(f"config {config!r} splits: " + ", ".join(
            f"{n} ({counts[n]:,} rows)" if counts.get(n) is not None else n for n in names))
        features = info.get("features") or {}
        if features:
            lines.append("features:")
            lines += [f"  - {name}: {_type(spec)}" for name, spec in features.items()]
        try:
            size = (await call("size")).get("size", {}).get("dataset", {})
            if size:
                lines.append(f"size: {size.get('num_rows', '?'):,} rows; parquet {_mb(size.get('num_bytes_parquet_files'))}; "
                             f"in memory {_mb(size.get('num_bytes_memory'))}")
        except ToolError:
            pass
        if rows:
            first = await call("first-rows", config=config, split=split)
            sample = first.get("rows", [])[:rows]
            lines.append(f"sample rows from {config}/{split}:")
            for entry in sample:
                row = {k: _cut(v) for k, v in entry.get("row", {}).items()}
                lines.append("  " + json.dumps(row, ensure_ascii=False))
        return "\n".join(lines)


def _type(spec: Any) -> str:
    if isinstance(spec, dict):
        if spec.get("_type") == "Value":
            return str(spec.get("dtype", "?"))
        if spec.get("_type") in ("Sequence", "List") or "feature" in spec:
            return f"list[{_type(spec.get('feature'))}]"
        if "_type" in spec:
            return str(spec["_type"])
        return "{" + ", ".join(f"{k}: {_type(v)}" for k, v in spec.items()) + "}"
    if isinstance(spec, list) and spec:
        return f"list[{_type(spec[0])}]"
    return str(spec)


def _cut(value: Any) -> Any:
    text = json.dumps(value, ensure_ascii=False)
    if len(text) <= CELL_CHARS:
        return value
    return text[:CELL_CHARS] + f"…[{len(text)} chars]"


def _mb(n: Any) -> str:
    return f"{n / 1e6:.1f} MB" if isinstance(n, int | float) else "?"
