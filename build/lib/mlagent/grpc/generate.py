"""Regenerate the Python stubs of `agent_runtime.proto`: `python -m mlagent.grpc.generate [OUT_ROOT]`.

Stubs are generated with `-I src`, so they import each other as `mlagent.grpc.…`.
`OUT_ROOT` defaults to the source tree; the stub test generates into a temporary
directory and compares."""

from __future__ import annotations

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]
PROTO = "mlagent/grpc/agent_runtime.proto"


def generate(out_root: Path) -> list[Path]:
    from grpc_tools import protoc

    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / "mlagent" / "grpc").mkdir(parents=True, exist_ok=True)
    rc = protoc.main(["grpc_tools.protoc", f"-I{SRC}", f"--python_out={out_root}", f"--pyi_out={out_root}",
                      f"--grpc_python_out={out_root}", str(SRC / PROTO)])
    if rc != 0:
        raise SystemExit(f"protoc failed with {rc}")
    base = out_root / "mlagent" / "grpc"
    return [base / "agent_runtime_pb2.py", base / "agent_runtime_pb2.pyi", base / "agent_runtime_pb2_grpc.py"]


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else SRC):
        print(path)
