"""The toy presets' T5 tokenizer, against a second tokenizer built from the raw word list.

The second computation reads ``curation/data/toy_vocab.txt`` as text, splits and
byte-maps with GPT-2's own pattern and ``bytes_to_unicode`` (transformers' code,
not ours), and picks pieces by greedy longest match; the export's tokenizer, as
LAVIS loads it (``T5TokenizerFast``), must give the same ids, never the unknown
token, and decode back to the text.
"""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers")
regex = pytest.importorskip("regex")

from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode  # noqa: E402

from curation.training.tiny import VOCAB_FILE, write_tiny_model_files  # noqa: E402

GPT2_SPLIT = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


def reference_ids(text: str) -> list[int]:
    """Token ids from the raw word list: specials, then "Ġ"+word, then the 256 byte symbols."""
    words = [w.strip() for w in VOCAB_FILE.read_text(encoding="utf-8").splitlines()]
    byte_symbols = sorted(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for token in ["<pad>", "</s>", "<unk>", *("\u0120" + w for w in words if w and w[0] != "#")]:
        vocab.setdefault(token, len(vocab))
    for symbol in byte_symbols:
        vocab.setdefault(symbol, len(vocab))
    to_symbol = bytes_to_unicode()
    ids: list[int] = []
    for piece in GPT2_SPLIT.findall(" " + unicodedata.normalize("NFKC", text).lower()):
        symbols = "".join(to_symbol[b] for b in piece.encode("utf-8"))
        start = 0
        while start < len(symbols):  # greedy longest match, as word pieces are chosen
            end = max(e for e in range(start + 1, len(symbols) + 1) if symbols[start:e] in vocab)
            ids.append(vocab[symbols[start:end]])
            start = end
    return [*ids, vocab["</s>"]]


def _texts(seed: int) -> list[str]:
    rng = random.Random(seed)
    words = [w for w in VOCAB_FILE.read_text().split() if w.isalpha()]
    alphabet = "abcdefghijklmnopqrstuvwxyzéüß猫ложка0123456789?!.,:'- "
    out = ["Is there a cat in this image?", "Is there a zyzzyva near the 猫?", "yes", "no"]
    for _ in range(200):
        parts = [
            rng.choice(words) if rng.random() < 0.6 else "".join(rng.sample(alphabet, 5))
            for _ in range(rng.randint(1, 8))
        ]
        out.append(" ".join(parts).strip().capitalize() + rng.choice(["?", "", " ?", "."]))
    return out


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("toy") / "model"
    write_tiny_model_files(folder, ["a question no export would ask"])
    return transformers.T5TokenizerFast.from_pretrained(str(folder / "t5"))


@pytest.mark.parametrize("seed", [0, 1])
def test_ids_match_a_tokenizer_built_from_the_raw_word_list(tokenizer, seed: int) -> None:
    for text in _texts(seed):
        ids = tokenizer(text).input_ids
        assert ids == reference_ids(text), text
        assert tokenizer.unk_token_id not in ids
        expected = unicodedata.normalize("NFKC", text).lower()
        back = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        assert back == expected.lstrip(" ")


def test_every_export_writes_the_same_tokenizer(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_tiny_model_files(a, ["Is anyone falling in this image?", "yes", "no"])
    write_tiny_model_files(b, ["What colour is the linoleum?", "teal"])
    for name in ("tokenizer.json", "config.json"):
        assert (a / "t5" / name).read_bytes() == (b / "t5" / name).read_bytes()
