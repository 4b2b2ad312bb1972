"""GET /v1/responses: the caller's responses, newest first, paged; nobody else's."""

import pytest

from .fakes.llm import Reply
from .harness import wait_status


@pytest.fixture
def carol(shared_server, fake_hub):
    with shared_server.client(fake_hub.user_token("carol-lists")) as c:
        yield c


@pytest.fixture
def dave(shared_server, fake_hub):
    with shared_server.client(fake_hub.user_token("dave-lists")) as c:
        yield c


def run(client, fake_llm, text: str) -> str:
    fake_llm.push(Reply(text=f"answer to {text}"))
    rid = client.post("/v1/responses", json={"input": text, "background": True}).json()["id"]
    assert wait_status(client, rid, {"completed"})["status"] == "completed"
    return rid


def test_lists_own_responses_newest_first_in_pages(carol, dave, fake_llm):
    mine = [run(carol, fake_llm, f"task {i}") for i in range(3)]
    theirs = run(dave, fake_llm, "dave's secret task")

    first = carol.get("/v1/responses", params={"limit": 2})
    assert first.status_code == 200
    page = first.json()
    assert page["object"] == "list" and page["has_more"] is True
    assert [r["id"] for r in page["data"]] == [mine[2], mine[1]]
    assert page["first_id"] == mine[2] and page["last_id"] == mine[1]
    item = page["data"][0]
    assert item["object"] == "response" and item["status"] == "completed"
    assert item["output"][0]["content"][0]["text"] == "answer to task 2"
    assert item["input_preview"] == "task 2" and item["updated_at"] >= item["created_at"]

    rest = carol.get("/v1/responses", params={"limit": 2, "after": page["last_id"]}).json()
    assert [r["id"] for r in rest["data"]] == [mine[0]] and rest["has_more"] is False

    everything = carol.get("/v1/responses").json()
    assert [r["id"] for r in everything["data"]] == mine[::-1]
    assert theirs not in str(everything)
    assert [r["id"] for r in dave.get("/v1/responses").json()["data"]] == [theirs]


def test_a_new_account_has_an_empty_list(shared_server, fake_hub):
    with shared_server.client(fake_hub.user_token("erin-lists")) as c:
        body = c.get("/v1/responses").json()
    assert body == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


@pytest.mark.parametrize("params,field", [({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
                                          ({"limit": "ten"}, "limit"), ({"after": "resp_nope"}, "after"),
                                          ({"after": "x" * 65}, "after")])
def test_bad_parameters_are_400_naming_the_field(carol, params, field):
    r = carol.get("/v1/responses", params=params)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == field and err["type"] == "invalid_request_error" and err["message"]


def test_another_accounts_id_is_no_cursor(carol, dave, fake_llm):
    theirs = run(dave, fake_llm, "private")
    r = carol.get("/v1/responses", params={"after": theirs})
    assert r.status_code == 400 and r.json()["error"]["param"] == "after"


def test_listing_needs_a_token(shared_server):
    with shared_server.client() as c:
        r = c.get("/v1/responses")
    assert r.status_code == 401 and "error" in r.json()
