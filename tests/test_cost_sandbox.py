"""Sandbox commands are priced from the server's price table (`sandbox.hourly_usd`), the
one source of prices: estimated at the command's wall-clock cap before it runs (the budget
gate), charged for its measured runtime after, and shown as `usage.cost.sandboxes_usd`."""

from __future__ import annotations

import pytest

from .costs import MODEL, price_file
from .fakes.llm import Reply
from .harness import wait_status

DONE = {"incomplete", "completed", "failed", "cancelled"}


def test_sandbox_runs_are_priced_from_the_price_table(make_server, fake_hub, fake_llm, tmp_path):
    # $3600 an hour is $1 a second: a 5-second cap is estimated at exactly $5.
    server = make_server(mlagent_price_table=price_file(tmp_path, {MODEL: (0.0, 0.0)}, sandbox_hourly=3600.0)).start()
    token = fake_hub.user_token("sam")
    fake_llm.push(Reply(tool_calls=[("run_python", {"code": "print(6 * 7)", "timeout_seconds": 5})]),
                  Reply(text="It printed 42."))
    with server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "compute", "background": True, "max_cost_usd": 1.0}).json()["id"]
        body = wait_status(c, rid, DONE)
        assert body["status"] == "incomplete", body
        (action,) = body["pending_approval"]["actions"]
        assert action["kind"] == "sandbox" and action["name"] == "run_python"
        assert action["estimate_usd"] == pytest.approx(5.0)

        approved = c.post(f"/v1/responses/{rid}/approvals", json={"approve": True, "new_max_cost_usd": 50})
        assert approved.status_code == 200, approved.text
        done = wait_status(c, rid, {"completed", "failed", "cancelled"})
        assert done["status"] == "completed", done
        outputs = [i["output"] for i in done["output"] if i["type"] == "mcp_call"]
        assert "42" in outputs[0]
        cost = done["usage"]["cost"]
        # The measured runtime replaced the $5 estimate.
        assert 0 < cost["sandboxes_usd"] < 5.0, cost
        assert cost["jobs_usd"] == 0 and cost["total_usd"] == pytest.approx(cost["sandboxes_usd"], abs=1e-6)
