"""The server starts, reports its models, and runs a background turn end to end."""

from .fakes.llm import Reply
from .harness import wait_status


def test_background_turn_completes(shared_server, fake_hub, fake_llm):
    token = fake_hub.user_token("smoke")
    fake_llm.push(Reply(text="Hello from the agent"))
    with shared_server.client(token) as c:
        created = c.post("/v1/responses", json={"input": "hi", "background": True})
        assert created.status_code == 200, created.text
        assert created.json()["status"] == "queued"
        done = wait_status(c, created.json()["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["output"][-1]["content"][0]["text"] == "Hello from the agent"
    assert fake_llm.requests[-1].token == token
