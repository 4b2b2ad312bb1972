"""Tools the agent can call. Each is a plain class with a name, a JSON schema, a cost
estimate and an `invoke`; the loop treats them all alike."""
