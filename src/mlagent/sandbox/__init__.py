"""Per-session sandboxes: run the agent's commands in their own directory under resource
limits, inside `bwrap` where available (see docs/agent-tools.md, "Sandbox")."""

from .limits import Limits
from .runner import RunResult, Sandbox, SandboxPathError

__all__ = ["Limits", "RunResult", "Sandbox", "SandboxPathError"]
