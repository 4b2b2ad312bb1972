"""The /ui dashboard in a real browser (Playwright driving Debian's Chromium) against the
real server with the fake LLM and hub: sign in, start a run and watch it stream, lose the
connection and resume, approve a pause, open an artifact, predict with a SHAP chart, the
operator view, and what another account or a bad token sees. Each page is screenshotted."""

from __future__ import annotations

import io
import json
import re
import threading
import time

import httpx
import pytest

from .costs import MODEL, module_server, price_file, with_job_tool
from .fakes.llm import Reply
from .harness import wait_status
from .ui_support import CuttableProxy

pytestmark = pytest.mark.browser
OPERATOR_KEY = "op-key-for-ui-tests"
PLAN = {"steps": [{"step": "Load the data", "status": "completed"}, {"step": "Train a model", "status": "in_progress"},
                  {"step": "Report <b>results</b>", "status": "pending"}]}
HOSTILE = "## Result\n\nThe **model** is ready.\n\n<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned=2\">\n\n[click](javascript:alert(1))"


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub):
    directory = tmp_path_factory.mktemp("ui")
    prices = price_file(directory, {MODEL: (10.0, 10.0)}, jobs={"a10g-large": 1.5})
    s = with_job_tool(module_server(directory, fake_llm, fake_hub, mlagent_price_table=prices,
                                    mlagent_operator_key=OPERATOR_KEY, mlagent_keepalive_seconds="1",
                                    mlagent_inference_api_key="server-llm-key")).start(timeout=120)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def proxy(server):
    p = CuttableProxy(server.port)
    yield p
    p.close()


@pytest.fixture
def alice_token(fake_hub):
    return fake_hub.user_token("alice-ui")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(page, base: str, token: str) -> None:
    page.goto(f"{base}/ui/")
    page.get_by_label("Hugging Face access token").fill(token)
    page.get_by_label("Hugging Face access token").press("Enter")
    page.get_by_role("heading", name="Runs", exact=True).wait_for()


def shot(page, folder, name: str, full_page: bool = True) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)


def test_wrong_token_shows_a_clear_message(page, server, screenshots):
    page.goto(f"{server.url}/ui/")
    page.get_by_label("Hugging Face access token").fill("hf_not_a_real_token")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert").filter(has_text="not accepted")
    alert.wait_for()
    shot(page, screenshots, "signin-wrong-token")
    assert page.evaluate("sessionStorage.getItem('mlagent.hfToken')") is None


def test_run_streams_plan_and_text_and_resumes_after_a_lost_connection(page, server, proxy, alice_token, fake_llm,
                                                                      screenshots):
    gate = threading.Event()
    fake_llm.push(Reply(tool_calls=[("update_plan", PLAN)]),
                  Reply(tool_calls=[("model_register", {"modelname": "UiModel", "modelkind": "classification",
                                                        "modeltags": ["ui"]})]),
                  Reply(text=HOSTILE, chunks=8, chunk_delay=0.4, gate=gate))
    sign_in(page, proxy.url, alice_token)
    shot(page, screenshots, "runs-empty")
    page.get_by_label("Task").fill("Train a classifier and register it")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url("**/ui/#/runs/resp_*")
    rid = page.url.rsplit("/", 1)[1]
    # The plan arrives while the model's answer is still held back.
    page.locator("ul.plan li", has_text="Train a model").wait_for()
    # The agent's tool runs are mcp_call items: done, with the server's duration and the result's first line.
    tool = page.locator("details.tool[data-tool-status='completed']", has_text="model_register")
    tool.wait_for()
    assert re.search(r"model_register completed \d+(\.\d)? s → \S", tool.locator("summary").inner_text())
    tool.locator("summary").click()
    tool.locator("pre.log", has_text='"modelname": "UiModel"').wait_for()  # the arguments
    assert tool.locator(".label", has_text="Result").count() == 1
    assert page.locator("ul.plan li.completed").count() == 1
    shot(page, screenshots, "run-in-progress")

    # Lose the connection mid-run: the page reconnects with Last-Event-ID and misses nothing.
    page.locator("main[data-conn='live']").wait_for(state="attached")
    assert proxy.cut() > 0
    page.locator("main[data-reconnects]:not([data-reconnects='0'])").wait_for(state="attached")
    gate.set()
    # And again while the answer is streaming in.
    page.locator(".answer").wait_for()
    assert proxy.cut() > 0
    page.locator("main[data-reconnects]:not([data-reconnects='0']):not([data-reconnects='1'])").wait_for(state="attached")
    page.locator("[data-status='completed']").wait_for()
    page.locator(".answer h4", has_text="Result").wait_for()
    text = page.locator(".answer").inner_text()
    assert text.count("The model is ready.") == 1, text
    # LLM output is text, never markup: no script ran, no element was injected, no js: link.
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".answer script, .answer img").count() == 0
    assert "<script>" in text
    assert page.locator(".answer a[href^='javascript']").count() == 0
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {alice_token}"}) as c:
        events = [json.loads(line[6:]) for line in c.get(f"/v1/responses/{rid}/events").text.splitlines()
                  if line.startswith("data: ")]
    final = events[-1]["sequence_number"]
    assert page.evaluate("document.querySelector('main').dataset.lastSeq") == str(final)
    # Every event of the log was applied exactly once across the reconnects: no gap, no repeat.
    assert page.evaluate("document.querySelector('main').dataset.applied") == str(final + 1)
    shot(page, screenshots, "run-completed")

    # A reload replays the whole log: the same answer once, the same plan.
    page.reload()
    page.locator("[data-status='completed']").wait_for()
    page.locator(".answer h4", has_text="Result").wait_for()
    assert page.locator(".answer").inner_text().count("The model is ready.") == 1
    assert page.locator("ul.plan li").count() == 3

    # The registered model is an artifact; its link opens the model's page.
    page.locator(".artifacts a", has_text="UiModel").click()
    page.wait_for_url("**/ui/#/models/*")
    page.get_by_role("heading", name="UiModel").wait_for()
    shot(page, screenshots, "model-page")

    # The run list shows it with its status.
    page.goto(f"{proxy.url}/ui/#/runs")
    page.locator(f"tr[data-id='{rid}']").wait_for()
    assert "completed" in page.locator(f"tr[data-id='{rid}']").inner_text()
    shot(page, screenshots, "runs-list")


def test_a_client_tool_call_shows_as_waiting_for_the_clients_output(page, server, alice_token, fake_llm):
    """A `function_call` item is a client tool the client must answer: the run says so."""
    weather = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    fake_llm.push(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {alice_token}"}) as c:
        rid = c.post("/v1/responses", json={"input": "weather?", "background": True, "tools": [weather]}).json()["id"]
        assert [i["type"] for i in wait_status(c, rid, {"completed"})["output"]] == ["function_call"]
    sign_in(page, server.url, alice_token)
    page.goto(f"{server.url}/ui/#/runs/{rid}")
    tool = page.locator("details.tool[data-tool-status='waiting']", has_text="get_weather")
    tool.wait_for()
    tool.locator("summary").click()
    tool.locator(".waiting", has_text="waiting for the client's tool output").wait_for()


def test_approving_a_pause_continues_the_same_run(page, server, alice_token, fake_llm, screenshots):
    fake_llm.push(Reply(tool_calls=[("launch_job", {"flavor": "a10g-large", "timeout": "2h"})]),
                  Reply(text="The job is running."))
    sign_in(page, server.url, alice_token)
    page.get_by_label("Task").fill("Launch a training job")
    page.get_by_label("Budget cap (USD)").fill("1")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url("**/ui/#/runs/resp_*")
    rid = page.url.rsplit("/", 1)[1]
    page.get_by_role("heading", name="Approval needed").wait_for()
    assert "launch_job" in page.locator("section.notice").inner_text()
    shot(page, screenshots, "run-paused")
    page.get_by_label("New budget cap (USD)").fill("10")
    page.get_by_label("Feedback for the agent").fill("ok, go ahead")
    page.get_by_role("button", name="Approve").click()
    page.locator("[data-status='completed']").wait_for()
    page.locator(".answer", has_text="The job is running.").wait_for()
    assert page.url.endswith(rid)
    assert "$10.00" in page.locator(".budget-text").inner_text()
    shot(page, screenshots, "run-approved")


def test_cancel_a_paused_run_then_continue_the_session(page, server, alice_token, fake_llm, screenshots):
    fake_llm.push(Reply(tool_calls=[("launch_job", {"flavor": "a10g-large", "timeout": "2h"})]))
    sign_in(page, server.url, alice_token)
    page.get_by_label("Task").fill("Launch an expensive job")
    page.get_by_label("Budget cap (USD)").fill("1")
    page.get_by_role("button", name="Start run").click()
    page.get_by_role("heading", name="Approval needed").wait_for()
    rid = page.url.rsplit("/", 1)[1]
    page.get_by_role("button", name="Cancel run").click()
    page.locator("[data-status='cancelled']").wait_for()
    fake_llm.push(Reply(text="Here is a cheaper plan."))
    page.get_by_label("Message").fill("Suggest something cheaper")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(lambda url: "/ui/#/runs/resp_" in url and not url.endswith(rid))
    page.locator(".answer", has_text="Here is a cheaper plan.").wait_for()
    page.get_by_role("link", name=rid).wait_for()  # "Continues" links back to the cancelled run
    shot(page, screenshots, "run-continued")


def test_another_accounts_run_and_model_do_not_render(page, server, alice_token, fake_hub, fake_llm,
                                                     screenshots):
    bob = fake_hub.user_token("bob-ui")
    fake_llm.push(Reply(text="bob's secret answer"))
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {bob}"}) as c:
        rid = c.post("/v1/responses", json={"input": "bob's secret task", "background": True}).json()["id"]
        wait_status(c, rid, {"completed"})
        model = c.post("/model/add", json={"modelname": "BobsModel", "modelkind": "regression"}).json()
    sign_in(page, server.url, alice_token)
    page.goto(f"{server.url}/ui/#/runs/{rid}")
    page.get_by_role("heading", name="Run not found").wait_for()
    assert "secret" not in page.content()
    shot(page, screenshots, "run-not-found")
    page.goto(f"{server.url}/ui/#/models/{model['id']}")
    page.get_by_role("heading", name="Model not found").wait_for()
    assert "BobsModel" not in page.content()
    page.goto(f"{server.url}/ui/#/runs")
    page.get_by_role("heading", name="My runs").wait_for()
    time.sleep(0.3)
    assert "bob" not in page.locator("main").inner_text()


def test_predict_draws_the_shap_explanation_and_drift(page, server, alice_token, screenshots):
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from .mlconnector.client import pickled, upload, wait_deployment

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["age", "bmi", "bp"])
    frame["target"] = 3 * frame["age"] - 2 * frame["bmi"] + 0.5 * frame["bp"]
    reg = LinearRegression().fit(frame[["age", "bmi", "bp"]], frame["target"])
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {alice_token}"}, timeout=60) as c:
        model = c.post("/model/add", json={
            "modelname": "Diabetes", "modelkind": "regression", "modeltags": ["demo", "linear"],
            "featurelist": [{"feature_name": n, "kind": 0} for n in ("age", "bmi", "bp")] + [{"feature_name": "target", "kind": 1}],
            "drift_detection": [{"is_true": 1, "method": 1}]}).json()
        assert upload(c, model["id"], "model.pkl", pickled(reg), "model").status_code == 201
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        assert upload(c, model["id"], "train.csv", buf.getvalue().encode(), "data").status_code == 201
        dep = c.post("/deployment/add", json={"modelid": model["id"], "ownerid": "alice", "inference_data": 1}).json()
        assert wait_deployment(c, dep["deployment_id"])["status"] == "running"
        for row in rng.normal(loc=2.0, size=(30, 3)).tolist():  # served inputs shifted from training
            c.post(f"/deployment/{dep['deployment_id']}/predict", json={"data": row})
    sign_in(page, server.url, alice_token)
    page.goto(f"{server.url}/ui/#/models")
    page.get_by_role("link", name="Diabetes").wait_for()
    shot(page, screenshots, "models")
    page.goto(f"{server.url}/ui/#/deployments")
    page.get_by_role("link", name=dep["deployment_id"]).click()
    page.get_by_label("age").fill("1.5")
    page.get_by_label("bmi").fill("-0.5")
    page.get_by_label("bp").fill("2")
    page.get_by_role("button", name="Predict").click()
    page.locator("#shap-chart svg rect").first.wait_for()
    bars = page.locator("#shap-chart svg rect")
    assert bars.count() == 3
    assert page.locator("#shap-chart svg rect").first.get_attribute("data-label") == "age"  # |3*1.5| is the largest
    assert float(page.locator("#prediction").inner_text()) == pytest.approx(reg.predict(pd.DataFrame([[1.5, -0.5, 2]], columns=["age", "bmi", "bp"]))[0], rel=1e-6)
    page.locator("#drift", has_text="Drift detected").wait_for()
    assert page.locator("#drift .drift-feature svg").count() == 3
    shot(page, screenshots, "deployment-predict")


def test_usage_page_draws_spend(page, server, fake_hub, fake_llm, screenshots):
    # Two chained responses: the session's spend counts once (each response's usage.cost
    # is the session's running total), plus a separate session.
    token = fake_hub.user_token("carol-ui")
    fake_llm.push(Reply(text="one"), Reply(text="two"), Reply(text="three"))
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        first = c.post("/v1/responses", json={"input": "q", "background": True}).json()["id"]
        wait_status(c, first, {"completed"})
        second = c.post("/v1/responses", json={"input": "q2", "previous_response_id": first, "background": True}).json()["id"]
        chained = wait_status(c, second, {"completed"})
        other = c.post("/v1/responses", json={"input": "q3", "background": True}).json()["id"]
        alone = wait_status(c, other, {"completed"})
    expected = chained["usage"]["cost"]["total_usd"] + alone["usage"]["cost"]["total_usd"]
    sign_in(page, server.url, token)
    page.goto(f"{server.url}/ui/#/usage")
    page.get_by_role("heading", name="Spend per day").wait_for()
    assert page.locator("#total-spend").inner_text() == f"${expected:.4f}"
    assert page.locator("svg.chart").count() >= 3
    shot(page, screenshots, "usage")


def test_operator_pauses_and_resumes_an_agent_and_injects(page, server, fake_llm, screenshots):
    page.goto(f"{server.url}/ui/#/operator")
    page.get_by_label("Operator key (X-API-Key)").fill(OPERATOR_KEY)
    page.get_by_role("button", name="Use key").click()
    row = page.locator("tr[data-agent='ml-agent']")
    row.wait_for()
    row.get_by_role("button", name="Pause").click()
    row.get_by_role("button", name="Resume").wait_for()
    assert "paused" in row.inner_text()
    shot(page, screenshots, "operator")
    row.get_by_role("button", name="Resume").click()
    row.get_by_role("button", name="Pause").wait_for()
    fake_llm.push(Reply(text="injected answer"))
    page.get_by_label("Payload").fill("hello from the operator")
    page.get_by_role("button", name="Inject").click()
    page.locator("#inject-status :is(p, .error)").wait_for()
    assert "Delivered to ml-agent" in page.locator("#inject-status").inner_text()
    thread_id = page.locator("#inject-status code").first.inner_text()
    page.locator("#threads tr", has_text=thread_id).wait_for()  # the refreshed thread list shows it


def test_phone_width_has_no_sideways_scroll_and_keyboard_reaches_the_nav(browser, server, alice_token,
                                                                        screenshots):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        sign_in(page, server.url, alice_token)
        shot(page, screenshots, "phone-runs")
        wide = page.evaluate("[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)"
                             ".map(e => e.tagName + '.' + e.className)")
        assert page.evaluate("document.documentElement.scrollWidth") <= 391, wide
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {alice_token}"}) as c:
            rid = c.post("/v1/responses", json={"input": "a phone-sized run", "background": True}).json()["id"]
            wait_status(c, rid, {"completed"})
        page.goto(f"{server.url}/ui/#/runs/{rid}")
        page.locator("[data-status='completed']").wait_for()
        shot(page, screenshots, "phone-run")
        assert page.evaluate("document.documentElement.scrollWidth") <= 391
        # The runs list is held back while the keyboard user starts tabbing: when it arrives,
        # the page must not pull focus away from where they are (it once jumped to <main>).
        held = []
        page.route("**/v1/responses?limit=25*", lambda route: held.append(route))
        page.goto(f"{server.url}/ui/#/runs")
        page.get_by_role("heading", name="My runs").wait_for()
        page.locator("a.skip").focus()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Runs"
        page.wait_for_function("() => true")  # let the held request reach the route handler
        assert held, "the runs list was not requested"
        held[0].continue_()
        page.locator("tbody tr").first.wait_for()
        assert page.evaluate("document.activeElement.textContent") == "Runs"
        page.unroute("**/v1/responses?limit=25*")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.wait_for_url("**/ui/#/usage")
    finally:
        context.close()


def test_docs_render_offline(page, server, screenshots):
    local = (server.url, "blob:", "data:")
    outside: list[str] = []
    blocked: list[str] = []
    page.on("requestfinished", lambda r: outside.append(r.url) if not r.url.startswith(local) else None)
    page.on("requestfailed", lambda r: (blocked if (r.failure or "").lower() in ("csp", "net::err_blocked_by_csp") else outside).append(f"{r.url} ({r.failure})")
            if not r.url.startswith(local) else None)
    page.goto(f"{server.url}/docs")
    page.locator(".swagger-ui .info .title", has_text="mlagent").wait_for()
    shot(page, screenshots, "docs-swagger", full_page=False)
    page.goto(f"{server.url}/redoc")
    page.locator("h1", has_text="mlagent").first.wait_for()
    shot(page, screenshots, "docs-redoc", full_page=False)
    # Everything came from this server; what ReDoc would fetch from its CDN (its footer
    # logo) is refused by the page's policy before it leaves the browser.
    assert outside == [], (outside, blocked)
    assert all("redoc" in url for url in blocked), blocked  # the only one, and refused


def test_the_page_modules_pure_functions(page, server):
    """The state reducer, Markdown renderer, SHAP rows and per-response spend, run in the
    browser on hand-made inputs (the cases the server tests cannot easily produce)."""
    page.goto(f"{server.url}/ui/")
    result = page.evaluate("""async () => {
      const { RunState } = await import('/ui/static/js/views/run.js');
      const { render } = await import('/ui/static/js/markdown.js');
      const { shapRows } = await import('/ui/static/js/views/models.js');
      const { spendPerResponse } = await import('/ui/static/js/views/usage.js');
      const st = new RunState();
      const ev = (seq, type, data) => st.apply({ seq, type, data: { type, sequence_number: seq, ...data } });
      ev(0, 'response.job_status', { job_id: 'job1', stage: 'RUNNING', message: 'step 3' });
      ev(1, 'response.job_status', { job_id: 'job1', stage: 'COMPLETED', message: null });
      ev(2, 'response.artifact.created', { artifact: { type: 'hf_job', id: 'job1', url: 'https://hf.co/jobs/job1' } });
      ev(3, 'response.artifact.created', { artifact: { type: 'deployment', id: 'dep-1', status: 'pending' } });
      ev(4, 'response.artifact.created', { artifact: { type: 'deployment', id: 'dep-1', status: 'running' } });
      ev(5, 'response.some_future_event', { anything: 1 });
      const div = document.createElement('div');
      div.append(render('# T\\n\\n<iframe src=x></iframe> [a](javascript:alert(1)) [b](https://example.org) snake_case_name `x<y>`\\n\\n```\\n<b>code</b>\\n```\\n\\n- [x] done\\n- [ ] todo'));
      return {
        jobs: [...st.jobs.values()].map(j => j.stage),
        artifacts: [...st.artifacts.values()].map(a => a.type + ':' + (a.status || '')),
        events: st.events,
        html: div.innerHTML,
        links: [...div.querySelectorAll('a')].map(a => a.getAttribute('href')),
        elements: [...div.querySelectorAll('*')].map(e => e.tagName.toLowerCase()),
        shap: shapRows({ feature_importance: [[0.1, -2, 0.5]], feature_names: ['a', 'b', 'c'] }).map(r => r.label),
        spend: spendPerResponse([
          { id: 'r2', session_id: 's', created_at: 200, model: 'm', usage: { cost: { inference_usd: 3, jobs_usd: 1 } } },
          { id: 'r1', session_id: 's', created_at: 100, model: 'm', usage: { cost: { inference_usd: 1, jobs_usd: 0 } } },
          { id: 'r3', session_id: 't', created_at: 150, model: 'm', usage: null },
        ]).map(r => [r.id, r.inference_usd, r.jobs_usd]),
      };
    }""")
    assert result["jobs"] == ["COMPLETED"]
    assert result["artifacts"] == ["hf_job:", "deployment:running"]  # one deployment, status updated in place
    assert result["events"] == 6
    assert set(result["elements"]) <= {"h3", "p", "a", "code", "pre", "ul", "li"}, result["elements"]
    assert result["links"] == ["https://example.org/"]
    assert "&lt;iframe" in result["html"] and "&lt;b&gt;code&lt;/b&gt;" in result["html"] and "snake_case_name" in result["html"]
    assert "☑ done" in result["html"] and "☐ todo" in result["html"]
    assert result["shap"] == ["b", "c", "a"]
    assert result["spend"] == [["r1", 1, 0], ["r2", 2, 1]]
