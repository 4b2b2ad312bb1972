"""The committed gRPC stubs are what `make proto` generates from the committed .proto,
and the .proto keeps seed 001's services, messages and field numbers."""

from __future__ import annotations

from pathlib import Path

from mlagent.grpc import agent_runtime_pb2 as pb
from mlagent.grpc.generate import SRC, generate


def test_stubs_are_current(tmp_path: Path) -> None:
    for fresh in generate(tmp_path):
        committed = SRC / fresh.relative_to(tmp_path)
        assert committed.read_text() == fresh.read_text(), f"{committed} is stale: run `make proto`"


def test_proto_keeps_seed_contract() -> None:
    services = {name: [m.name for m in s.methods] for name, s in pb.DESCRIPTOR.services_by_name.items()}
    assert services == {
        "AgentService": ["ExecuteTask", "GetTaskStatus"],
        "MLService": ["ListModels", "GetModel", "CreateFineTuningJob", "GetFineTuningJob", "CancelFineTuningJob"],
    }
    fields = {name: {f.name: f.number for f in m.fields} for name, m in pb.DESCRIPTOR.message_types_by_name.items()}
    assert fields["ExecuteTaskRequest"] == {"prompt": 1, "context": 2, "tools": 3}
    assert fields["GetTaskStatusResponse"] == {"task_id": 1, "status": 2, "result": 3}
    assert fields["ModelDetail"] == {"id": 1, "name": 2, "version": 3, "description": 4, "parameters": 5,
                                     "created_at": 6, "updated_at": 7}
    assert fields["CreateFineTuningJobRequest"] == {"model_id": 1, "training_file": 2, "validation_file": 3,
                                                    "suffix": 4, "compute_config": 5}
    assert fields["FineTuningJobResponse"] == {
        "id": 1, "model_id": 2, "status": 3, "created_at": 4, "updated_at": 5, "fine_tuned_model": 6,
        "training_file": 7, "validation_file": 8, "metrics": 9, "error": 10}
    assert fields["CancelFineTuningJobResponse"] == {"status": 1, "message": 2}
