"""Local tokenizer and config files for the toy presets (``tiny``, ``small``; nothing from a hub).

The toy presets are LAVIS's ``Blip2T5`` at toy sizes with random weights. Every
export writes the same T5 tokenizer: the words of the shipped list
``curation/data/toy_vocab.txt`` plus the 256 byte symbols of a byte-level
tokenizer, so any text is read (a word not in the list is spelled as its UTF-8
bytes, never mapped to the unknown token) and a checkpoint of one export fits
every other export of its preset. Beside it: a tiny T5 config (no weights: the
model initialises them from a seed) and a minimal BERT vocabulary for the
Q-Former's tokenizer.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

from curation._io import atomic_write_json, atomic_write_text
from curation.errors import require

VOCAB_FILE = Path(__file__).resolve().parent.parent / "data" / "toy_vocab.txt"
SPECIALS = ("<pad>", "</s>", "<unk>")
#: The byte-level pre-tokenizer marks a word that follows a space with this symbol.
SPACE = "\u0120"  # "Ġ"


@functools.cache
def vocabulary_words() -> tuple[str, ...]:
    """The shipped word list, in id order (comments and blank lines skipped)."""
    lines = VOCAB_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(w for line in lines if (w := line.strip()) and not w.startswith("#"))


def tokenizer_vocabulary() -> dict[str, int]:
    """Token -> id: the specials, the listed words (as whole words after a space), the bytes."""
    tokenizers = require("tokenizers", "lavis")
    alphabet = sorted(tokenizers.pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for token in (*SPECIALS, *(SPACE + w for w in vocabulary_words()), *alphabet):
        vocab.setdefault(token, len(vocab))
    return vocab


def vocabulary_fingerprint() -> str:
    """sha256 of the token list: equal for two exports whose checkpoints fit each other."""
    tokens = "\n".join(tokenizer_vocabulary())
    return hashlib.sha256(tokens.encode("utf-8")).hexdigest()


def write_tiny_model_files(folder: Path, texts: Iterable[str] = (), d_model: int = 64) -> None:
    """Write ``folder/t5`` (config + tokenizer) and ``folder/qformer_tokenizer``.

    ``texts`` (the export's questions and answers, what a preset hook is given) do not
    change the files: the vocabulary is the shipped one, so every export of a preset
    can load another's checkpoint.

    Raises:
        MissingDependencyError: ``tokenizers`` (the ``lavis`` extra) is not installed.
    """
    # the toy presets only make sense with the lavis extra (it is what trains them);
    # without it, say what to install instead of a ModuleNotFoundError
    tokenizers = require("tokenizers", "lavis")
    Tokenizer, models, decoders = tokenizers.Tokenizer, tokenizers.models, tokenizers.decoders
    normalizers, pre_tokenizers = tokenizers.normalizers, tokenizers.pre_tokenizers
    processors = tokenizers.processors

    vocab = tokenizer_vocabulary()
    # word pieces with no continuation mark: a listed word is one token, anything else
    # falls back to its byte symbols, each of which is in the vocabulary
    tok = Tokenizer(
        models.WordPiece(
            vocab, unk_token="<unk>", continuing_subword_prefix="", max_input_chars_per_word=10**6
        )
    )
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    # bytes back to text, without the space the pre-tokenizer put before the first word
    tok.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Strip(" ", 1, 0)])
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
