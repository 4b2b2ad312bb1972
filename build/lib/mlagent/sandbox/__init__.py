"""Per-session sandboxes: run the agent's commands in their own directory under resource
limits, inside `bwrap` where available (see docs/agent-tools.md, "Sandbox")."""

from .limits import Limits
from .paths import SandboxPathError, files_beneath, open_beneath
from .runner import RunResult, Sandbox

__all__ = ["Limits", "RunResult", "Sandbox", "SandboxPathError", "files_beneath", "open_beneath"]
