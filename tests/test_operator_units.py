"""Unit tests for the organism's pure parts: the file parser, example calls built from
JSON Schema, payload checks, and redaction."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, strategies as st

from mlagent.organism import payload as payloads
from mlagent.organism.capabilities import example_value
from mlagent.organism.sanitise import MASK, sanitise, url_without_credentials
from mlagent.organism.spec import DEFAULT_PATH, OrganismError, load, parse

TOOLS = ["update_plan", "delegate", "hub_search", "run_code"]
MODELS = ["m1", "m2"]


def doc(**agent) -> str:
    return yaml.safe_dump({"agents": [{"name": "a", "system_prompt": "p", **agent}]})


def test_the_built_in_organism_declares_the_main_agent_and_its_researcher():
    spec = load(None, TOOLS, MODELS)
    main, research = spec.agents
    assert (main.name, research.name) == ("ml-agent", "researcher")
    assert main.peers == ["researcher"] and main.select_tools(TOOLS) == TOOLS
    assert research.select_tools(TOOLS) == ["update_plan", "hub_search"]
    assert DEFAULT_PATH.exists() and main.token_budget > research.token_budget > 0


@pytest.mark.parametrize("text, reason", [
    ("agents: [", "not valid YAML"),
    ("- a\n- b\n", "must be a mapping"),
    (yaml.safe_dump({"agents": []}), "agents"),
    (doc(tools=["nope"]), "unknown tool 'nope'"),
    (doc(model="m3"), "unknown model 'm3'"),
    (doc(peers=["a"]), "peer 'a'"),
    (doc(name="Upper"), "agents.0.name"),
    (doc(colour="red"), "colour"),
    (doc(token_budget=0), "token_budget"),
    (doc(input_schema={"type": "string"}), "input_schema"),
    (yaml.safe_dump({"agents": [{"name": "a", "system_prompt": "p"}, {"name": "a", "system_prompt": "q"}]}),
     "declared twice"),
])
def test_broken_documents_are_refused_with_the_reason(text, reason):
    with pytest.raises(OrganismError) as err:
        parse(text, "f.yaml", TOOLS, MODELS)
    assert reason in err.value.reason and err.value.reason.startswith("f.yaml")


def test_missing_files_are_refused(tmp_path):
    with pytest.raises(OrganismError, match="cannot be read"):
        load(tmp_path / "absent.yaml", TOOLS, MODELS)


def test_glob_patterns_may_match_nothing():
    assert parse(doc(tools=["gpu_*"]), "f", TOOLS, MODELS).agents[0].select_tools(TOOLS) == []


_leaf = st.sampled_from([
    {"type": "string"}, {"type": "string", "minLength": 5}, {"type": "integer", "minimum": 3},
    {"type": "number"}, {"type": "boolean"}, {"enum": ["x", "y"]}, {"type": ["null", "integer"]},
    {"type": "string", "default": "d"},
])
_schema = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.builds(lambda items: {"type": "array", "items": items}, inner),
        st.builds(lambda props: {"type": "object", "properties": props, "required": sorted(props)},
                  st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)),
    ),
    max_leaves=6,
)


def _conforms(schema, value) -> bool:
    if "enum" in schema:
        return value in schema["enum"]
    kind = schema.get("type", "object")
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" in kinds:
        return isinstance(value, dict) and all(k in value and _conforms(schema["properties"][k], value[k])
                                               for k in schema.get("required", []))
    if "array" in kinds:
        return isinstance(value, list) and all(_conforms(schema["items"], v) for v in value)
    if "string" in kinds:
        return isinstance(value, str) and len(value) >= schema.get("minLength", 0)
    if "integer" in kinds:
        return isinstance(value, int) and not isinstance(value, bool) and value >= schema.get("minimum", value)
    if "number" in kinds:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if "boolean" in kinds:
        return isinstance(value, bool)
    return False


@given(_schema)
def test_example_values_conform_to_their_schema(schema):
    assert _conforms(schema, example_value(schema))


def test_payload_checks_name_the_field():
    schema = {"type": "object", "properties": {"text": {"type": "string"}, "n": {"type": "integer"},
                                               "mode": {"enum": ["fast", "slow"]}},
              "required": ["text"], "additionalProperties": False}
    assert payloads.problems(schema, {"text": "hi", "n": 2, "mode": "fast"}) == []
    assert payloads.problems(schema, {}) == [("payload.text", "is required")]
    assert payloads.problems(schema, {"text": "x", "n": True})[0][0] == "payload.n"
    assert payloads.problems(schema, {"text": "x", "mode": "medium"})[0][0] == "payload.mode"
    assert payloads.problems(schema, {"text": "x", "extra": 1})[0][0] == "payload.extra"
    assert payloads.as_input(payloads.normalise("plain")) == "plain"
    assert '"n": 2' in payloads.as_input({"text": "x", "n": 2})


def test_redaction_masks_secret_keys_token_values_and_known_secrets():
    config = {"api_key": "abc", "nested": {"Authorization": "Bearer x", "token_budget": 5},
              "prompt": "use hf_abcdefghijkl and sk-abcdefghijk and my-server-secret", "list": ["hf_0123456789ab"]}
    out = sanitise(config, ["my-server-secret", None])
    assert out["api_key"] == MASK and out["nested"]["Authorization"] == MASK
    assert out["nested"]["token_budget"] == 5
    assert out["prompt"] == f"use {MASK} and {MASK} and {MASK}" and out["list"] == [MASK]
    assert url_without_credentials("https://user:pw@host:8080/v1?key=1") == "https://host:8080/v1"
