"""A turn's stored request is typed, and rows written before the model existed still load."""

from mlagent.runtime.stored import StoredRequest


def test_rows_of_older_servers_load():
    task = StoredRequest.load({"input": "hi", "metadata": {"surface": "task"}, "allowed_tools": ["update_plan"],
                               "server_llm_key": True})
    assert task.credential == "server" and task.allowed_tools == ["update_plan"]
    inject = StoredRequest.load({"input": "go", "agent": "helper", "sender": "ops", "payload": {"x": 1},
                                 "credential": "server"})
    assert (inject.agent, inject.sender, inject.payload, inject.credential) == ("helper", "ops", {"x": 1}, "server")
    plain = StoredRequest.load({"input": [{"role": "user", "content": "hi"}], "truncation": "disabled",
                                "model_options": {"temperature": 0.5}, "unknown_key_of_a_newer_server": 1})
    assert plain.credential == "caller" and plain.options().compact is False
    assert plain.options().model.temperature == 0.5


def test_dump_keeps_only_what_was_set():
    stored = StoredRequest(input="hi", credential="server", allowed_tools=[])
    assert stored.dump() == {"input": "hi", "credential": "server", "allowed_tools": []}
    assert StoredRequest.load(stored.dump()) == stored
