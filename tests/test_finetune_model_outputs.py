"""A fine-tuned model is not a dead end (issue 13, item 5): its owner downloads it, registers
it as an MLConnector model, deploys it and generates text from it through the deployment
(a real tiny model, trained here); the job has logs and events."""

from __future__ import annotations

import io
import tarfile

import pytest

from .api_servers import client, start_api_server, wait_job
from .mlconnector.client import upload as upload_model_file, wait_deployment

TRAIN = "".join(f'{{"prompt": "Q: what is {i} plus {i}? A:", "completion": " {2 * i}"}}\n' for i in range(30))
PROMPT = "Q: what is 3 plus 3? A:"


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub):
    proc = start_api_server(tmp_path_factory.mktemp("ft-out"), fake_llm, fake_hub, start_timeout=300, MLAGENT_GRPC_PORT="0")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def job(server):
    with client(server) as c:
        file_id = c.post("/ml-api/files/", files={"file": ("train.jsonl", TRAIN.encode())}).json()["id"]
        created = c.post("/ml-api/fine-tuning-jobs/", json={
            "model_id": "tiny-gpt2", "training_file": file_id, "suffix": "adder",
            "compute_config": {"instance_type": "cpu", "epochs": 3}}).json()
        done = wait_job(c, created["id"])
    assert done["status"] == "succeeded", done
    return done


def greedy(archive: bytes, tmp_path, prompt: str, new_tokens: int) -> str:
    """What the model must answer: the same weights, loaded here, decoded greedily."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    tok = AutoTokenizer.from_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    out = model.generate(input_ids=ids, attention_mask=ids.new_ones(ids.shape), max_new_tokens=new_tokens,
                         do_sample=False, pad_token_id=tok.pad_token_id or tok.eos_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def test_download_register_deploy_and_generate(server, job, tmp_path):
    with client(server) as c, client(server, "key-bob") as bob:
        r = c.get(f"/ml-api/fine-tuning-jobs/{job['id']}/model/")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/gzip" and ".tar.gz" in r.headers["content-disposition"]
        with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
            names = set(tar.getnames())
        assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
        assert bob.get(f"/ml-api/fine-tuning-jobs/{job['id']}/model/").status_code == 404
        assert bob.post(f"/ml-api/fine-tuning-jobs/{job['id']}/register/").status_code == 404

        reg = c.post(f"/ml-api/fine-tuning-jobs/{job['id']}/register/", json={"modelname": "adder"})
        assert reg.status_code == 201, reg.text
        model = reg.json()
        assert model["modelname"] == "adder" and model["modelkind"] == "text-generation"
        assert "fine-tuned" in model["modeltags"] and model["files"][0]["filename"].endswith(".tar.gz")

        dep = c.post("/deployment/add", json={"modelid": model["id"], "deployment_id": "dep-adder"})
        assert dep.status_code in (200, 201), dep.text
        running = wait_deployment(c, "dep-adder")
        assert running["status"] == "running", running
        out = c.post("/deployment/dep-adder/predict", json={"data": {"prompt": PROMPT, "max_new_tokens": 6}})
        assert out.status_code == 200, out.text
        [text] = out.json()["prediction"]
        assert text == greedy(r.content, tmp_path, PROMPT, 6)
        two = c.post("/deployment/dep-adder/predict", json={"data": [PROMPT, "Q: what is 1 plus 1? A:"]})
        assert two.status_code == 200 and len(two.json()["prediction"]) == 2
        bad = c.post("/deployment/dep-adder/predict", json={"data": [[1.0, 2.0]]})
        assert bad.status_code == 422 and "prompt" in str(bad.json())
        shap = c.post("/deployment/dep-adder/predict", json={"data": PROMPT, "explain": True})
        assert shap.status_code == 422
        assert bob.post("/deployment/dep-adder/predict", json={"data": PROMPT}).status_code == 404


def test_pickled_weights_in_an_archive_are_refused(server):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("config.json", b"{}"), ("pytorch_model.bin", b"pickle")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with client(server) as c:
        mid = c.post("/model/add", json={"modelname": "evil", "modelkind": "text-generation"}).json()["id"]
        r = upload_model_file(c, mid, "evil.tar.gz", buf.getvalue(), "model")
    assert r.status_code == 422 and "safetensors" in r.text


def test_a_fine_tuning_job_has_logs_and_events(server, job):
    with client(server) as c, client(server, "key-bob") as bob:
        logs = c.get(f"/ml-api/fine-tuning-jobs/{job['id']}/logs/")
        assert logs.status_code == 200 and logs.headers["content-type"].startswith("text/plain")
        events = c.get(f"/ml-api/fine-tuning-jobs/{job['id']}/events/").json()
        assert bob.get(f"/ml-api/fine-tuning-jobs/{job['id']}/logs/").status_code == 404
        assert bob.get(f"/ml-api/fine-tuning-jobs/{job['id']}/events/").status_code == 404
    data = events["data"]
    assert data[0]["message"].startswith("Created fine-tuning job") and "Training started" in data[1]["message"]
    metrics = [e for e in data if e["type"] == "metrics"]
    assert metrics and "loss" in metrics[-1]["data"]
    assert data[-1]["message"].startswith("The job succeeded") and job["fine_tuned_model"] in data[-1]["message"]
    assert [e["created_at"] for e in data] == sorted(e["created_at"] for e in data)
