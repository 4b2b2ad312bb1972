"""Who is calling: Hugging Face tokens (/v1) and X-API-Key accounts (/api, /ml-api)."""
