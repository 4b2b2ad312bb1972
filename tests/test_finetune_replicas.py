"""Fine-tuning across two replicas on one PostgreSQL database and one S3 blob store (moto's
server over real HTTP): a file uploaded through A trains a job started through B; the model
B made is the base of a follow-up job started through A, and is downloaded, registered and
its log and events read through A. Neither replica ever saw the other's disk."""

from __future__ import annotations

import io
import tarfile

import pytest

from .api_servers import wait_job
from .conftest import PG_SKIP, PG_URL
from .mlconnector.client import api_client
from .test_scale_replicas import two_replicas

pytestmark = pytest.mark.skipif(not PG_URL, reason=PG_SKIP)
TRAIN = "".join(f'{{"prompt": "Q: what is {i} plus {i}? A:", "completion": " {2 * i}"}}\n' for i in range(20))


def test_files_and_fine_tuned_models_follow_the_job_to_any_replica(make_server, s3_server):
    a, b = two_replicas(make_server, s3_server)
    with api_client(a) as ca, api_client(b) as cb:
        up = ca.post("/ml-api/files/", files={"file": ("train.jsonl", TRAIN.encode())})
        assert up.status_code == 201, up.text
        file_id = up.json()["id"]
        assert not (b.data_dir / "files" / file_id).exists()

        created = cb.post("/ml-api/fine-tuning-jobs/", json={
            "model_id": "tiny-gpt2", "training_file": file_id, "suffix": "adder",
            "compute_config": {"instance_type": "cpu", "epochs": 2}})
        assert created.status_code == 200, created.text
        done = wait_job(cb, created.json()["id"], timeout=300)
        assert done["status"] == "succeeded", (done, cb.get(f"/ml-api/fine-tuning-jobs/{done['id']}/logs/").text)
        assert (b.data_dir / "files" / file_id).read_text() == TRAIN  # fetched from the store, checked
        assert (b.data_dir / "finetune" / done["id"] / "model").is_dir()
        assert not (a.data_dir / "finetune" / done["id"]).exists()

        # A continues from B's model: it fetches it from the store first.
        follow = ca.post("/ml-api/fine-tuning-jobs/", json={
            "model_id": done["fine_tuned_model"], "training_file": file_id, "compute_config": {"epochs": 1}})
        assert follow.status_code == 200, follow.text
        again = wait_job(ca, follow.json()["id"], timeout=300)
        assert again["status"] == "succeeded", again
        fetched = a.data_dir / "finetune" / done["id"] / "model"
        assert sorted(p.name for p in fetched.iterdir()) == sorted(
            p.name for p in (b.data_dir / "finetune" / done["id"] / "model").iterdir())

        r = ca.get(f"/ml-api/fine-tuning-jobs/{done['id']}/model/")
        assert r.status_code == 200, r.text
        with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
            assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(tar.getnames())
        reg = ca.post(f"/ml-api/fine-tuning-jobs/{done['id']}/register/", json={"modelname": "adder"})
        assert reg.status_code == 201, reg.text
        assert reg.json()["files"][0]["filename"].endswith(".tar.gz")

        # The job's log and events, written on B, read through A.
        assert "Training started" in str(ca.get(f"/ml-api/fine-tuning-jobs/{done['id']}/events/").json())
        events = ca.get(f"/ml-api/fine-tuning-jobs/{done['id']}/events/").json()["data"]
        assert events[-1]["message"].startswith("The job succeeded"), events
        assert ca.get(f"/ml-api/fine-tuning-jobs/{done['id']}/logs/").text == \
            cb.get(f"/ml-api/fine-tuning-jobs/{done['id']}/logs/").text
