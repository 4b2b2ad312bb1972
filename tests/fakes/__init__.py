"""Fake upstreams served over real HTTP: an OpenAI-compatible LLM and a Hugging Face hub."""
