"""The model registry over HTTP: CRUD, kinds, tag search, uploads (caps, checks), auth and ownership."""

from __future__ import annotations

import hashlib

import pytest
from sklearn.linear_model import LinearRegression

from .mlconnector.client import SEED_METADATA, api_client, pickled, upload


def test_model_crud_kind_and_tag_search(shared_server, fake_hub):
    token = fake_hub.user_token("reg-crud")
    with api_client(shared_server, token=token) as c:
        a = c.post("/model/add", json={**SEED_METADATA, "modeltags": ["fast", "tree-based"],
                                       "modelkind": "classification", "modelname": "A"}).json()
        b = c.post("/model/add", json={"modelname": "B", "modelkind": "regression", "modeltags": ["fast"],
                                       "drift_detection": [{"is_true": 1, "method": 2}]}).json()
        assert a["id"] != b["id"] and a["modelid"] == a["id"]
        assert [m["modelname"] for m in c.get("/model/all").json()] == ["A", "B"]
        assert [m["modelname"] for m in c.get("/model/all", params={"skip": 1, "limit": 5}).json()] == ["B"]
        assert [m["modelname"] for m in c.get("/model/getkind/Classification").json()] == ["A"]
        assert c.get("/model/getkind/clustering").json() == []
        both = c.get("/model/search", params=[("tags", "fast")]).json()
        assert {m["modelname"] for m in both} == {"A", "B"}
        only_a = c.get("/model/search", params=[("tags", "fast"), ("tags", "tree-based")]).json()
        assert [m["modelname"] for m in only_a] == ["A"]
        any_ = c.get("/model/search", params=[("tags", "tree-based"), ("tags", "nope"), ("match", "any")]).json()
        assert [m["modelname"] for m in any_] == ["A"]

        patched = c.patch(f"/model/{b['id']}", json={"modeltags": ["updated-tag"],
                                                     "drift_detection": [{"is_true": 1, "method": 1}]})
        assert patched.status_code == 200, patched.text
        got = c.get(f"/model/{b['id']}").json()
        assert got["modeltags"] == ["updated-tag"] and got["drift_detection"] == [{"is_true": 1, "method": 1}]
        assert got["modelname"] == "B" and got["modelkind"] == "regression"
        assert [m["modelname"] for m in c.get("/model/search", params={"tags": "updated-tag"}).json()] == ["B"]

        assert c.delete(f"/model/{b['id']}").status_code == 200
        assert c.get(f"/model/{b['id']}").status_code == 404
        assert c.delete(f"/model/{b['id']}").status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"modelkind": "regression"}, "modelname"),
    ({"modelname": "x", "modelkind": "regression", "drift_detection": [{"is_true": 1, "method": 7}]},
     "drift_detection[0].method"),
    ({"modelname": "x", "modelkind": "regression", "modelperformance": [{"order": 1}]}, "modelperformance[0].metric"),
    ({"modelname": "x", "modelkind": "regression", "bogus": 1}, "bogus"),
])
def test_bad_model_bodies_name_the_field(shared_server, body, field):
    with api_client(shared_server) as c:
        r = c.post("/model/add", json=body)
    assert r.status_code == 422
    assert field in r.json()["details"] and field in r.json()["error"], r.json()


def test_uploads_checked_hashed_and_deduplicated(shared_server):
    model = pickled(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]))
    with api_client(shared_server) as c:
        mid = c.post("/model/add", json={"modelname": "u", "modelkind": "regression"}).json()["id"]
        first = upload(c, mid, "m.pkl", model, "model").json()
        second = upload(c, mid, "m.pkl", model, "model").json()
        assert first["sha256"] == second["sha256"] == hashlib.sha256(model).hexdigest()
        assert (first["version"], second["version"]) == (1, 2)
        assert len(list((shared_server.data_dir / "artifacts").glob(f"*/{first['sha256']}"))) == 1

        wrong_ext = upload(c, mid, "model.exe", model, "model")
        assert wrong_ext.status_code == 422 and wrong_ext.json()["details"]["field"] == "file"
        assert upload(c, mid, "train.py", b"def broken(:\n", "code").status_code == 422
        assert upload(c, mid, "data.csv", b"", "data").status_code == 422
        bad_kind = upload(c, mid, "m.pkl", model, "weights")
        assert bad_kind.status_code == 422 and "file_kind" in bad_kind.json()["details"]
        assert upload(c, "no-such-model", "m.pkl", model, "model").status_code == 404


def test_skops_type_audit(shared_server):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    good = sio.dumps(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]))
    evil = sio.dumps(FunctionTransformer(func=print))
    with api_client(shared_server) as c:
        mid = c.post("/model/add", json={"modelname": "s", "modelkind": "regression"}).json()["id"]
        assert upload(c, mid, "m.skops", good, "model").status_code == 201
        refused = upload(c, mid, "evil.skops", evil, "model")
        assert refused.status_code == 422 and "builtins.print" in refused.json()["error"]
        assert upload(c, mid, "junk.skops", b"not a zip", "model").status_code == 422


def test_upload_size_cap(make_server):
    server = make_server(MLAGENT_MAX_UPLOAD_BYTES="1000").start()
    with api_client(server) as c:
        mid = c.post("/model/add", json={"modelname": "big", "modelkind": "regression"}).json()["id"]
        r = upload(c, mid, "data.csv", b"a,b\n" + b"1,2\n" * 400, "data")
        assert r.status_code == 413 and r.json()["details"]["code"] == "file_too_large"
        assert c.get(f"/model/{mid}").json()["files"] == []
        assert upload(c, mid, "data.csv", b"a,b\n1,2\n", "data").status_code == 201
    assert list((server.data_dir / "artifacts" / "tmp").iterdir()) == []


def test_auth_and_ownership(shared_server, fake_hub):
    alice, bob = fake_hub.user_token("reg-alice"), fake_hub.user_token("reg-bob")
    with api_client(shared_server, token=alice) as a, api_client(shared_server, token=bob) as b:
        mid = a.post("/model/add", json={"modelname": "mine", "modelkind": "regression"}).json()["id"]
        assert upload(a, mid, "d.csv", b"x,y\n1,2\n", "data").status_code == 201
        assert b.get(f"/model/{mid}").status_code == 404
        assert b.patch(f"/model/{mid}", json={"modelname": "stolen"}).status_code == 404
        assert b.delete(f"/model/{mid}").status_code == 404
        assert upload(b, mid, "d.csv", b"x,y\n1,2\n", "data").status_code == 404
        assert mid not in [m["id"] for m in b.get("/model/all").json()]
        assert b.post("/deployment/add", json={"modelid": mid}).status_code == 404
        assert b.post("/mltraining/add", json={"modelid": mid}).status_code == 404
        assert a.get(f"/model/{mid}").json()["modelname"] == "mine"
    with httpx_client(shared_server) as anon:
        assert anon.get("/model/all").status_code == 401
        assert anon.get("/model/all", headers={"X-API-Key": "wrong"}).status_code == 401
        assert anon.get("/deployment/all").status_code == 401


def httpx_client(server):
    import httpx
    return httpx.Client(base_url=server.url, timeout=30)
