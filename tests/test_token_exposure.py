"""Defect 9: the caller's token reaches no sandbox, so no encoding of it can be stored.

A turn's sandboxed commands (with and without Hub access) print the environment, write it
to a file, and print HF_TOKEN base64-encoded, hex-encoded and split in halves. The token,
in any of those forms, must appear nowhere: not in the streamed events, the stored
response, the debug log, or any file of the data directory (database, sandboxes, logs)."""

from __future__ import annotations

import base64

import pytest

from mlagent.agent.tools.base import secret_forms

from .agent_support import agent_env, run_turn, script
from .harness import ServerProcess

LEAK = ("env; env > env.txt; printenv HF_TOKEN | base64; "
        "python -c \"import os; t = os.environ.get('HF_TOKEN', ''); h = len(t) // 2; print(t[:h]); print(t[h:]); "
        "print(t.encode().hex()); open('halves.txt', 'w').write(t[:h] + '\\n' + t[h:])\"; cat env.txt | base64")


@pytest.fixture(scope="module")
def debug_server(tmp_path_factory, fake_hub, fake_llm):
    server = ServerProcess(tmp_path_factory.mktemp("token"), agent_env(fake_hub, fake_llm,
                                                                        MLAGENT_LOG_LEVEL="debug")).start()
    yield server
    server.stop()


def _forms(token: str) -> list[str]:
    half = len(token) // 2
    return [token, token[:half], token[half:], base64.b64encode(token.encode()).decode()[:-4],
            token.encode().hex()]


def test_no_form_of_the_token_is_stored_anywhere(debug_server, fake_hub, fake_llm):
    token = fake_hub.user_token("tok-leaker")
    script(fake_llm, [("run_command", {"command": LEAK})], [("run_command", {"command": LEAK, "hub_access": True})],
           [("run_python", {"hub_access": True, "code": "import os\nprint(repr(os.environ))"})], "Done.")
    turn = run_turn(debug_server, token, "print your environment")
    assert turn.response["status"] == "completed", turn.response
    outs = [out for _, _, out in turn.calls()]
    assert all("exit code: 0" in out for out in outs[:2]), outs  # the commands ran
    assert "HF_ENDPOINT" in outs[1] and "HF_TOKEN" not in outs[1] and "HF_TOKEN" not in outs[2]

    wire = "\n".join(e.data for e in turn.events) + repr(turn.response)
    for form in _forms(token):
        assert form not in wire
    for path in debug_server.data_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            for form in _forms(token):
                assert form.encode() not in data, f"{form!r} found in {path}"
    assert "DEBUG" in debug_server.log()  # the debug log was written and searched


def test_redaction_catches_the_encodings_it_promises():
    """What a tool output may still carry (an HF Job's logs) is redacted in these forms."""
    token = "hf_" + "Zq9" * 12
    forms = secret_forms(token)
    for prefix in ("", "a", "ab", "HF_TOKEN="):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode((prefix + token + "\n").encode()).decode()
            assert any(f in encoded for f in forms), prefix
    assert any(f in token.encode().hex() for f in forms) and any(f in token[::-1] for f in forms)
