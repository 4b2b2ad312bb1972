"""The agent: the loop, the LLM client, and tools.

Given a message history and a tool set it yields typed steps; it owns no storage and
no HTTP surface (the runtime turns steps into response events).
"""
