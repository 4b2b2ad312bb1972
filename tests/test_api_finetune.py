"""Seed 001's ML API over REST: models from the server's configuration, uploaded files,
and fine-tuning jobs that really train (created → queued → running → terminal)."""

from __future__ import annotations

import pytest

from .api_servers import client, start_api_server, wait_job
from .conftest import PG_URL
from .harness import create_pg_database, drop_pg_database

TRAIN = "".join(f'{{"prompt": "Q: what is {i} plus {i}? A:", "completion": " {2 * i}"}}\n' for i in range(30))
VALID = "".join(f'{{"text": "Q: what is {i} plus {i}? A: {2 * i}"}}\n' for i in range(30, 40))


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub, database):
    """On SQLite, and on PostgreSQL when MLAGENT_TEST_DATABASE_URL is set (the job store is ours)."""
    extra = {}
    if database == "postgresql":
        extra["MLAGENT_DATABASE_URL"] = create_pg_database(PG_URL)
    proc = start_api_server(tmp_path_factory.mktemp("ml"), fake_llm, fake_hub,
                            MLAGENT_MODELS="acme/Chat-7B:prov,other/Base", MLAGENT_DEFAULT_MODEL="other/Base",
                            MLAGENT_GRPC_PORT="0", **extra)
    yield proc
    proc.stop()
    if extra:
        drop_pg_database(PG_URL, extra["MLAGENT_DATABASE_URL"])


def upload(c, text: str, name: str = "train.jsonl") -> str:
    r = c.post("/ml-api/files/", files={"file": (name, text.encode())})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_ml_root_and_models_follow_configuration(server):
    with client(server) as c:
        assert c.get("/ml-api/").json() == {"status": "online", "version": "1.0.0",
                                            "message": "ML Infrastructure API is running",
                                            "ml_client_available": True}
        models = c.get("/ml-api/models/").json()
        assert [m["id"] for m in models] == ["acme/Chat-7B:prov", "other/Base"]
        assert set(models[0]) == {"id", "name", "version", "description", "parameters", "created_at", "updated_at"}
        assert models[0]["name"] == "Chat-7B" and models[1]["parameters"]["default"] is True
        assert c.get("/ml-api/models/acme/Chat-7B:prov/").json() == models[0]
        assert c.get("/ml-api/models/other/Base").json() == models[1]
        config = c.get("/api/config/model").json()
        assert [m["id"] for m in config["models"]] == [m["id"] for m in models]
        missing = c.get("/ml-api/models/llama-4-maverick/")
        assert missing.status_code == 404 and set(missing.json()) == {"error", "details"}


def test_files_are_per_account(server):
    with client(server) as alice, client(server, "key-bob") as bob:
        file_id = upload(alice, TRAIN)
        meta = alice.get(f"/ml-api/files/{file_id}/").json()
        assert meta["bytes"] == len(TRAIN.encode()) and meta["filename"] == "train.jsonl"
        assert file_id in [f["id"] for f in alice.get("/ml-api/files/").json()]
        assert bob.get(f"/ml-api/files/{file_id}/").status_code == 404
        assert file_id not in [f["id"] for f in bob.get("/ml-api/files/").json()]
        r = bob.post("/ml-api/fine-tuning-jobs/", json={"model_id": "tiny-gpt2", "training_file": file_id})
        assert r.status_code == 400 and r.json()["details"]["field"] == "training_file"
        empty = alice.post("/ml-api/files/", files={"file": ("e.txt", b"")})
        assert empty.status_code == 400 and empty.json()["details"]["field"] == "file"


def test_base_models_are_tiny_configs(server):
    with client(server) as c:
        models = {m["id"]: m for m in c.get("/ml-api/base-models/").json()}
    assert set(models) == {"tiny-gpt2", "tiny-llama"}
    assert models["tiny-gpt2"]["config"]["architecture"] == "gpt2" and models["tiny-gpt2"]["kind"] == "base"
    assert models["tiny-llama"]["config"]["num_hidden_layers"] == 2
    assert "byte-level" in models["tiny-llama"]["config"]["tokenizer"]


def test_job_trains_and_chains(server):
    with client(server) as c:
        train, valid = upload(c, TRAIN), upload(c, VALID, "valid.jsonl")
        r = c.post("/ml-api/fine-tuning-jobs/", json={
            "model_id": "tiny-gpt2", "training_file": train, "validation_file": valid, "suffix": "adder",
            "compute_config": {"instance_type": "cpu", "instance_count": 1, "epochs": 8}})
        assert r.status_code == 200, r.text
        created = r.json()
        assert created["status"] == "created" and created["metrics"] is None and created["fine_tuned_model"] is None
        assert {k: created[k] for k in ("model_id", "training_file", "validation_file")} == {
            "model_id": "tiny-gpt2", "training_file": train, "validation_file": valid}
        done = wait_job(c, created["id"])
        assert done["status"] == "succeeded", done
        assert done["fine_tuned_model"] == f"ft:tiny-gpt2:adder:{created['id']}"
        metrics = done["metrics"]
        assert metrics["epoch"] == 8 and metrics["step"] >= 8
        assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["train_accuracy"] <= 1
        assert metrics["loss"] < 5.0 and metrics["val_loss"] < 5.5  # chance over 258 byte tokens: ln 258 = 5.55
        assert done["error"] is None
        assert created["id"] in [j["id"] for j in c.get("/ml-api/fine-tuning-jobs/").json()]

        # a second job continues from the first one's weights: its first steps are already far below chance
        r = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": done["fine_tuned_model"], "training_file": train,
                                                      "compute_config": {"epochs": 1}})
        again = wait_job(c, r.json()["id"])
        assert again["status"] == "succeeded", again
        assert again["metrics"]["loss"] < 5.0 and again["fine_tuned_model"].startswith("ft:tiny-gpt2:custom:")
        assert "accuracy" not in again["metrics"] and "train_accuracy" in again["metrics"]

    # the result is a transformers model directory (save_pretrained) that loads and generates
    from transformers import AutoModelForCausalLM, AutoTokenizer

    saved = server.data_dir / "finetune" / created["id"] / "model"
    tok = AutoTokenizer.from_pretrained(saved)
    model = AutoModelForCausalLM.from_pretrained(saved)
    assert model.config.model_type == "gpt2" and model.config.n_layer == 2
    assert tok.decode(tok("Q: what is 3 plus 3? A:")["input_ids"]) == "Q: what is 3 plus 3? A:"
    ids = model.generate(**tok("Q: what is 3 plus 3? A:", return_tensors="pt"), max_new_tokens=4, do_sample=False)
    assert ids.shape[1] > len("Q: what is 3 plus 3? A:")


def test_chat_data_trains_a_llama(server, database):
    if database != "sqlite":
        pytest.skip("the recipe does not depend on the store: one run is enough")
    chats = "".join(f'{{"messages": [{{"role": "user", "content": "double {i}"}}, '
                    f'{{"role": "assistant", "content": "{2 * i}"}}]}}\n' for i in range(20))
    with client(server) as c:
        train = upload(c, chats, "chat.jsonl")
        r = c.post("/ml-api/fine-tuning-jobs/", json={
            "model_id": "tiny-llama", "training_file": train, "validation_file": train,
            "compute_config": {"epochs": 3, "batch_size": 4, "learning_rate": 0.005}})
        done = wait_job(c, r.json()["id"])
    assert done["status"] == "succeeded", done
    assert done["metrics"]["epoch"] == 3 and done["metrics"]["step"] == 15
    assert done["metrics"]["val_loss"] < 5.5 and 0 <= done["metrics"]["accuracy"] <= 1
    saved = server.data_dir / "finetune" / done["id"] / "model"
    assert (saved / "model.safetensors").is_file() and (saved / "tokenizer.json").is_file()


def test_job_over_its_timeout_fails(server, database):
    if database != "sqlite":
        pytest.skip("the recipe does not depend on the store: one run is enough")
    with client(server) as c:
        big = upload(c, "lorem ipsum dolor sit amet " * 20000, "big.txt")
        r = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": "tiny-llama", "training_file": big,
                                                      "compute_config": {"epochs": 50, "timeout_seconds": 3}})
        done = wait_job(c, r.json()["id"])
    assert done["status"] == "failed" and "timeout of 3 seconds" in done["error"], done
    assert done["fine_tuned_model"] is None


def test_job_without_text_fails_with_reason(server):
    with client(server) as c:
        empty_text = upload(c, '{"text": ""}\n{"text": ""}\n')
        r = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": "tiny-gpt2", "training_file": empty_text})
        done = wait_job(c, r.json()["id"])
    assert done["status"] == "failed" and "no text" in done["error"] and done["fine_tuned_model"] is None


def test_cancel_and_ownership(server):
    with client(server) as c, client(server, "key-bob") as bob:
        big = upload(c, "lorem ipsum dolor sit amet " * 20000, "big.txt")
        job = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": "tiny-gpt2", "training_file": big,
                                                        "compute_config": {"epochs": 200}}).json()
        assert bob.get(f"/ml-api/fine-tuning-jobs/{job['id']}/").status_code == 404
        assert bob.post(f"/ml-api/fine-tuning-jobs/{job['id']}/cancel/").status_code == 404
        assert job["id"] not in [j["id"] for j in bob.get("/ml-api/fine-tuning-jobs/").json()]
        r = c.post(f"/ml-api/fine-tuning-jobs/{job['id']}/cancel/")
        assert r.json() == {"status": "success", "message": f"Job {job['id']} cancelled"}
        assert wait_job(c, job["id"])["status"] == "cancelled"
        again = c.post(f"/ml-api/fine-tuning-jobs/{job['id']}/cancel/")
        assert again.status_code == 400 and "cancelled" in again.json()["error"]
        assert c.get("/ml-api/fine-tuning-jobs/ft-nope/").status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"training_file": "x"}, "model_id"),
    ({"model_id": "llama-4-scout", "training_file": "x"}, "model_id"),
    ({"model_id": "tiny-gpt2", "training_file": "x", "compute_config": {"instance_type": "g4dn.xlarge"}},
     "compute_config.instance_type"),
    ({"model_id": "tiny-gpt2", "training_file": "x", "compute_config": {"epochs": 0}}, "compute_config.epochs"),
    ({"model_id": "tiny-gpt2", "training_file": "x", "suffix": "bad suffix!"}, "suffix"),
])
def test_invalid_job_requests_are_400_naming_field(server, body, field):
    with client(server) as c:
        r = c.post("/ml-api/fine-tuning-jobs/", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["details"].get("field") == field or field in r.json()["details"]


def test_job_of_a_killed_server_fails_after_restart(make_server, tmp_path):
    server = make_server(mlagent_grpc_port="0").start()  # no keys: dev-api-key on loopback
    with client(server, "dev-api-key") as c:
        big = upload(c, "lorem ipsum dolor sit amet " * 20000, "big.txt")
        job = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": "tiny-gpt2", "training_file": big,
                                                        "compute_config": {"epochs": 200}}).json()
    server.kill()
    server.start()
    with client(server, "dev-api-key") as c:
        after = c.get(f"/ml-api/fine-tuning-jobs/{job['id']}/").json()
    assert after["status"] == "failed" and "restarted" in after["error"]
