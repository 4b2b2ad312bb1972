"""Seed 001's gRPC API over a real channel: every RPC of AgentService and MLService,
health checking, reflection, status codes, and tasks crossing REST and gRPC."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from mlagent.grpc import agent_runtime_pb2 as pb, agent_runtime_pb2_grpc as pb_grpc

from .api_servers import SERVER_LLM_KEY, client, start_api_server, wait_job, wait_task
from .fakes.llm import Reply

ALICE = (("x-api-key", "key-alice"),)
BOB = (("x-api-key", "key-bob"),)


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub):
    proc = start_api_server(tmp_path_factory.mktemp("grpc"), fake_llm, fake_hub)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.grpc_target) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


@pytest.fixture
def agent(channel):
    return pb_grpc.AgentServiceStub(channel)


@pytest.fixture
def ml(channel):
    return pb_grpc.MLServiceStub(channel)


def grpc_wait(agent, task_id: str, metadata=ALICE) -> pb.GetTaskStatusResponse:
    deadline = time.monotonic() + 20
    while True:
        status = agent.GetTaskStatus(pb.GetTaskStatusRequest(task_id=task_id), metadata=metadata)
        if status.status not in ("queued", "in_progress") or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def test_health_and_reflection(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "AgentService", "MLService"):
        assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == \
            health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in answers[0].list_services_response.service}
    assert {"AgentService", "MLService", "grpc.health.v1.Health"} <= names
    files = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="MLService")])))
    assert files[0].file_descriptor_response.file_descriptor_proto


def test_execute_task_and_status(agent, fake_llm):
    fake_llm.push(Reply(text="gRPC task done"))
    resp = agent.ExecuteTask(pb.ExecuteTaskRequest(prompt="Write a component", context={"project": "shop"},
                                                   tools=["update_plan"]), metadata=ALICE)
    assert resp.status == "accepted" and resp.message == "Task submitted for execution" and resp.task_id
    status = grpc_wait(agent, resp.task_id)
    assert (status.task_id, status.status, status.result) == (resp.task_id, "completed", "gRPC task done")
    sent = fake_llm.requests[-1]
    assert sent.token == SERVER_LLM_KEY
    assert any("project: shop" in str(m.get("content")) for m in sent.messages)
    assert [t["function"]["name"] for t in sent.body["tools"]] == ["update_plan"]


def test_rest_task_read_over_grpc_and_back(server, agent, fake_llm):
    fake_llm.push(Reply(text="from REST"))
    with client(server) as c:
        task_id = c.post("/api/tasks/", json={"prompt": "rest"}).json()["task_id"]
        status = grpc_wait(agent, task_id)
        assert (status.status, status.result) == ("completed", "from REST")
        fake_llm.push(Reply(text="from gRPC"))
        grpc_id = agent.ExecuteTask(pb.ExecuteTaskRequest(prompt="grpc"), metadata=ALICE).task_id
        done = wait_task(c, grpc_id)
    assert (done["status"], done["result"]) == ("completed", "from gRPC")


def test_failed_task_reports_error_as_result(agent, fake_llm):
    fake_llm.push(Reply(status=500))
    task_id = agent.ExecuteTask(pb.ExecuteTaskRequest(prompt="boom"), metadata=ALICE).task_id
    status = grpc_wait(agent, task_id)
    assert status.status == "failed" and status.result


def test_status_codes(agent, ml, fake_llm):
    req = pb.ExecuteTaskRequest(prompt="x")
    assert code_of(lambda: agent.ExecuteTask(req))[0] == grpc.StatusCode.UNAUTHENTICATED
    assert code_of(lambda: agent.ExecuteTask(req, metadata=(("x-api-key", "wrong"),)))[0] == \
        grpc.StatusCode.UNAUTHENTICATED
    assert code_of(lambda: ml.ListModels(pb.ListModelsRequest()))[0] == grpc.StatusCode.UNAUTHENTICATED
    code, details = code_of(lambda: agent.ExecuteTask(pb.ExecuteTaskRequest(prompt="x", tools=["warp-drive"]),
                                                      metadata=ALICE))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "warp-drive" in details
    code, details = code_of(lambda: agent.ExecuteTask(pb.ExecuteTaskRequest(prompt=""), metadata=ALICE))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "prompt" in details
    assert code_of(lambda: agent.GetTaskStatus(pb.GetTaskStatusRequest(task_id="resp_nope"), metadata=ALICE))[0] \
        == grpc.StatusCode.NOT_FOUND
    fake_llm.push(Reply(text="alice only"))
    task_id = agent.ExecuteTask(pb.ExecuteTaskRequest(prompt="mine"), metadata=ALICE).task_id
    assert code_of(lambda: agent.GetTaskStatus(pb.GetTaskStatusRequest(task_id=task_id), metadata=BOB))[0] == \
        grpc.StatusCode.NOT_FOUND
    grpc_wait(agent, task_id)


def test_models(server, ml):
    models = ml.ListModels(pb.ListModelsRequest(), metadata=ALICE).models
    with client(server) as c:
        rest = c.get("/ml-api/models/").json()
    assert [m.id for m in models] == [m["id"] for m in rest] and models
    first = models[0]
    assert first.parameters["default"] == "true" and first.name and first.version and first.created_at
    got = ml.GetModel(pb.GetModelRequest(model_id=first.id), metadata=ALICE).model
    assert got == first
    assert code_of(lambda: ml.GetModel(pb.GetModelRequest(model_id="no/such-model"), metadata=ALICE))[0] == \
        grpc.StatusCode.NOT_FOUND


def _upload(server, text: str, key: str = "key-alice") -> str:
    with client(server, key) as c:
        r = c.post("/ml-api/files/", files={"file": ("train.jsonl", text.encode())}, data={"purpose": "fine-tune"})
        assert r.status_code == 201, r.text
        return r.json()["id"]


def test_fine_tuning_job_rpcs(server, ml):
    train = _upload(server, '{"text": "the quick brown fox jumps over the lazy dog"}\n' * 20)
    job = ml.CreateFineTuningJob(pb.CreateFineTuningJobRequest(
        model_id="tiny-gpt2", training_file=train, validation_file=train, suffix="grpc",
        compute_config={"instance_type": "cpu", "epochs": "3"}), metadata=ALICE)
    assert job.id.startswith("ft-") and job.status == "created" and job.model_id == "tiny-gpt2"
    assert job.training_file == train and job.validation_file == train and job.fine_tuned_model == ""
    with client(server) as c:
        wait_job(c, job.id)
    done = ml.GetFineTuningJob(pb.GetFineTuningJobRequest(job_id=job.id), metadata=ALICE)
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model == f"ft:tiny-gpt2:grpc:{job.id}"
    assert done.metrics["loss"] > 0 and 0 <= done.metrics["accuracy"] <= 1 and done.metrics["epoch"] == 3
    code, details = code_of(lambda: ml.CancelFineTuningJob(pb.CancelFineTuningJobRequest(job_id=job.id),
                                                           metadata=ALICE))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "succeeded" in details
    assert code_of(lambda: ml.GetFineTuningJob(pb.GetFineTuningJobRequest(job_id=job.id), metadata=BOB))[0] == \
        grpc.StatusCode.NOT_FOUND

    big = _upload(server, "lorem ipsum dolor sit amet " * 20000)
    slow = ml.CreateFineTuningJob(pb.CreateFineTuningJobRequest(
        model_id="tiny-gpt2", training_file=big, compute_config={"epochs": "200.0"}), metadata=ALICE)  # integral: an int
    cancelled = ml.CancelFineTuningJob(pb.CancelFineTuningJobRequest(job_id=slow.id), metadata=ALICE)
    assert (cancelled.status, cancelled.message) == ("success", f"Job {slow.id} cancelled")
    assert ml.GetFineTuningJob(pb.GetFineTuningJobRequest(job_id=slow.id), metadata=ALICE).status == "cancelled"


def test_fine_tuning_invalid_arguments(server, ml):
    train = _upload(server, "some text for training")
    bad = [
        (pb.CreateFineTuningJobRequest(model_id="llama-4-scout", training_file=train), "model_id"),
        (pb.CreateFineTuningJobRequest(model_id="tiny-gpt2", training_file="file-missing"), "training_file"),
        (pb.CreateFineTuningJobRequest(model_id="tiny-gpt2", training_file=train,
                                       compute_config={"instance_type": "g4dn.xlarge"}), "instance_type"),
        (pb.CreateFineTuningJobRequest(model_id="tiny-gpt2", training_file=train,
                                       compute_config={"epochs": "many"}), "epochs"),
        (pb.CreateFineTuningJobRequest(model_id="tiny-gpt2", training_file=train,
                                       compute_config={"epochs": "2.5"}), "epochs"),
        (pb.CreateFineTuningJobRequest(model_id="tiny-gpt2", training_file=train,
                                       compute_config={"learning_rate": "nan"}), "learning_rate"),
        (pb.CreateFineTuningJobRequest(model_id="tiny-gpt2", training_file=train,
                                       compute_config={"epochs": "1e400"}), "epochs"),
    ]
    for request, field in bad:
        code, details = code_of(lambda request=request: ml.CreateFineTuningJob(request, metadata=ALICE))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and field in details, details
