"""The seed's example tasks as scripted scenarios: what a client sees (events, output,
artifacts, usage) when the agent researches, compares models, continues a session,
inspects a dataset. (The HF Job example lives in test_agent_jobs.py.) Also the research
sub-agent's token guard and the loop's context guard."""

from __future__ import annotations

from .agent_support import agent_env, run_turn, script
from .harness import ServerProcess

MODEL = "moonshotai/Kimi-K2.6:novita"


def test_research_diffusion_lms_with_a_sub_agent_citing_hub_pages(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("researcher")
    script(fake_llm,
           [("research", {"task": "Recent diffusion language models for text generation: what changed, why it "
                                  "matters; find 2 HF paper or model pages."})],
           # the sub-agent, in its own context
           [("paper_search", {"query": "diffusion language models"})],
           [("paper_details", {"paper_id": "2502.09992"}), ("hub_search", {"filter": "diffusion"})],
           "LLaDA (https://hf.co/papers/2502.09992) trains a masked diffusion LM from scratch; Dream 7B adapts an AR "
           "model. Models: GSAI-ML/LLaDA-8B-Instruct.",
           # back in the main conversation
           "- Diffusion LMs now scale to 8B (LLaDA)\n- Sources: papers/2502.09992, GSAI-ML/LLaDA-8B-Instruct")
    turn = run_turn(agent_server, token, {
        "model": MODEL, "max_cost_usd": 3.0,
        "input": "Research diffusion language models for text generation. In 5 concise bullets, explain what changed "
                 "recently, why it matters, and cite 2 relevant Hugging Face paper pages or model pages if available."})
    assert turn.response["status"] == "completed", turn.response
    # Only the research call is in the main output; the sub-agent's lookups stay in its own context.
    assert [name for name, _, _ in turn.calls()] == ["research"]
    out = turn.output_of("research")
    assert out.startswith("Research summary after 3 lookup(s)") and "LLaDA" in out
    sub_requests = fake_llm.requests[1:4]
    assert all(r.messages[0]["content"].startswith("You are a research sub-agent") for r in sub_requests)
    assert {t["function"]["name"] for t in sub_requests[0].body["tools"]} == {
        "hub_search", "hub_repo_details", "paper_search", "paper_details", "dataset_inspect"}
    # Its tool results reached the sub-agent, not the main conversation.
    assert any("Large Language Diffusion Models" in str(m.get("content")) for m in sub_requests[2].messages)
    assert not any("Large Language Diffusion Models" in str(m.get("content")) for m in fake_llm.requests[4].messages)
    assert "papers/2502.09992" in turn.text
    assert turn.response["usage"]["llm_calls"] == 5  # main + sub-agent calls, all counted


def test_research_sub_agent_token_guard_forces_a_summary(tmp_path, fake_hub, fake_llm):
    server = ServerProcess(tmp_path, agent_env(fake_hub, fake_llm, MLAGENT_RESEARCH_MAX_TOKENS="30")).start()
    try:
        token = fake_hub.user_token("guarded")
        script(fake_llm, [("research", {"task": "sparse autoencoders frontier"})],
               [("paper_search", {"query": "sparse autoencoders"})],  # 11+7 tokens
               [("paper_details", {"paper_id": "2406.04093"})],          # 36 > 30: stop here
               "SAEs scale to 16M latents (papers/2406.04093).",          # the forced wrap-up
               "Frontier: scaling SAEs; open problem: evaluation.")
        turn = run_turn(server, token, "Research sparse autoencoders for mechanistic interpretability.")
    finally:
        server.stop()
    assert turn.response["status"] == "completed", turn.response
    out = turn.output_of("research")
    assert "stopped early by its token/step guard" in out and "16M latents" in out
    wrap_up = fake_llm.requests[3]
    assert "tools" not in wrap_up.body and wrap_up.messages[-1]["content"].startswith("Stop researching now")


def test_compare_asr_models_with_three_direct_lookups(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("asr")
    ids = ["openai/whisper-large-v3-turbo", "distil-whisper/distil-large-v3", "deepdml/faster-whisper-large-v3-turbo-ct2"]
    script(fake_llm, [("hub_repo_details", {"repo_id": i}) for i in ids],
           "Recommendation: faster-whisper with large-v3-turbo.\n```python\nfrom faster_whisper import WhisperModel\n```")
    turn = run_turn(agent_server, token, {
        "model": MODEL, "max_cost_usd": 2.0,
        "instructions": "Keep this as a quick model-selection answer. Do not launch broad research sub-agents. Use at "
                        "most three direct Hugging Face lookups, then answer.",
        "input": "Compare these three choices for quickly transcribing batches of English audio on one GPU: "
                 + ", ".join(ids) + ". Recommend one and include a short usage snippet."})
    assert turn.response["status"] == "completed"
    assert [(n, a["repo_id"]) for n, a, _ in turn.calls()] == [("hub_repo_details", i) for i in ids]
    assert "8x faster" in turn.calls()[0][2] and "6x faster" in turn.calls()[1][2]
    # The instructions reached the model ahead of the task.
    messages = fake_llm.requests[0].messages
    assert messages[1] == {"role": "system", "content": turn.response["instructions"]} or "Use at most three" in str(messages)
    types = turn.types()
    # One `mcp_call` item per lookup (the call and its result in one item), then the answer.
    added = [e["item"]["type"] for e in turn.of_type("response.output_item.added")]
    assert added == ["mcp_call"] * 3 + ["message"] and types[-1] == "response.completed"
    assert types.count("response.mcp_call.completed") == 3
    assert turn.response["artifacts"] == []


def test_rag_stack_with_four_lookups(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("rag")
    ids = ["Qwen/Qwen3-Embedding-8B", "BAAI/bge-m3", "jinaai/jina-embeddings-v4", "BAAI/bge-reranker-v2-m3"]
    script(fake_llm, [("hub_repo_details", {"repo_id": i}) for i in ids[:2]],
           [("hub_repo_details", {"repo_id": i}) for i in ids[2:]],
           "Use BAAI/bge-m3 + BAAI/bge-reranker-v2-m3.")
    turn = run_turn(agent_server, token, {"model": MODEL, "input": "Pick an embedding + reranker stack: " + ", ".join(ids)})
    assert turn.response["status"] == "completed"
    assert [a["repo_id"] for _, a, _ in turn.calls()] == ids
    assert all(not out.startswith("Error") for _, _, out in turn.calls())
    assert turn.text == "Use BAAI/bge-m3 + BAAI/bge-reranker-v2-m3."


def test_multiturn_reuses_the_previous_recommendation(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("startup")
    script(fake_llm, [("hub_repo_details", {"repo_id": "BAAI/bge-m3"}),
                      ("hub_repo_details", {"repo_id": "Qwen/Qwen3-Embedding-8B"})],
           "Default: BAAI/bge-m3 (568M, low latency).")
    first = run_turn(agent_server, token, {
        "model": MODEL, "instructions": "This is turn 1 of a multiturn API example. Keep it concise.",
        "input": "For technical-document RAG, compare BAAI/bge-m3 and Qwen/Qwen3-Embedding-8B. Recommend one."})
    assert first.response["status"] == "completed"
    script(fake_llm, "```python\nfrom sentence_transformers import SentenceTransformer\n"
                     "model = SentenceTransformer('BAAI/bge-m3')\n```")
    second = run_turn(agent_server, token, {
        "previous_response_id": first.response["id"],
        "instructions": "This is turn 2. Reuse the prior recommendation; do not restate the comparison.",
        "input": "Using your recommended embedding model, write a minimal script indexing 100 Markdown files."})
    assert second.response["status"] == "completed"
    assert second.response["session_id"] == first.response["session_id"]
    assert second.calls() == [] and "BAAI/bge-m3" in second.text
    history = fake_llm.requests[-1].messages
    # Turn 2's model call carries turn 1: its lookups' results and its recommendation.
    assert any(m["role"] == "tool" and "BGE-M3" in m["content"] for m in history)
    assert any(m["role"] == "assistant" and m.get("content") == "Default: BAAI/bge-m3 (568M, low latency)."
               for m in history)


def test_inspect_ultrachat_for_sft(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("sft")
    script(fake_llm, [("dataset_inspect", {"dataset": "HuggingFaceH4/ultrachat_200k", "split": "train_sft"})],
           [("hub_repo_details", {"repo_id": "Qwen/Qwen3-0.6B"})],
           "Splits train_sft/test_sft with `messages`; plan: LoRA SFTTrainer, r=16, 1 hour.")
    turn = run_turn(agent_server, token, {
        "model": MODEL, "instructions": "Do a practical ML-engineering audit; do not launch training jobs.",
        "input": "Inspect the HuggingFaceH4/ultrachat_200k dataset for supervised fine-tuning viability."})
    assert turn.response["status"] == "completed"
    out = turn.output_of("dataset_inspect")
    assert "train_sft (207,865 rows)" in out and "test_sft (23,110 rows)" in out
    assert "messages: list[{content: string, role: string}]" in out
    assert "sample rows from default/train_sft" in out
    assert "hf_job_launch" not in [n for n, _, _ in turn.calls()]


def test_context_guard_compacts_then_fails_clearly(tmp_path, fake_hub, fake_llm):
    server = ServerProcess(tmp_path, agent_env(fake_hub, fake_llm, MLAGENT_CONTEXT_WINDOW_TOKENS="6000")).start()
    try:
        token = fake_hub.user_token("longctx")
        # Six big tool results (~1,250 tokens each) would overflow the 6,000-token window; old ones get elided.
        script(fake_llm, *[[("run_python", {"code": f"print('{i}' * 5000)"})] for i in range(6)], "Fitted.")
        turn = run_turn(server, token, "produce lots of output")
        assert turn.response["status"] == "completed", turn.response
        last = fake_llm.requests[-1].messages
        assert any("elided to fit the context window" in str(m.get("content")) for m in last)
        assert len(str(last)) // 4 < 6000
        # An input that cannot fit at all fails the turn with a clear error.
        turn = run_turn(server, token, "x " * 8000)
        assert turn.response["status"] == "failed"
        assert turn.response["error"]["code"] == "context_length_exceeded"
    finally:
        server.stop()
