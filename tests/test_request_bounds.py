"""Bad input is refused before it costs anything, and never with a 500 (issue 11 defects 7, 8
and 10; issue 13 item 6): body caps while reading, JSON depth, integers past 64 bits, NUL
characters (on PostgreSQL too), strict types, whole-input caps, error params, 405 Allow, and
what /api/v1/organism shows a caller. Real server, real sockets."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest

from .api_servers import start_api_server
from .conftest import PG_URL
from .harness import create_pg_database, drop_pg_database

BODY_CAP = 256 * 1024
FILE_CAP = 200 * 1024
UPLOAD_CAP = 300 * 1024
DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub, database):
    env = {"MLAGENT_MAX_BODY_BYTES": str(BODY_CAP), "MLAGENT_MAX_TRAINING_FILE_BYTES": str(FILE_CAP),
           "MLAGENT_MAX_UPLOAD_BYTES": str(UPLOAD_CAP), "MLAGENT_MAX_INPUT_CHARS": "20000",
           "MLAGENT_MAX_INPUT_TOTAL_CHARS": "50000", "MLAGENT_MAX_SESSIONS_PER_ACCOUNT": "1000"}
    url = None
    if database == "postgresql":
        url = env["MLAGENT_DATABASE_URL"] = create_pg_database(PG_URL)
    proc = start_api_server(tmp_path_factory.mktemp("bounds"), fake_llm, fake_hub, start_timeout=120, **env)
    yield proc
    proc.stop()
    if url:
        drop_pg_database(PG_URL, url)


@pytest.fixture(scope="module")
def token(fake_hub) -> str:
    return fake_hub.user_token("bounds-user")


def api(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": "key-alice"}, timeout=30)


def v1(server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


# -- raw HTTP: a client that stops sending, to see whether the server waits for the rest --
def raw(server, head: str, body: Iterable[bytes] = ()) -> tuple[int, dict[str, str], bytes]:
    """Send `head` and `body`, never finishing a chunked body, then read the answer. A server
    that waited for the rest of the body would leave recv() to time out (the test fails)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
        s.sendall(head.encode())
        try:
            for part in body:
                s.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending: what we want
        data = b""
        while b"\r\n\r\n" not in data:
            got = s.recv(65536)
            if not got:
                break
            data += got
        header_blob, _, rest = data.partition(b"\r\n\r\n")
        lines = header_blob.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            got = s.recv(65536)
            if not got:
                break
            rest += got
        return int(lines[0].split()[1]), headers, rest


def chunked(total: int, piece: int = 64 * 1024, prefix: bytes = b"") -> Iterator[bytes]:
    """`prefix` then `total` bytes of data as HTTP chunks, without the terminating chunk."""
    if prefix:
        yield b"%x\r\n%s\r\n" % (len(prefix), prefix)
    sent = 0
    while sent < total:
        n = min(piece, total - sent)
        yield b"%x\r\n%s\r\n" % (n, b"x" * n)
        sent += n


def head(method: str, path: str, headers: dict[str, str]) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return "\r\n".join(lines) + "\r\n\r\n"


# -- defect 7: bodies are capped before they are buffered ------------------------------------
def test_content_length_over_the_cap_is_refused_before_the_body_is_sent(server, token):
    # No body byte is ever sent: only a server that checks Content-Length first can answer.
    status, _, body = raw(server, head("POST", "/api/tasks/", {
        "X-API-Key": "key-alice", "Content-Type": "application/json", "Content-Length": str(100 * 1024 * 1024)}))
    assert status == 413
    assert json.loads(body)["details"]["code"] == "request_too_large"
    status, _, body = raw(server, head("POST", "/v1/responses", {
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Length": str(10**9)}))
    assert status == 413
    err = json.loads(body)["error"]
    assert err["code"] == "request_too_large" and err["type"] == "invalid_request_error"


def test_a_chunked_body_is_stopped_at_the_cap_while_it_streams(server):
    status, _, body = raw(server, head("POST", "/api/v1/inject", {
        "X-API-Key": "key-alice", "Content-Type": "application/json", "Transfer-Encoding": "chunked"}),
        chunked(BODY_CAP + 128 * 1024, prefix=b'{"to": "ml-agent", "payload": "'))
    assert status == 413 and str(BODY_CAP) in json.loads(body)["error"]


def multipart_prefix(boundary: str, filename: str, fields: dict[str, str]) -> bytes:
    parts = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                     for k, v in fields.items())
    return parts + (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                    f"Content-Type: application/octet-stream\r\n\r\n").encode()


def leftovers(root: Path, at_least: int) -> list[Path]:
    """Large files where uploads land (the training files, the model artifacts)."""
    return [p for d in ("files", "artifacts") for p in (root / d).rglob("*")
            if p.is_file() and p.stat().st_size >= at_least]


def test_training_file_upload_stops_at_its_cap_while_reading_and_leaves_nothing(server):
    boundary = "bnd42"
    status, _, body = raw(server, head("POST", "/ml-api/files/", {
        "X-API-Key": "key-alice", "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Transfer-Encoding": "chunked"}),
        chunked(10 * FILE_CAP, prefix=multipart_prefix(boundary, "train.jsonl", {"purpose": "fine-tune"})))
    assert status == 413, body
    assert json.loads(body)["details"]["code"] == "request_too_large"
    assert leftovers(server.data_dir, FILE_CAP // 2) == []
    # under the cap it is stored, streamed to disk with its size and hash
    content = b'{"text": "hello"}\n' * 5000  # 90 kB
    with api(server) as c:
        r = c.post("/ml-api/files/", files={"file": ("train.jsonl", content)})
        assert r.status_code == 201, r.text
        assert r.json()["bytes"] == len(content)
        import hashlib
        assert r.json()["sha256"] == hashlib.sha256(content).hexdigest()


def test_model_upload_stops_at_its_cap_while_reading(server):
    with api(server) as c:
        mid = c.post("/model/add", json={"modelname": "capped", "modelkind": "regression"}).json()["id"]
    boundary = "bnd43"
    status, _, body = raw(server, head("POST", f"/model/{mid}/upload", {
        "X-API-Key": "key-alice", "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Transfer-Encoding": "chunked"}),
        chunked(10 * UPLOAD_CAP, prefix=multipart_prefix(boundary, "data.csv", {"file_kind": "data"})))
    assert status == 413, body
    assert leftovers(server.data_dir, UPLOAD_CAP // 2) == []
    status, _, _ = raw(server, head("POST", f"/model/{mid}/upload", {
        "X-API-Key": "key-alice", "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(500 * 1024 * 1024)}))
    assert status == 413


def test_a_turn_input_is_capped_as_a_whole(server, token):
    with v1(server, token) as c:
        many = c.post("/v1/responses", json={"input": [{"role": "user", "content": "hi"}] * 110, "background": True})
        assert many.status_code == 400 and many.json()["error"]["param"] == "input"
        assert "110" not in many.json()["error"]["message"] and "100" in many.json()["error"]["message"]
        # each message under its cap, together over the total
        big = c.post("/v1/responses", json={"input": [{"role": "user", "content": "a" * 15_000}] * 4,
                                            "background": True})
        assert big.status_code == 400
        assert big.json()["error"]["code"] == "input_too_large" and big.json()["error"]["param"] == "input"
        # a content part's non-text field
        part = {"type": "input_image", "image_url": "data:image/png;base64," + "A" * 100_000}
        fat = c.post("/v1/responses", json={"input": [{"role": "user", "content": [part]}], "background": True})
        assert fat.status_code == 400
        assert fat.json()["error"]["param"] == "input[0].content[0].image_url"
        ok = c.post("/v1/responses", json={"input": [{"role": "user", "content": "a" * 15_000}] * 3,
                                           "background": True})
        assert ok.status_code == 200, ok.text


def test_inject_payload_is_capped(server):
    with api(server) as c:
        r = c.post("/api/v1/inject", json={"to": "ml-agent", "payload": "x" * 25_000})
        assert r.status_code == 400 and r.json()["details"]["field"] == "payload"


# -- defect 8: client mistakes are 4xx, never 500 ----------------------------------------------
@pytest.mark.parametrize("path", ["/model/all?skip={n}", "/model/all?limit={n}", "/deployment/all?skip={n}",
                                  "/mltraining/all?skip={n}", "/api/v1/threads?offset={n}",
                                  "/api/v1/messages?offset={n}", "/deployment/get/opos/me?skip={n}"])
def test_integers_past_64_bits_are_validation_errors(server, path):
    with api(server) as c:
        r = c.get(path.format(n=10**30))
        assert r.status_code == 422, r.text
        assert r.json()["details"]["code"] == "invalid_request_error"


def test_sequence_numbers_past_64_bits_are_400(server, token):
    with v1(server, token) as c:
        rid = c.post("/v1/responses", json={"input": "hi", "background": True}).json()["id"]
        r = c.get(f"/v1/responses/{rid}/events", headers={"Last-Event-ID": str(10**30)})
        assert r.status_code == 400 and r.json()["error"]["param"] == "Last-Event-ID"
        for url in (f"/v1/responses/{rid}/events?starting_after={10**30}",
                    f"/v1/responses/{rid}?stream=true&starting_after={10**30}"):
            r = c.get(url)
            assert r.status_code == 400 and r.json()["error"]["param"] == "starting_after"


@pytest.mark.parametrize("method, path, status", [
    ("POST", "/deployment/anything/predict", 422), ("POST", "/model/add", 422), ("POST", "/api/tasks/", 400),
    ("POST", "/api/v1/inject", 422), ("POST", "/ml-api/fine-tuning-jobs/", 400), ("POST", "/v1/responses", 400)])
def test_json_nested_100000_deep_is_refused(server, token, method, path, status):
    headers = {"X-API-Key": "key-alice", "Authorization": f"Bearer {token}"}
    for content_type in ("application/json", None):
        sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
        r = httpx.request(method, server.url + path, content=DEEP, headers=sent, timeout=30)
        if content_type is None and path != "/deployment/anything/predict":
            assert r.status_code in (400, 422), r.text  # not JSON at all for a strict route
            continue
        assert r.status_code == status, r.text
        assert "deep" in r.text
    assert "Traceback" not in server.log()


def test_nul_in_an_id_is_404_and_in_a_name_is_the_validation_error(server, token):
    with api(server) as c:
        for path in ("/model/a%00b", "/deployment/get/status/a%00b", "/mltraining/a%00b", "/api/tasks/a%00b",
                     "/ml-api/files/file-%00/", "/ml-api/fine-tuning-jobs/a%00/", "/api/v1/threads/a%00b",
                     "/api/v1/agents/ml%00agent", "/model/getkind/a%00"):
            r = c.get(path)
            assert r.status_code == 404, (path, r.text)
        r = c.post("/model/add", json={"modelname": "a\x00b", "modelkind": "regression"})
        assert r.status_code == 422 and r.json()["details"]["field"] == "modelname"
        r = c.get("/model/search", params={"tags": "a\x00b"})
        assert r.status_code == 422 and r.json()["details"]["field"] == "tags"
        r = c.post("/api/tasks/", json={"prompt": "hi", "context": {"k\x00": "v"}})
        assert r.status_code == 400 and r.json()["details"]["field"] == "context.k\\u0000"
        r = c.post("/api/v1/inject", json={"to": "ml-agent", "payload": "hi", "thread_id": "t\x00"})
        assert r.status_code == 422 and r.json()["details"]["field"] == "thread_id"
        # an upload whose form field holds a NUL is refused, and leaves no file behind
        before = sorted(p.name for p in (server.data_dir / "files").glob("*"))
        r = c.post("/ml-api/files/", files={"file": ("t.jsonl", b'{"text": "a"}\n')}, data={"purpose": "x\x00y"})
        assert r.status_code == 400 and r.json()["details"]["field"] == "purpose"
        # a NUL in the file name is dropped from the stored name
        form = (b'--b1\r\nContent-Disposition: form-data; name="file"; filename="t\x00.jsonl"\r\n\r\n'
                b'{"text": "a"}\n\r\n--b1--\r\n')  # a raw NUL: httpx would percent-encode it
        r = c.post("/ml-api/files/", content=form, headers={"Content-Type": "multipart/form-data; boundary=b1"})
        assert r.status_code == 201 and r.json()["filename"] == "t.jsonl"
        after = sorted(p.name for p in (server.data_dir / "files").glob("*"))
        assert len(after) == len(before) + 1
        listed = {f["id"] for f in c.get("/ml-api/files/").json()}
        assert set(after) <= listed  # every file on disk has its record
    with v1(server, token) as c:
        assert c.get("/v1/responses/resp_%00").status_code == 404
        r = c.post("/v1/responses", json={"input": "hi", "previous_response_id": "resp_\x00"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "previous_response_id"
        r = c.post("/v1/responses", json={"input": "hi", "metadata": {"k": "v\x00"}})
        assert r.status_code == 400 and r.json()["error"]["param"] == "metadata.k"
    assert "Traceback" not in server.log()


# -- defect 10: strict types at the boundary -------------------------------------------------
@pytest.mark.parametrize("field, value", [("max_cost_usd", True), ("max_cost_usd", "5"), ("background", "true"),
                                          ("stream", 1), ("wait_timeout_seconds", "60"), ("top_logprobs", False),
                                          ("temperature", "0.5"), ("top_p", True), ("max_output_tokens", "100"),
                                          ("max_tool_calls", True), ("parallel_tool_calls", 1), ("store", "true")])
def test_numbers_and_booleans_are_not_coerced_on_v1(server, token, field, value):
    with v1(server, token) as c:
        r = c.post("/v1/responses", json={"input": "hi", field: value})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == field


def test_numbers_and_booleans_are_not_coerced_elsewhere(server, token):
    with v1(server, token) as c:
        r = c.post("/v1/responses/resp_x/approvals", json={"approve": "yes"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "approve"
        assert c.post("/v1/responses", json={"input": "hi", "max_cost_usd": 5, "background": True}).status_code == 200
    with api(server) as c:
        r = c.post("/mltraining/add", json={"modelid": "m", "placement": {"continuum": "yes"}})
        assert r.status_code == 422 and r.json()["details"]["field"] == "placement.continuum"
        r = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": "m", "training_file": "f",
                                                      "compute_config": {"epochs": "3"}})
        assert r.status_code == 400 and r.json()["details"]["field"] == "compute_config.epochs"
        r = c.post("/deployment/add", json={"modelid": "m", "inference_data": True})
        assert r.status_code == 422 and r.json()["details"]["field"] == "inference_data"


def test_405_names_the_allowed_methods(server, token):
    with api(server) as c:
        r = c.put("/model/all")
        assert r.status_code == 405 and r.headers["allow"] == "GET"
        r = c.put("/model/some-id")
        assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, PATCH"
    with v1(server, token) as c:
        r = c.delete("/v1/responses")  # create (POST) and the listing (GET)
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
        assert r.json()["error"]["code"] == "method_not_allowed"
        r = c.get("/v1/responses/resp_missing/cancel")
        assert r.status_code == 405 and r.headers["allow"] == "POST"
        assert r.json()["error"]["code"] == "method_not_allowed"


def test_fuzz_findings_on_the_new_routes_are_client_errors_not_500s(server, token):
    """What schemathesis found: an input-token count with `input: null` (the field may be
    left out) was a 500, and a task event cursor past the stored int32 broke the stream."""
    with v1(server, token) as c:
        r = c.post("/v1/responses/input_tokens", json={"input": None, "tools": []})
        assert r.status_code == 200 and r.json()["input_tokens"] > 0, r.text
    with api(server) as c:
        for prefix in ("/api", "/ninja-api"):
            r = c.get(f"{prefix}/tasks/resp_x/events", params={"starting_after": 2**64})
            assert r.status_code == 400 and r.json()["details"]["field"] == "starting_after", r.text
            r = c.get(f"{prefix}/tasks/resp_x/events", headers={"Last-Event-ID": str(2**64)})
            assert r.status_code == 400 and r.json()["details"]["field"] == "Last-Event-ID", r.text


def test_openapi_declares_the_errors_each_operation_answers(server):
    doc = httpx.get(server.url + "/openapi.json").json()
    create = doc["paths"]["/v1/responses"]["post"]["responses"]
    assert {"400", "401", "404", "409", "413", "429"} <= set(create) and "422" not in create
    assert create["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/OpenAIError")
    model = doc["paths"]["/model/{model_id}"]["get"]["responses"]
    assert {"401", "404", "422"} <= set(model)
    assert model["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ApiError")
    tasks = doc["paths"]["/api/tasks/"]["post"]["responses"]
    assert {"400", "401", "413"} <= set(tasks) and "422" not in tasks
    assert "HTTPValidationError" not in doc["components"]["schemas"]


# -- issue 13 item 6: messages ---------------------------------------------------------------
def test_malformed_json_and_wrong_types_name_sane_params(server, token):
    with v1(server, token) as c:
        r = c.post("/v1/responses", content=b'{"input": "hi",\n "model": }', headers={"Content-Type": "application/json"})
        err = r.json()["error"]
        assert r.status_code == 400 and err["param"] is None and err["code"] == "invalid_json"
        assert "line 2, column" in err["message"]
        r = c.post("/v1/responses", json={"input": 5})
        err = r.json()["error"]
        assert r.status_code == 400 and err["param"] == "input"
        assert "string" in err["message"] and "list" in err["message"]
        r = c.post("/v1/responses", json={"input": [{"role": "user", "content": 5}]})
        assert r.json()["error"]["param"] == "input[0].content"
    with api(server) as c:
        r = c.post("/api/tasks/", content=b'{"prompt": ', headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "line 1, column" in r.json()["error"]
        assert r.json()["details"]["code"] == "invalid_json"
        r = c.post("/model/add", content=b"{,}", headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["details"]["code"] == "invalid_json"


def test_organism_shows_the_config_path_only_to_the_operator(server):
    with api(server) as c:
        assert c.get("/api/v1/organism").json()["config_path"] == "default.yaml"
        assert c.get("/api/v1/organism/config").json()["source"] == "default.yaml"
    with httpx.Client(base_url=server.url, headers={"X-API-Key": "key-ops"}) as op:
        path = op.get("/api/v1/organism").json()["config_path"]
        assert path.endswith("/organism/default.yaml") and Path(path).is_absolute()


# -- the depth scan itself, against the real depth of any JSON value -------------------------
def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def test_the_depth_scan_agrees_with_the_parsed_depth():
    from hypothesis import given, settings, strategies as st

    from mlagent.api.limits import json_too_deep

    text = st.text(alphabet='[]{}"\\ab\x00', max_size=8)  # the characters that could fool a scan
    values = st.recursive(st.none() | st.integers() | text,
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                          max_leaves=40)

    @settings(max_examples=300, deadline=None, database=None)
    @given(values, st.integers(min_value=0, max_value=6), st.booleans())
    def check(value, limit, ascii_only):
        raw = json.dumps(value, ensure_ascii=ascii_only).encode()
        assert json_too_deep(raw, limit) == (_depth(value) > limit)

    check()
    assert json_too_deep(DEEP, 64) and not json_too_deep(b"[" * 64 + b"]" * 64, 64)
