"""Local tokenizer and config files for the ``tiny`` preset (nothing from a hub).

The tiny preset is LAVIS's ``Blip2T5`` at toy sizes with random weights: the
export writes a word-level T5 tokenizer made from the export's own questions
and answers, a tiny T5 config (no weights: the model initialises them from a
seed), and a minimal BERT vocabulary for the Q-Former's tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from curation._io import atomic_write_json, atomic_write_text
from curation.errors import require

SPECIALS = ("<pad>", "</s>", "<unk>")
PROMPT_WORDS = "question short answer : yes no"


def _words(text: str) -> list[str]:
    pre_tokenizers = require("tokenizers", "lavis").pre_tokenizers
    return [w for w, _ in pre_tokenizers.Whitespace().pre_tokenize_str(text.lower())]


def write_tiny_model_files(folder: Path, texts: Iterable[str], d_model: int = 64) -> None:
    """Write ``folder/t5`` (config + tokenizer) and ``folder/qformer_tokenizer``.

    Raises:
        MissingDependencyError: ``tokenizers`` (the ``lavis`` extra) is not installed.
    """
    # the tiny preset only makes sense with the lavis extra (it is what trains it);
    # without it, say what to install instead of a ModuleNotFoundError
    tokenizers = require("tokenizers", "lavis")
    Tokenizer, models = tokenizers.Tokenizer, tokenizers.models
    normalizers, pre_tokenizers = tokenizers.normalizers, tokenizers.pre_tokenizers
    processors = tokenizers.processors

    words = sorted({w for t in [PROMPT_WORDS, *texts] for w in _words(t)})
    vocab = {tok: i for i, tok in enumerate([*SPECIALS, *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # T5 ends every sequence with </s>; without it generation never stops
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    t5 = folder / "t5"
    t5.mkdir(parents=True, exist_ok=True)
    atomic_write_text(t5 / "tokenizer.json", tok.to_str(pretty=True) + "\n")
    atomic_write_json(
        t5 / "tokenizer_config.json",
        {
            "tokenizer_class": "T5Tokenizer",
            "model_max_length": 512,
            "extra_ids": 0,
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
        },
    )
    atomic_write_json(
        t5 / "special_tokens_map.json",
        {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
    )
    atomic_write_json(
        t5 / "config.json",
        {
            "architectures": ["T5ForConditionalGeneration"],
            "model_type": "t5",
            "vocab_size": len(vocab),
            "d_model": d_model,
            "d_kv": d_model // 4,
            "d_ff": 2 * d_model,
            "num_layers": 2,
            "num_decoder_layers": 2,
            "num_heads": 4,
            "relative_attention_num_buckets": 8,
            "relative_attention_max_distance": 32,
            "dropout_rate": 0.0,
            "layer_norm_epsilon": 1e-6,
            "initializer_factor": 1.0,
            "feed_forward_proj": "relu",
            "is_encoder_decoder": True,
            "tie_word_embeddings": False,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "decoder_start_token_id": 0,
        },
    )
    qf = folder / "qformer_tokenizer"
    qf.mkdir(parents=True, exist_ok=True)
    bert_vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz"]
    atomic_write_text(qf / "vocab.txt", "\n".join(bert_vocab) + "\n")
    atomic_write_json(qf / "tokenizer_config.json", {"do_lower_case": True})
