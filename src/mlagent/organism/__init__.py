"""The organism: the server's agent configuration (a YAML file declaring the agents),
and the live roster the runtime consults for each turn (prompt, tools, pause state)."""
