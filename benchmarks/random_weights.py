"""Random weights in the real file layouts of the ``blip2_t5`` preset's local files.

Where no weights can be downloaded (an offline machine, a bare GPU machine),
the ``blip2_t5`` path should be run end to end: this writes, from random
weights, the four things a user puts under ``OUT/weights/`` (the layout
docs/training.md describes), so ``curate train`` reads them through our own loading code:

- ``eva_vit_g.pth``: a flat EVA-ViT state dict in fp16 (LAVIS's release file);
- ``bert-base-uncased/``: ``config.json`` + ``vocab.txt`` (30,522 lines at full size);
- ``flan-t5-xl/``: ``config.json`` (flan-t5-xl's values at full size),
  ``save_pretrained`` weight shards with their index, and a small sentencepiece
  tokenizer trained here (``spiece.model``) with its ``tokenizer.json`` built
  from the same pieces (a T5 folder needs it with recent ``tokenizers``);
- ``blip2_pretrained_flant5xl.pth``: ``{"model": ...}`` holding what BLIP-2's
  checkpoint holds for training (query tokens, the pruned Q-Former, ``t5_proj``,
  ``ln_vision``).

``scale="small"`` writes the same layouts with toy dimensions (and returns
the ``model.vit.*`` overrides that make the ViT that small), so the loading
code runs on a CPU in seconds.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import UsageError

BERT_FULL = {
    "architectures": ["BertForMaskedLM"],
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "type_vocab_size": 2,
    "use_cache": True,
    "vocab_size": 30522,
}
T5_FULL = {  # google/flan-t5-xl's config.json values
    "architectures": ["T5ForConditionalGeneration"],
    "d_ff": 5120,
    "d_kv": 64,
    "d_model": 2048,
    "decoder_start_token_id": 0,
    "dense_act_fn": "gelu_new",
    "dropout_rate": 0.1,
    "eos_token_id": 1,
    "feed_forward_proj": "gated-gelu",
    "initializer_factor": 1.0,
    "is_encoder_decoder": True,
    "is_gated_act": True,
    "layer_norm_epsilon": 1e-06,
    "model_type": "t5",
    "n_positions": 512,
    "num_decoder_layers": 24,
    "num_heads": 32,
    "num_layers": 24,
    "output_past": True,
    "pad_token_id": 0,
    "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32,
    "tie_word_embeddings": False,
    "vocab_size": 32128,
}


@dataclass(frozen=True)
class Scale:
    vit: dict[str, int] | None  # None: EVA-ViT-g itself
    bert: dict[str, Any]
    t5: dict[str, Any]
    sentencepiece_pieces: int
    t5_shard: str  # save_pretrained's max_shard_size


SCALES = {
    "full": Scale(None, {}, {}, 2000, "10GB"),
    "small": Scale(
        {"patch_size": 14, "width": 176, "depth": 2, "heads": 2},  # EVA's 88-wide heads
        {
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 256,
            "vocab_size": 1000,
        },
        {"d_model": 64, "d_ff": 128, "d_kv": 16, "num_heads": 4, "num_layers": 2}
        | {"num_decoder_layers": 2, "vocab_size": 512},
        300,
        "200KB",  # several shards and an index, as at full size
    ),
}
EXTRA_IDS = 100
WORDS = (
    "question short answer is anyone falling in this image yes no person people floor "
    "lying standing sitting room photo picture man woman child old the a of on there"
)


@dataclass
class RandomWeights:
    """What was written: files (preset keys -> paths), overrides for ``curate train``, sizes."""

    folder: Path
    files: dict[str, Path]
    overrides: list[str]
    parameters: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def write_random_blip2_t5(folder: Path, scale: str = "full", seed: int = 0) -> RandomWeights:
    """Write the ``blip2_t5`` preset's four local files into ``folder`` from random weights.

    The folder is built beside ``folder`` and renamed into place, so a killed
    run leaves no half-written weights.

    Raises:
        UsageError: an unknown scale, or ``folder`` exists already.
    """
    import torch

    if scale not in SCALES:
        raise UsageError(f"unknown scale {scale!r}. Fix: choose one of: {', '.join(SCALES)}")
    folder = Path(folder)
    if os.path.lexists(folder):
        raise UsageError(f"{folder} exists already. Fix: pass a new folder for the weights")
    spec = SCALES[scale]
    started = time.perf_counter()
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        torch.manual_seed(seed)
        params = {
            "vit": _write_vit(tmp / "eva_vit_g.pth", spec),
            "t5": _write_t5(tmp / "flan-t5-xl", spec, seed),
        }
        bert = _write_bert(tmp / "bert-base-uncased", spec)
        params["qformer"] = _write_blip2(tmp / "blip2_pretrained_flant5xl.pth", bert, spec)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = {
        "vit_weights": folder / "eva_vit_g.pth",
        "t5_model": folder / "flan-t5-xl",
        "qformer_tokenizer": folder / "bert-base-uncased",
        "pretrained": folder / "blip2_pretrained_flant5xl.pth",
    }
    overrides = [f"model.vit.{k}={v}" for k, v in (spec.vit or {}).items()]
    return RandomWeights(folder, files, overrides, params, time.perf_counter() - started)


def _save(obj: Any, path: Path) -> None:
    import torch

    part = path.with_name(path.name + ".part")
    torch.save(obj, part)
    os.replace(part, path)


def _write_vit(path: Path, spec: Scale) -> int:
    from curation.training.plugin import build_vision_encoder

    encoder = build_vision_encoder(224, spec.vit)
    # LAVIS's eva_vit_g.pth is a flat fp16 state dict
    _save({k: v.half() for k, v in encoder.state_dict().items()}, path)
    return sum(p.numel() for p in encoder.parameters())


def _write_bert(folder: Path, spec: Scale) -> Any:
    from transformers import BertConfig

    config = {**BERT_FULL, **spec.bert}
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text('{"do_lower_case": true}\n', encoding="utf-8")
    specials = ["[PAD]", *(f"[unused{i}]" for i in range(99)), "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [*"abcdefghijklmnopqrstuvwxyz0123456789", *WORDS.split()]
    vocab = list(dict.fromkeys([*specials, *chars]))
    vocab += [f"##w{i}" for i in range(config["vocab_size"] - len(vocab))]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return BertConfig.from_pretrained(folder, local_files_only=True)


def _write_blip2(path: Path, bert_config: Any, spec: Scale) -> int:
    """The trainable part of BLIP-2's checkpoint, pruned as ``Blip2T5.__init__`` prunes it."""
    import torch
    from lavis.models.blip2_models.blip2 import LayerNorm

    from curation.training.plugin import build_qformer

    vision_width = spec.vit["width"] if spec.vit else 1408
    t5_width = {**T5_FULL, **spec.t5}["d_model"]
    qformer, query_tokens = build_qformer(bert_config, 32, vision_width, cross_attention_freq=2)
    qformer.cls = None
    qformer.bert.embeddings.word_embeddings = None
    qformer.bert.embeddings.position_embeddings = None
    for layer in qformer.bert.encoder.layer:
        layer.output = None
        layer.intermediate = None
    proj = torch.nn.Linear(bert_config.hidden_size, t5_width)
    ln = LayerNorm(vision_width)
    state = {"query_tokens": query_tokens.data}
    state |= {f"Qformer.{k}": v for k, v in qformer.state_dict().items()}
    state |= {f"t5_proj.{k}": v for k, v in proj.state_dict().items()}
    state |= {f"ln_vision.{k}": v for k, v in ln.state_dict().items()}
    _save({"model": state}, path)
    return sum(v.numel() for v in state.values())


def _write_t5(folder: Path, spec: Scale, seed: int) -> int:
    from transformers import T5Config, T5ForConditionalGeneration

    config = {**T5_FULL, **spec.t5}
    model = T5ForConditionalGeneration(T5Config(**config))
    model.save_pretrained(folder, max_shard_size=spec.t5_shard)
    write_t5_tokenizer(folder, spec.sentencepiece_pieces, seed)
    return sum(p.numel() for p in model.parameters())


def _corpus(seed: int, lines: int) -> list[str]:
    rng = random.Random(seed)
    words = WORDS.split()
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    made = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(4000)]
    prompt = "Question: Is anyone falling in this image? Short answer: yes, no. 0123456789"
    text = [" ".join(rng.choice(words + made) for _ in range(12)) for _ in range(lines)]
    return [prompt if i % 4 == 0 else line for i, line in enumerate(text)]


def write_t5_tokenizer(folder: Path, pieces: int, seed: int = 0) -> None:
    """A T5 tokenizer trained here: ``spiece.model`` plus ``tokenizer.json`` of the same pieces.

    T5's ids: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, then the pieces, then
    ``<extra_id_99>`` .. ``<extra_id_0>``; every sequence ends with ``</s>``
    (without it generation never stops).
    """
    import sentencepiece as spm
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors as tk_processors

    model_bytes = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_corpus(seed, 20 * pieces)),
        model_writer=model_bytes,
        vocab_size=pieces,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    (folder / "spiece.model").write_bytes(model_bytes.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model_bytes.getvalue())
    extra = [f"<extra_id_{i}>" for i in range(EXTRA_IDS - 1, -1, -1)]
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    vocab += [(t, 0.0) for t in extra]
    tok = Tokenizer(models.Unigram(vocab, 2))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = _metaspace(pre_tokenizers.Metaspace)
    tok.decoder = _metaspace(decoders.Metaspace)
    tok.post_processor = tk_processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tok.add_special_tokens(["<pad>", "</s>", "<unk>", *extra])
    tok.save(str(folder / "tokenizer.json"))
    specials = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    (folder / "special_tokens_map.json").write_text(
        json.dumps({**specials, "additional_special_tokens": extra}) + "\n", encoding="utf-8"
    )
    tokenizer_config = {
        **specials,
        "tokenizer_class": "T5Tokenizer",
        "extra_ids": EXTRA_IDS,
        "additional_special_tokens": extra,
        "model_max_length": 512,
    }
    (folder / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config, indent=2) + "\n", encoding="utf-8"
    )


def _metaspace(cls: Any) -> Any:
    """``Metaspace`` in both ``tokenizers`` APIs (0.13: add_prefix_space; 0.19+: prepend_scheme)."""
    try:
        return cls(replacement="\u2581", prepend_scheme="always")
    except TypeError:
        return cls(replacement="\u2581", add_prefix_space=True)
