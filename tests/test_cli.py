"""The `mlagent` terminal client, driven as a user would: in a pseudo-terminal against a
real server and the fake LLM (progress, reconnection, Ctrl-C and attach, approvals), and
without a terminal for scripts (`--json`, exit codes)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pexpect
import pytest
from rich.console import Console

from mlagent.client.live import TerminalRenderer
from mlagent.client.views import response_view

from .agent_support import agent_env, deferred, release, script, wait_for
from .cli_support import (
    RESPONSE_ID,
    CuttableProxy,
    cli_env,
    finish,
    ndjson,
    plain,
    run_cli,
    spawn,
)
from .costs import MODEL, module_server, price_file
from .fakes.llm import Reply
from .harness import ServerProcess, wait_status

PLAN = {"steps": [{"step": "Compare the two embedders", "status": "in_progress"},
                  {"step": "Recommend one", "status": "pending"}]}
ANSWER = "Use **bge-m3**: it is fast.\n\n- multilingual\n- 8k context"


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub):
    """One server for the module (SQLite: the database behaviour has its own tests); a
    generous start-up time, since CLI tests often run beside others on a busy machine."""
    server = ServerProcess(tmp_path_factory.mktemp("cli"), agent_env(fake_hub, fake_llm)).start(timeout=120)
    yield server
    server.stop()


def plan_then_answer(fake_llm, answer: str = ANSWER) -> None:
    fake_llm.push(Reply(tool_calls=[("update_plan", PLAN)]), Reply(text=answer))


def test_run_shows_plan_tool_call_answer_and_budget(server, fake_llm, fake_hub):
    token = fake_hub.user_token("cli-run")
    plan_then_answer(fake_llm)
    child = spawn(["run", "Pick an embedder for RAG", "--max-cost", "3"], cli_env(server.url, token))
    child.expect(RESPONSE_ID)
    rid = child.after
    code, out = finish(child)
    assert code == 0, out
    assert f"● {rid}" in out and "cap $3.00" in out
    assert out.count('✓ update_plan(steps=[{"step": "Compare') == 1, out  # one line per tool call
    assert "Plan recorded: 2 steps, 0 completed." in out  # its one-line result
    assert "☐ Recommend one" in out and "▶ Compare the two embedders" in out  # the checklist
    assert "Use bge-m3: it is fast." in out and "• multilingual" in out  # markdown, rendered
    assert "✔ completed" in out
    assert token not in out
    with server.client(token) as c:
        assert c.get(f"/v1/responses/{rid}").json()["status"] == "completed"


def test_run_without_terminal_prints_plain_lines_and_drops_control_characters(server, fake_llm, fake_hub):
    token = fake_hub.user_token("cli-plain")
    plan_then_answer(fake_llm, "plain answer\x1b]0;PWNED\x07")  # an escape sequence from the model
    result = run_cli(["run", "hello"], cli_env(server.url, token))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout  # no codes of ours, none of the model's
    lines = result.stdout.splitlines()
    assert "plain answer]0;PWNED" in lines
    assert any(line.startswith("✓ update_plan(") for line in lines)
    assert lines[-1].startswith("✔ completed")


def test_job_status_and_artifacts_show_as_lines_and_links(server, fake_llm, fake_hub):
    token = fake_hub.user_token("clijobs")
    repo = "clijobs/tiny-model"
    script(fake_llm, [("hf_job_launch", {"script": "print('train')", "flavor": "cpu-basic", "timeout": "10m",
                                         "push_to_hub": True, "output_repo": repo})])
    held = deferred(fake_llm)
    with server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "train it", "background": True}).json()["id"]
        [job_id] = wait_for(lambda: fake_hub.jobs_of("clijobs"))
        script(fake_llm, "Trained and pushed.")
        release(held, [("hf_job_wait", {"job_id": job_id, "timeout_seconds": 60})])
        assert wait_status(c, rid, {"completed", "failed"}, timeout=60)["status"] == "completed"
    child = spawn(["attach", rid], cli_env(server.url, token))
    child.expect(pexpect.EOF)
    raw = child.logfile_read.getvalue()
    child.close()
    assert child.exitstatus == 0
    out = plain(raw)
    job_url = f"{fake_hub.url}/jobs/clijobs/{job_id}"
    assert f"⚙ job {job_id}  COMPLETED" in out
    assert f"↗ hf_job  {job_id}  {job_url}" in out and f"↗ model  {repo}  {fake_hub.url}/{repo}" in out
    assert "\x1b]8;id=" in raw and f";{job_url}\x1b\\" in raw  # a terminal hyperlink (OSC 8)
    assert "✓ hf_job_launch(" in out and "✓ hf_job_wait(" in out and "Trained and pushed." in out


WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def test_tool_runs_are_mcp_calls_with_times_and_a_client_tool_waits(server, fake_llm, fake_hub):
    """The agent's own tool run (an `mcp_call` item) and a client tool (`function_call`) in one
    step: the run shows its server-measured time and result, the client call a waiting note."""
    token = fake_hub.user_token("cli-tools")
    fake_llm.push(Reply(tool_calls=[("update_plan", PLAN), ("get_weather", {"city": "Paris"})]))
    with server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "plan, then ask for the weather", "background": True,
                                            "tools": [WEATHER_TOOL]}).json()["id"]
        body = wait_status(c, rid, {"completed", "failed"}, timeout=60)
    assert [i["type"] for i in body["output"]] == ["mcp_call", "function_call"], body["output"]
    env = cli_env(server.url, token)
    for args in (["attach", rid], ["show", rid]):
        result = run_cli(args, env)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        [run] = [line for line in lines if line.startswith("✓ update_plan(")]
        assert re.search(r"\)  \d+\.\ds  → Plan recorded: 2 steps", run), run  # duration_ms, one-line result
        [wait] = [line for line in lines if "get_weather" in line]
        assert wait == '⧗ get_weather(city="Paris")  → waiting for the client\'s tool output (function_call)', wait


def test_an_old_log_with_function_call_pairs_still_replays():
    """Turns stored before `mcp_call` hold the agent's tool runs as function_call +
    function_call_output pairs: the renderer and `show` read them as tool runs, not client calls."""
    call = {"type": "function_call", "call_id": "call_1", "name": "update_plan", "arguments": json.dumps(PLAN)}
    output = {"type": "function_call_output", "call_id": "call_1", "output": "Plan recorded: 2 steps, 0 completed."}
    response = {"id": "resp_old", "status": "completed", "model": MODEL, "output": [call, output]}
    events = [{"type": "response.created", "response": {**response, "status": "in_progress", "output": []}},
              {"type": "response.output_item.added", "output_index": 0, "item": call},
              {"type": "response.output_item.done", "output_index": 0, "item": call},
              {"type": "response.output_item.added", "output_index": 1, "item": output},
              {"type": "response.output_item.done", "output_index": 1, "item": output},
              {"type": "response.completed", "response": response}]
    console = Console(file=io.StringIO(), width=200, color_system=None)
    renderer = TerminalRenderer(console, replaying=True)
    for event in events:
        renderer.handle(event)
    console.print(response_view(response))
    out = console.file.getvalue()
    assert out.count("✓ update_plan(") == 2 and out.count("→ Plan recorded: 2 steps") == 2, out
    assert "waiting for the client" not in out


def test_dropped_connection_resumes_without_gap_or_duplicate(server, fake_llm, fake_hub):
    token = fake_hub.user_token("cli-drop")
    proxy = CuttableProxy(server)
    try:
        fake_llm.push(Reply(tool_calls=[("update_plan", PLAN)]))
        held = deferred(fake_llm)
        child = spawn(["run", "resume me"], cli_env(proxy.url, token))
        child.expect("Plan recorded")  # the tool call's line: the turn now waits on the held reply
        assert proxy.cut() >= 1
        child.expect("connection lost")
        child.expect("resuming after event")
        release(held, text="after the cut")
        code, out = finish(child)
        assert code == 0, out
        assert out.count("✓ update_plan(") == 1 and "after the cut" in out and "✔ completed" in out
        assert proxy.accepted >= 2  # the first stream (sharing the create's connection), the resumed one
    finally:
        proxy.close()


def test_json_follow_across_cuts_has_every_sequence_number_once(server, fake_llm, fake_hub, tmp_path):
    token = fake_hub.user_token("cli-drop-json")
    proxy, proc = CuttableProxy(server), None
    try:
        held = deferred(fake_llm)
        with server.client(token) as c:
            rid = c.post("/v1/responses", json={"input": "x", "background": True}).json()["id"]
            wait_status(c, rid, {"in_progress"})
        # stdout is read through one buffered reader only: `readline` may buffer more than
        # its line (several events in one pipe read, under load), which `communicate`,
        # reading the pipe itself, would never see.
        with open(tmp_path / "stderr", "w") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "mlagent.cli", "attach", rid, "--json"],
                                    env=cli_env(proxy.url, token), stdout=subprocess.PIPE, stderr=stderr,
                                    stdin=subprocess.DEVNULL, text=True)
        first = json.loads(proc.stdout.readline())
        assert first["type"] == "response.created"
        for _ in range(2):  # cut, wait for the client to come back, cut again
            seen = proxy.accepted
            assert proxy.cut() >= 1
            wait_for(lambda: proxy.accepted > seen)  # noqa: B023
        release(held, text="x" * 50)
        out = proc.stdout.read()  # to the end: the client exits after the terminal event
        proc.wait(timeout=30)
        err = (tmp_path / "stderr").read_text()
        events = [first, *ndjson(out)]
        seqs = [e["sequence_number"] for e in events]
        assert seqs == list(range(len(seqs))), seqs  # no gap, no duplicate
        assert events[-1]["type"] == "response.completed"
        assert proc.returncode == 0
        assert err.count("resuming") == 2
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        proxy.close()


def test_ctrl_c_detaches_and_attach_resumes(server, fake_llm, fake_hub):
    token = fake_hub.user_token("cli-detach")
    held = deferred(fake_llm)
    env = cli_env(server.url, token)
    child = spawn(["run", "a long one"], env)
    child.expect(RESPONSE_ID)
    rid = child.after
    child.expect("in progress")
    child.sendintr()
    child.expect(f"mlagent attach {rid}")
    code, out = finish(child)
    assert code == 130, out
    with server.client(token) as c:
        assert c.get(f"/v1/responses/{rid}").json()["status"] == "in_progress"  # the turn went on
    release(held, text="finished while away")
    child = spawn(["attach", rid], env)
    code, out = finish(child)
    assert code == 0, out
    assert "finished while away" in out and "✔ completed" in out
    tail = run_cli(["attach", rid, "--after", "3", "--json"], env)
    assert tail.returncode == 0
    assert [e["sequence_number"] for e in ndjson(tail.stdout)][0] == 4
    later = run_cli(["attach", rid, "--after", "3"], env)
    assert later.returncode == 0 and f"● {rid}" in later.stdout  # the header, from the polled object


@pytest.fixture(scope="module")
def priced(tmp_path_factory, fake_llm, fake_hub):
    """One model call costs more than a $1 cap, so every turn pauses before it at $1."""
    directory = tmp_path_factory.mktemp("cli-priced")
    prices = price_file(directory, {MODEL: (1000.0, 2000.0)})
    server = module_server(directory, fake_llm, fake_hub, mlagent_price_table=prices).start(timeout=120)
    yield server
    server.stop()


def test_approval_prompt_answered_on_stdin_continues_same_response(priced, fake_llm, fake_hub):
    token = fake_hub.user_token("cli-approve")
    fake_llm.push(Reply(text="approved answer"))
    child = spawn(["run", "spend money", "--max-cost", "1"], cli_env(priced.url, token))
    child.expect(RESPONSE_ID)
    rid = child.after
    child.expect("approval required")
    child.expect("Approve\\?")
    child.sendline("c")
    child.expect("New cap in USD")
    child.sendline("100")
    child.expect("Feedback for the agent")
    child.sendline("go ahead")
    child.expect("approved")
    code, out = finish(child)
    assert code == 0, out
    assert "inference" in out and MODEL in out  # the pending action and its estimate were shown
    assert "approved answer" in out and "✔ completed" in out
    assert len(set(RESPONSE_ID.findall(out)) | {rid}) == 1  # one response id throughout
    with priced.client(token) as c:
        body = c.get(f"/v1/responses/{rid}").json()
    assert body["status"] == "completed" and body["max_cost_usd"] == 100


def test_approval_without_terminal_exits_4_and_approve_command_continues(priced, fake_llm, fake_hub):
    token = fake_hub.user_token("cli-approve-ci")
    fake_llm.push(Reply(text="later answer"))
    env = cli_env(priced.url, token)
    result = run_cli(["run", "spend money", "--max-cost", "1"], env)
    assert result.returncode == 4, result.stdout + result.stderr
    (rid,) = set(RESPONSE_ID.findall(result.stdout))
    assert f"mlagent approve {rid}" in result.stderr
    result = run_cli(["approve", rid, "--cap", "50", "--json"], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] in {"queued", "in_progress", "completed"}
    result = run_cli(["attach", rid, "--json"], env)
    assert result.returncode == 0, result.stderr
    events = ndjson(result.stdout)
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["id"] == rid


def test_json_outputs_parse(server, fake_llm, fake_hub):
    token = fake_hub.user_token("cli-json")
    env = cli_env(server.url, token)
    created = run_cli(["run", "hi", "--detach", "--json"], env)
    assert created.returncode == 0, created.stderr
    rid = json.loads(created.stdout)["id"]
    with server.client(token) as c:
        wait_status(c, rid, {"completed"})
    shown = json.loads(run_cli(["show", rid, "--json"], env).stdout)
    assert shown["id"] == rid and shown["status"] == "completed"
    models = json.loads(run_cli(["models", "--json"], env).stdout)
    assert MODEL in [m["id"] for m in models["models"]]
    usage = json.loads(run_cli(["usage", "--json"], env).stdout)
    assert usage["usage"]["totals"]["request_count"] >= 1
    cancelled = json.loads(run_cli(["cancel", rid, "--json"], env).stdout)
    assert cancelled["status"] == "completed"  # idempotent on a finished response
    followed = run_cli(["continue", rid, "and again", "--json"], env)
    assert followed.returncode == 0, followed.stderr
    events = ndjson(followed.stdout)
    assert events[0]["response"]["previous_response_id"] == rid
    assert events[-1]["type"] == "response.completed"


def test_errors_are_clear_and_never_show_the_token(server, fake_hub):
    token = fake_hub.user_token("cli-errors")
    env = cli_env(server.url, token)
    missing = run_cli(["show", "resp_" + "0" * 32], env)
    assert missing.returncode == 6 and "not_found" in missing.stderr and "Traceback" not in missing.stderr
    bad = run_cli(["show", "resp_" + "0" * 32], cli_env(server.url, "hf_not_a_real_token_123"))
    assert bad.returncode == 6 and "hf_not_a_real_token_123" not in bad.stdout + bad.stderr
    no_token = run_cli(["ls"], cli_env(server.url, None))
    assert no_token.returncode == 2 and "HF_TOKEN" in no_token.stderr
    down = run_cli(["show", "resp_x"], cli_env("http://127.0.0.1:9", token))
    assert down.returncode == 6 and "cannot reach" in down.stderr
    bad_cap = run_cli(["run", "x", "--max-cost", "9999"], env)
    assert bad_cap.returncode == 6 and "max_cost_usd" in bad_cap.stderr
    for result in (missing, bad_cap):
        assert token not in result.stdout + result.stderr


def test_failed_and_cancelled_turns_have_their_exit_codes(server, fake_llm, fake_hub):
    token = fake_hub.user_token("cli-codes")
    env = cli_env(server.url, token)
    fake_llm.push(Reply(status=400))
    failed = run_cli(["run", "this fails"], env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "✘ failed" in failed.stdout and "llm_error" in failed.stdout
    held = deferred(fake_llm)
    child = spawn(["run", "this is cancelled"], env)
    child.expect(RESPONSE_ID)
    rid = child.after
    child.expect("in progress")
    cancelled = run_cli(["cancel", rid], env)
    assert cancelled.returncode == 0 and rid in cancelled.stdout
    code, out = finish(child)
    release(held, text="too late")
    assert code == 3, out
    assert "■ cancelled" in out


def test_version_and_serve_help(tmp_path):
    env = cli_env("http://127.0.0.1:9", None)
    version = run_cli(["--version"], env)
    assert version.returncode == 0 and version.stdout.startswith("mlagent 0.")
    helped = run_cli(["serve", "--help"], env)
    assert helped.returncode == 0
    for text in ("--port", "--data-dir", "MLAGENT_PORT", "MLAGENT_DATABASE_URL", "HF_ENDPOINT",
                 "MLAGENT_MAX_SESSIONS_PER_ACCOUNT", "AGENT_API_KEY"):
        assert text in helped.stdout, text
    assert plain(helped.stdout) == helped.stdout
    migrated = run_cli(["migrate", "--data-dir", str(tmp_path / "d")], env, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    assert "latest migration" in migrated.stdout and list((tmp_path / "d").glob("*.db"))  # the flag was used


def test_ls_pages_my_responses_only(server, fake_hub):
    token, other = fake_hub.user_token("cli-ls"), fake_hub.user_token("cli-ls-other")
    with server.client(token) as c, server.client(other) as o:
        mine = [c.post("/v1/responses", json={"input": f"task {i}", "background": True}).json()["id"] for i in range(3)]
        theirs = o.post("/v1/responses", json={"input": "not yours", "background": True}).json()["id"]
        for rid in mine:
            wait_status(c, rid, {"completed"})
    env = cli_env(server.url, token)
    first = run_cli(["ls", "--limit", "2", "--json"], env)
    assert first.returncode == 0, first.stderr
    page = json.loads(first.stdout)
    assert [r["id"] for r in page["data"]] == mine[::-1][:2] and page["has_more"]
    rest = json.loads(run_cli(["ls", "--after", page["last_id"], "--json"], env).stdout)
    assert [r["id"] for r in rest["data"]] == mine[:1] and not rest["has_more"]
    table = run_cli(["ls", "--limit", "2"], env)
    assert table.returncode == 0
    assert mine[2] in table.stdout and "task 2" in table.stdout and theirs not in table.stdout
    assert f"mlagent ls --after {mine[1]}" in table.stdout


def test_token_prompt_on_a_terminal_is_not_echoed(server, fake_hub):
    token = fake_hub.user_token("cli-prompt")
    child = spawn(["ls"], cli_env(server.url, None))
    child.expect("Hugging Face token \\(not shown\\): ")
    child.sendline(token)
    code, out = finish(child)
    assert code == 0, out
    assert "no responses yet" in out
    assert token not in out  # getpass turned the echo off


def test_attach_to_a_long_turn_in_a_terminal_finishes(server, fake_llm, fake_hub):
    """A long answer printed while rich redraws the footer: the two must not wait on each other."""
    token = fake_hub.user_token("cli-long")
    long_answer = "\n".join(f"- item {i}: " + "word " * 12 for i in range(1500))
    fake_llm.push(Reply(tool_calls=[("update_plan", PLAN)]), Reply(text=long_answer, chunks=150))
    with server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "long", "background": True}).json()["id"]
        assert wait_status(c, rid, {"completed"}, timeout=120)["status"] == "completed"
    for _ in range(3):
        child = spawn(["attach", rid], cli_env(server.url, token), timeout=60)
        code, out = finish(child, timeout=60)
        assert code == 0, out[-2000:]
        assert "item 1499:" in out and "✔ completed" in out
