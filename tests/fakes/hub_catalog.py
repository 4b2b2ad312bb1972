"""Seed content for the fake hub: the models, datasets and papers the seed's example tasks
name (values are test data, not facts about the real Hub)."""

from __future__ import annotations

MODELS = [
    {"id": "openai/whisper-large-v3-turbo", "pipeline_tag": "automatic-speech-recognition", "library_name": "transformers",
     "downloads": 4_100_000, "likes": 2400, "tags": ["audio", "whisper", "en"],
     "card": "# Whisper large-v3-turbo\nA pruned large-v3 with 4 decoder layers: ~8x faster, small WER loss."},
    {"id": "distil-whisper/distil-large-v3", "pipeline_tag": "automatic-speech-recognition",
     "library_name": "transformers", "downloads": 900_000, "likes": 330, "tags": ["audio", "whisper", "en"],
     "card": "# Distil-Whisper large-v3\nEnglish-only distilled Whisper, 6x faster, within 1% WER."},
    {"id": "deepdml/faster-whisper-large-v3-turbo-ct2", "pipeline_tag": "automatic-speech-recognition",
     "library_name": "ctranslate2", "downloads": 300_000, "likes": 90, "tags": ["faster-whisper", "ctranslate2"],
     "card": "# faster-whisper large-v3-turbo\nCTranslate2 conversion for faster-whisper."},
    {"id": "Qwen/Qwen3-Embedding-8B", "pipeline_tag": "feature-extraction", "library_name": "sentence-transformers",
     "downloads": 700_000, "likes": 500, "tags": ["embeddings", "sentence-transformers"],
     "card": "# Qwen3-Embedding-8B\nTop of MTEB multilingual; 8B parameters, 4096-d embeddings."},
    {"id": "BAAI/bge-m3", "pipeline_tag": "feature-extraction", "library_name": "sentence-transformers",
     "downloads": 6_000_000, "likes": 2300, "tags": ["embeddings", "sentence-transformers", "arxiv:2402.03216"],
     "card": "# BGE-M3\nDense, sparse and multi-vector retrieval, 8192 tokens, 568M parameters."},
    {"id": "jinaai/jina-embeddings-v4", "pipeline_tag": "visual-document-retrieval", "library_name": "transformers",
     "downloads": 400_000, "likes": 400, "tags": ["embeddings", "multimodal"],
     "card": "# jina-embeddings-v4\nUniversal embeddings for text and visual documents, 3.8B parameters."},
    {"id": "BAAI/bge-reranker-v2-m3", "pipeline_tag": "text-classification", "library_name": "sentence-transformers",
     "downloads": 2_500_000, "likes": 700, "tags": ["reranker", "cross-encoder"],
     "card": "# bge-reranker-v2-m3\nLightweight multilingual cross-encoder reranker (568M)."},
    {"id": "Qwen/Qwen3-0.6B", "pipeline_tag": "text-generation", "library_name": "transformers",
     "downloads": 5_000_000, "likes": 800, "tags": ["text-generation", "conversational"],
     "card": "# Qwen3-0.6B\nSmall dense causal LM with thinking/non-thinking modes."},
    {"id": "distilbert/distilbert-base-uncased", "pipeline_tag": "fill-mask", "library_name": "transformers",
     "downloads": 10_000_000, "likes": 700, "tags": ["fill-mask", "en"],
     "card": "# DistilBERT base uncased\nA distilled BERT: 40% smaller, 60% faster."},
    {"id": "GSAI-ML/LLaDA-8B-Instruct", "pipeline_tag": "text-generation", "library_name": "transformers",
     "downloads": 60_000, "likes": 300, "tags": ["diffusion", "text-generation", "arxiv:2502.09992"],
     "card": "# LLaDA 8B Instruct\nA masked diffusion language model trained from scratch."},
    {"id": "Dream-org/Dream-v0-Instruct-7B", "pipeline_tag": "text-generation", "library_name": "transformers",
     "downloads": 30_000, "likes": 150, "tags": ["diffusion", "text-generation", "arxiv:2508.15487"],
     "card": "# Dream 7B\nA diffusion LM initialised from an autoregressive model."},
]

DATASETS = [
    {"id": "HuggingFaceH4/ultrachat_200k", "downloads": 150_000, "likes": 600, "tags": ["conversational", "sft"],
     "card": "# UltraChat 200k\nA filtered UltraChat used to train Zephyr.",
     "splits": {"train_sft": 207865, "test_sft": 23110, "train_gen": 256032, "test_gen": 28304},
     "features": {"prompt": {"dtype": "string", "_type": "Value"},
                  "prompt_id": {"dtype": "string", "_type": "Value"},
                  "messages": [{"content": {"dtype": "string", "_type": "Value"},
                                "role": {"dtype": "string", "_type": "Value"}}]},
     "rows": [{"prompt": "How does photosynthesis work?", "prompt_id": "a1",
               "messages": [{"content": "How does photosynthesis work?", "role": "user"},
                            {"content": "Plants convert light into chemical energy...", "role": "assistant"}]},
              {"prompt": "Write a haiku about GPUs", "prompt_id": "b2",
               "messages": [{"content": "Write a haiku about GPUs", "role": "user"},
                            {"content": "Silicon rivers / ...", "role": "assistant"}]}],
     "bytes_parquet": 1_020_000_000, "bytes_memory": 1_900_000_000},
    {"id": "stanfordnlp/imdb", "downloads": 200_000, "likes": 300, "tags": ["sentiment"],
     "card": "# IMDb\nLarge movie review dataset: 25k train, 25k test.",
     "splits": {"train": 25000, "test": 25000, "unsupervised": 50000},
     "features": {"text": {"dtype": "string", "_type": "Value"},
                  "label": {"names": ["neg", "pos"], "_type": "ClassLabel"}},
     "rows": [{"text": "A wonderful film.", "label": 1}, {"text": "Dreadful.", "label": 0}],
     "bytes_parquet": 84_000_000, "bytes_memory": 130_000_000},
]

SPACES = [
    {"id": "mteb/leaderboard", "sdk": "gradio", "likes": 5000, "tags": ["leaderboard"], "card": "# MTEB leaderboard"},
    {"id": "hf-audio/open_asr_leaderboard", "sdk": "gradio", "likes": 1200, "tags": ["leaderboard", "asr"],
     "card": "# Open ASR leaderboard"},
]

PAPERS = [
    {"id": "2502.09992", "title": "Large Language Diffusion Models", "publishedAt": "2025-02-14T00:00:00.000Z",
     "summary": "We introduce LLaDA, a diffusion model trained from scratch under the pre-training and SFT paradigm, "
                "rivalling autoregressive language models for text generation.",
     "upvotes": 120, "authors": [{"name": "Shen Nie"}, {"name": "Chongxuan Li"}], "linked": ["GSAI-ML/LLaDA-8B-Instruct"]},
    {"id": "2508.15487", "title": "Dream 7B: Diffusion Large Language Models", "publishedAt": "2025-08-21T00:00:00.000Z",
     "summary": "Dream 7B is a diffusion language model initialised from an autoregressive model for text generation.",
     "upvotes": 60, "authors": [{"name": "Jiacheng Ye"}], "linked": ["Dream-org/Dream-v0-Instruct-7B"]},
    {"id": "2309.08600", "title": "Sparse Autoencoders Find Highly Interpretable Features in Language Models",
     "publishedAt": "2023-09-15T00:00:00.000Z",
     "summary": "Sparse autoencoders recover monosemantic features for mechanistic interpretability of language models.",
     "upvotes": 40, "authors": [{"name": "Hoagy Cunningham"}], "linked": []},
    {"id": "2406.04093", "title": "Scaling and evaluating sparse autoencoders", "publishedAt": "2024-06-06T00:00:00.000Z",
     "summary": "We scale sparse autoencoders to 16 million latents and study evaluation of interpretability.",
     "upvotes": 35, "authors": [{"name": "Leo Gao"}], "linked": []},
    {"id": "2402.03216", "title": "BGE M3-Embedding", "publishedAt": "2024-02-05T00:00:00.000Z",
     "summary": "Multi-lingual, multi-functionality, multi-granularity text embeddings.", "upvotes": 50,
     "authors": [{"name": "Jianlv Chen"}], "linked": ["BAAI/bge-m3"]},
]


# HF Jobs hardware (GET /api/jobs/hardware): name, pretty name, vCPU, RAM GB, accelerator
# (model, count, vram GB) and USD per hour; served per minute in micro-USD as the Hub does.
JOBS_HARDWARE = [
    ("cpu-basic", "CPU Basic", 2, 16, None, 0.01), ("cpu-upgrade", "CPU Upgrade", 8, 32, None, 0.03),
    ("cpu-performance", "CPU Performance", 32, 256, None, 1.90), ("cpu-xl", "CPU XL", 16, 124, None, 1.00),
    ("t4-small", "Nvidia T4 - small", 4, 15, ("T4", 1, 16), 0.40),
    ("t4-medium", "Nvidia T4 - medium", 8, 30, ("T4", 1, 16), 0.60),
    ("l4x1", "1x Nvidia L4", 8, 30, ("L4", 1, 24), 0.80), ("l4x4", "4x Nvidia L4", 48, 186, ("L4", 4, 96), 3.80),
    ("l40sx1", "1x Nvidia L40S", 8, 62, ("L40S", 1, 48), 1.80),
    ("a10g-small", "Nvidia A10G - small", 4, 15, ("A10G", 1, 24), 1.00),
    ("a10g-large", "Nvidia A10G - large", 12, 46, ("A10G", 1, 24), 1.50),
    ("a100-large", "Nvidia A100 - large", 12, 142, ("A100", 1, 80), 2.50),
    ("h200", "Nvidia H200", 23, 256, ("H200", 1, 141), 5.00),
    ("h200x2", "2x Nvidia H200", 46, 512, ("H200", 2, 282), 10.00),
    ("h200x8", "8x Nvidia H200", 184, 2048, ("H200", 8, 1128), 40.00),
    ("rtx-pro-6000", "Nvidia RTX PRO 6000", 12, 90, ("RTX PRO 6000", 1, 96), 2.50),
]


def jobs_hardware() -> list[dict]:
    rows = []
    for name, pretty, cpu, ram, acc, hourly in JOBS_HARDWARE:
        micro = round(hourly * 1_000_000 / 60)
        rows.append({"name": name, "prettyName": pretty, "cpu": f"{cpu} vCPU", "ram": f"{ram} GB",
                     "ephemeralStorage": "50 GB",
                     "accelerator": None if acc is None else {"type": "gpu", "model": acc[0], "quantity": str(acc[1]),
                                                              "vram": f"{acc[2]} GB", "manufacturer": "Nvidia"},
                     "unitCostMicroUSD": micro, "unitCostUSD": micro / 1_000_000, "unitLabel": "minute"})
    return rows
