"""The base models a local fine-tuning job can start from: tiny causal language models
built from a config (random initialisation with a fixed seed, no Hub download).

Pure data on purpose: the server lists these (`/ml-api/base-models/`) and validates
`model_id` against them without importing torch; only the trainer subprocess builds them.
All of them use the same byte-level tokenizer (`train.byte_tokenizer`): 256 byte tokens
plus `<pad>` and `<|endoftext|>`, so any UTF-8 text trains without a vocabulary file.
"""

from __future__ import annotations

from typing import Any

TOKENIZER = "byte-level: 256 byte tokens + <pad> + <|endoftext|> (vocab 258), built in code"

BASE_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny-gpt2": {"architecture": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 64, "n_positions": 256,
                  "seed": 0, "tokenizer": TOKENIZER},
    "tiny-llama": {"architecture": "llama", "num_hidden_layers": 2, "num_attention_heads": 2,
                   "num_key_value_heads": 1, "hidden_size": 64, "intermediate_size": 128,
                   "max_position_embeddings": 256, "seed": 0, "tokenizer": TOKENIZER},
}
