"""Every agent tool, driven end to end by the scripted LLM through the real server against
the fake hub over real HTTP: what a client sees in output[], the stream and artifacts[]."""

from __future__ import annotations

from .agent_support import run_turn, script


def test_hub_lookups_models_datasets_spaces_papers_and_viewer(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("lookup")
    script(fake_llm,
           [("hub_search", {"query": "whisper"}), ("hub_search", {"kind": "dataset", "query": "imdb"}),
            ("hub_search", {"kind": "space", "filter": "leaderboard"})],
           [("hub_repo_details", {"repo_id": "BAAI/bge-m3"}),
            ("hub_repo_details", {"repo_id": "HuggingFaceH4/ultrachat_200k", "kind": "dataset"})],
           [("paper_search", {"query": "sparse autoencoders"}), ("paper_details", {"paper_id": "2502.09992"})],
           [("dataset_inspect", {"dataset": "stanfordnlp/imdb", "rows": 2})],
           "All looked up.")
    turn = run_turn(agent_server, token, "look things up")
    assert turn.response["status"] == "completed", turn.response
    outs = [out for _, _, out in turn.calls()]
    assert "openai/whisper-large-v3-turbo" in outs[0] and "distil-whisper/distil-large-v3" in outs[0]
    assert "stanfordnlp/imdb" in outs[1] and f"{fake_hub.url}/datasets/stanfordnlp/imdb" in outs[1]
    assert "mteb/leaderboard" in outs[2] and "sdk=gradio" in outs[2]
    assert "Dense, sparse and multi-vector" in outs[3] and "downloads: 6000000" in outs[3]
    assert "UltraChat 200k" in outs[4]
    assert "2309.08600" in outs[5] and f"{fake_hub.url}/papers/2406.04093" in outs[5]
    assert "Large Language Diffusion Models" in outs[6] and "GSAI-ML/LLaDA-8B-Instruct" in outs[6]
    assert "train (25,000 rows)" in outs[7] and "label: ClassLabel" in outs[7] and "A wonderful film." in outs[7]
    assert turn.text == "All looked up."
    # The tools were offered to the model and ran as the caller.
    offered = {t["function"]["name"] for t in fake_llm.requests[0].body["tools"]}
    assert {"hub_search", "paper_search", "dataset_inspect", "run_command", "hf_job_launch", "repo_upload",
            "research", "update_plan"} <= offered


def test_lookup_failures_come_back_as_tool_results(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("misses")
    script(fake_llm,
           [("hub_repo_details", {"repo_id": "nobody/missing"}), ("dataset_inspect", {"dataset": "nobody/none"}),
            ("paper_details", {"paper_id": "0000.00000"}), ("hub_search", {"kind": "robot", "query": "x"}),
            ("hub_search", {"query": "x"}, ), ("no_such_tool", {})],
           "Reported the misses.")
    turn = run_turn(agent_server, token, "find missing things")
    assert turn.response["status"] == "completed"
    outs = [out for _, _, out in turn.calls()]
    assert outs[0].startswith("Error: Not found (HTTP 404)")
    assert "cannot read 'nobody/none' (HTTP 404)" in outs[1]
    assert outs[2].startswith("Error: Not found (HTTP 404)")
    assert "'kind' must be one of model, dataset, space" in outs[3]
    assert outs[4] == "No models found for x."
    assert "unknown tool 'no_such_tool'" in outs[5]


def test_sandbox_files_and_commands(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("coder")
    script(fake_llm,
           [("write_file", {"path": "pkg/calc.py", "content": "def add(a, b):\n    return a - b\n"})],
           [("edit_file", {"path": "pkg/calc.py", "old": "a - b", "new": "a + b"})],
           [("read_file", {"path": "pkg/calc.py"})],
           [("run_command", {"command": "cd pkg && python -c 'import calc; print(calc.add(2, 3))' && ls"})],
           [("run_python", {"code": "import sklearn, pandas\nprint('libs ok', open('pkg/calc.py').read().count('+'))"})],
           [("run_command", {"command": "echo oops >&2; exit 3"})],
           [("read_file", {"path": "../../etc/passwd"})],
           "Fixed and tested.")
    turn = run_turn(agent_server, token, "write and test code")
    assert turn.response["status"] == "completed", turn.response
    outs = [out for _, _, out in turn.calls()]
    assert outs[0] == "Wrote 32 bytes to pkg/calc.py."
    assert outs[1].startswith("Edited pkg/calc.py")
    assert "return a + b" in outs[2]
    assert "exit code: 0" in outs[3] and "5" in outs[3] and "calc.py" in outs[3]
    assert "libs ok 1" in outs[4]
    assert "exit code: 3" in outs[5] and "oops" in outs[5]
    assert "leaves the sandbox directory" in outs[6]


def test_tool_output_cut_to_4kb_with_full_text_in_tool_log(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("verbose")
    script(fake_llm, [("run_python", {"code": "print('x' * 10000)"})], "Long output seen.")
    turn = run_turn(agent_server, token, "print a lot")
    out = turn.output_of("run_python")
    assert len(out.encode()) < 4300 and "truncated" in out
    logs = turn.of_type("response.tool_log")
    assert len(logs) == 1 and "x" * 10000 in logs[0]["text"]


def test_repo_create_upload_and_session_collection(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("pusher")
    script(fake_llm,
           [("repo_create", {"repo_id": "tiny-model"})],
           [("write_file", {"path": "out/README.md", "content": "# tiny\n"}),
            ("write_file", {"path": "out/config.json", "content": "{}"}),
            ("run_command", {"command": "ln -s /etc/hostname out/leak.txt && ln -s /etc out/etc"})],
           [("repo_upload", {"repo_id": "tiny-model", "path": "out"})],
           [("repo_upload", {"repo_id": "pusher/tiny-data", "kind": "dataset", "path": "out/config.json",
                            "path_in_repo": "data/config.json"})],
           [("repo_create", {"repo_id": "tiny-demo", "kind": "space"})],
           "Pushed.")
    turn = run_turn(agent_server, token, "push things")
    assert turn.response["status"] == "completed", turn.response
    model = fake_hub.repos[("model", "pusher/tiny-model")]
    assert model["files"]["README.md"] == b"# tiny\n" and model["files"]["config.json"] == b"{}"
    assert set(model["files"]) <= {"README.md", "config.json", ".gitattributes"}  # links are not followed
    assert fake_hub.repos[("dataset", "pusher/tiny-data")]["files"]["data/config.json"] == b"{}"
    assert fake_hub.repos[("space", "pusher/tiny-demo")]["sdk"] == "gradio"
    repos = {(a["type"], a["repo_id"]) for a in turn.artifacts() if "repo_id" in a}
    assert repos == {("model", "pusher/tiny-model"), ("dataset", "pusher/tiny-data"), ("space", "pusher/tiny-demo")}
    # Deduplicated on the response although announced more than once in the stream.
    assert len(turn.artifacts("model")) == 1
    assert len([e for e in turn.of_type("response.artifact.created") if e["artifact"]["type"] == "model"]) >= 2
    [coll] = turn.artifacts("collection")
    assert coll["url"] == f"{fake_hub.url}/collections/{coll['slug']}"
    items = {(i["type"], i["id"]) for i in fake_hub.collections[coll["slug"]]["items"]}
    assert items == repos
    assert f"{fake_hub.url}/spaces/pusher/tiny-demo" in turn.output_of("repo_create")


def test_permission_errors_come_back_as_tool_results(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("reader", role="read")
    script(fake_llm, [("repo_create", {"repo_id": "nope"})],
           [("hf_job_launch", {"image": "python:3.12", "command": ["python", "-c", "1"]})],
           "You need a write token.")
    turn = run_turn(agent_server, token, "try to write")
    assert turn.response["status"] == "completed"
    assert turn.output_of("repo_create").startswith("Error: Permission denied (HTTP 403)")
    assert turn.output_of("hf_job_launch").startswith("Error: Permission denied (HTTP 403)")
    assert turn.response["artifacts"] == []
    assert ("model", "reader/nope") not in fake_hub.repos


def test_cost_estimates_for_the_budget(tmp_path):
    from mlagent.agent.tools.hubclient import HubClient
    from mlagent.agent.tools.jobs import JobRunTool
    from mlagent.agent.tools.workspace import RunPythonTool
    from mlagent.sandbox import Limits, Sandbox
    from mlagent.usage.estimates import job_cost, sandbox_cost
    from mlagent.usage.prices import load_prices

    prices = load_prices(None)  # the server's own table (usage/prices.yaml): one source of prices
    assert JobRunTool(HubClient("http://hub", "http://viewer")).estimate_cost_usd({"flavor": "h200"}) == 0.0
    jobs = JobRunTool(HubClient("http://hub", "http://viewer"),
                      job_price=lambda flavor, seconds: job_cost(prices, flavor, seconds).usd)
    assert jobs.estimate_cost_usd({}) == 0.005  # cpu-basic, 30 minutes
    assert jobs.estimate_cost_usd({"flavor": "a10g-small", "timeout": "2h"}) == 2.0
    assert jobs.estimate_cost_usd({"flavor": "h200x8", "timeout": 5400}) == 60.0
    sandbox = Sandbox(tmp_path, Limits(wall_seconds=3600), isolation="none")
    assert RunPythonTool(sandbox, None).estimate_cost_usd({}) == 0.0  # no price injected: free
    run = RunPythonTool(sandbox, None, sandbox_price=lambda seconds: sandbox_cost(prices, seconds).usd)
    assert run.estimate_cost_usd({}) == 0.01 and run.estimate_cost_usd({"timeout_seconds": 360}) == 0.001
