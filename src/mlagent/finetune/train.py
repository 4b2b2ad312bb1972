"""The local fine-tuning recipe, run as `python -m mlagent.finetune.train SPEC.json`.

Supervised fine-tuning with TRL's `SFTTrainer` (the recipe the `hf` backend runs on
Hugging Face Jobs) on PyTorch's CPU. The model is a tiny causal LM built from a config in
`base_models.BASE_CONFIGS` with a byte-level tokenizer built in code (no Hub download), or
an earlier job's saved model (`from_pretrained`), so jobs chain. Progress goes to stdout as
JSON lines (`{"event": "metrics", ...}`, the whole metrics dict each time); everything the
libraries print goes to stderr (the job's `trainer.log`). The result is a
`save_pretrained` model + tokenizer directory.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from .base_models import BASE_CONFIGS
from .data import load_rows

for _name, _value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                      "HF_HUB_DISABLE_TELEMETRY": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
                      "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                      "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_name, _value)

CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant: {% endif %}")
# TRL's log keys → the job's metric names (docs/agent-runtime-api.md).
METRIC_NAMES = {"loss": "loss", "mean_token_accuracy": "train_accuracy", "eval_loss": "val_loss",
                "eval_mean_token_accuracy": "accuracy", "learning_rate": "learning_rate", "epoch": "epoch"}


class Output:
    """The JSON-lines channel to the backend: the process's real stdout, kept apart
    from everything else, which is sent to stderr."""

    def __init__(self) -> None:
        self.stream: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def emit(self, **payload: Any) -> None:
        self.stream.write(json.dumps(payload) + "\n")
        self.stream.flush()


def byte_tokenizer():
    """A byte-level tokenizer with no vocabulary file: each UTF-8 byte is one token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(specials + pre_tokenizers.ByteLevel.alphabet())}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(specials)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<|endoftext|>",
                                  bos_token="<|endoftext|>", model_max_length=1 << 20)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_model(cfg: dict[str, Any], tok):
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    ids = {"vocab_size": len(tok), "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id,
           "eos_token_id": tok.eos_token_id}
    params = {k: v for k, v in cfg.items() if k not in ("architecture", "seed", "tokenizer")}
    config = {"gpt2": GPT2Config, "llama": LlamaConfig}[cfg["architecture"]](**params, **ids)
    torch.manual_seed(int(cfg.get("seed", 0)))
    return AutoModelForCausalLM.from_config(config)


def context_length(model) -> int:
    c = model.config
    return int(getattr(c, "n_positions", None) or getattr(c, "max_position_embeddings", None) or 256)


def train(spec: dict[str, Any], out: Output) -> int:
    if not load_rows(Path(spec["training_file"]), 1 << 30):  # before the seconds of importing torch
        out.emit(event="error", message="the training file holds no text")
        return 2
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    if spec.get("base_weights"):
        tok = AutoTokenizer.from_pretrained(spec["base_weights"])
        model = AutoModelForCausalLM.from_pretrained(spec["base_weights"], dtype=torch.float32)
        seed = 0
    else:
        cfg = BASE_CONFIGS[spec["base_config"]]
        tok, seed = byte_tokenizer(), int(cfg.get("seed", 0))
        model = build_model(cfg, tok)
    max_length = context_length(model)
    rows = load_rows(Path(spec["training_file"]), max_length - 1)  # room for the end-of-text token
    val = load_rows(Path(spec["validation_file"]), max_length - 1) if spec.get("validation_file") else []
    batch = int(spec.get("batch_size", 8))
    metrics: dict[str, float] = {}

    class Report(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            new = {METRIC_NAMES[k]: float(v) for k, v in (logs or {}).items()
                   if k in METRIC_NAMES and isinstance(v, int | float) and math.isfinite(v)}
            if set(new) - {"epoch"}:  # not the closing summary
                metrics.update(new, step=float(state.global_step))
                out.emit(event="metrics", **metrics)

    # TRL turns activation checkpointing on by default; a tiny model on a CPU only loses time with it.
    no_checkpointing: dict[str, Any] = {"activation_checkpointing" if "activation_checkpointing" in SFTConfig.__dataclass_fields__
                        else "gradient_checkpointing": False}
    args = SFTConfig(
        output_dir=spec["output_dir"], save_strategy="no", report_to="none", **no_checkpointing,
        num_train_epochs=int(spec.get("epochs", 3)), learning_rate=float(spec.get("learning_rate", 1e-3)),
        per_device_train_batch_size=batch, per_device_eval_batch_size=batch, max_length=max_length,
        logging_strategy="steps", logging_steps=0.05,  # about 20 metric updates a job, one per step when short
        eval_strategy="epoch" if val else "no", use_cpu=True, seed=seed, data_seed=seed, disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    trainer = SFTTrainer(model=model, args=args, processing_class=tok, train_dataset=Dataset.from_list(rows),
                         eval_dataset=Dataset.from_list(val) if val else None, callbacks=[Report()])
    started = time.time()
    result = trainer.train()
    trainer.save_model(spec["output_dir"])
    tok.save_pretrained(spec["output_dir"])
    out.emit(event="done", seconds=round(time.time() - started, 3), examples=len(rows),
             steps=int(result.global_step), train_loss=float(result.training_loss))
    return 0


def main(spec_path: str) -> int:
    out = Output()
    spec = json.loads(Path(spec_path).read_text())
    Path(spec["output_dir"]).mkdir(parents=True, exist_ok=True)
    try:
        return train(spec, out)
    except MemoryError:
        out.emit(event="error", message="the trainer ran out of memory (the job's memory limit)")
        return 3
    except Exception as exc:  # bad data, a broken base model, an allocation over the limit
        out.emit(event="error", message=f"training failed: {type(exc).__name__}: {str(exc)[:300]}")
        raise  # the traceback goes to trainer.log

if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
