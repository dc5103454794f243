"""Our LAVIS plugin: dataset, builder and model, registered through LAVIS's registry.

Importing this module registers ``falldown_vqa`` (builder) and
``falldown_blip2_t5`` (model) in LAVIS's registry. Nothing in LAVIS's
site-packages is edited. LAVIS 1.0.2 lacks the instruction datasets of its
GitHub main branch; this dataset provides what BLIP-2 needs itself: training
reads ``text_output``, evaluation reads ``answer`` and ``question_id``.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from curation.errors import require

require("lavis", "lavis")

from curation.training._lavis_catalogue import check_lavis  # noqa: E402

# before anything subclasses or swaps a LAVIS internal: refuse a LAVIS that lacks one
check_lavis()

import lavis.common.optims  # noqa: E402,F401 - registers the lr schedulers (as LAVIS's train.py does)
import torch  # noqa: E402
from lavis.common.registry import registry  # noqa: E402
from lavis.datasets.builders.base_dataset_builder import BaseDatasetBuilder  # noqa: E402
from lavis.datasets.datasets.base_dataset import BaseDataset  # noqa: E402
from lavis.models.blip2_models import blip2_t5 as _blip2_t5_module  # noqa: E402
from lavis.models.blip2_models.blip2 import LayerNorm  # noqa: E402
from lavis.models.blip2_models.blip2_t5 import Blip2T5  # noqa: E402
from torch import nn  # noqa: E402

from curation.contract import BUILDER_NAME, MODEL_ARCH  # noqa: E402, F401 - re-exported
from curation.errors import DataError  # noqa: E402
from curation.images import open_rgb  # noqa: E402
from curation.presets import preset_files  # noqa: E402
from curation.schemas.annotation import with_contract_keys  # noqa: E402
from curation.training._patch import patched  # noqa: E402
from curation.training._processors import (  # noqa: E402
    PROCESSOR_NAME,
    FalldownImageTrainProcessor,
)
from curation.training.checkpoints import load_weights, read_checkpoint  # noqa: E402
from curation.training.plugin_data import DATA  # noqa: E402

log = logging.getLogger(__name__)


class FalldownVQADataset(BaseDataset):
    """A LAVIS VQA dataset over a contract-valid annotation file.

    Each item carries what both halves of LAVIS read: ``text_input`` (the
    prompted question), ``text_output`` (the most frequent answer, for
    ``Blip2T5.forward``), ``answers``/``weights`` (VQA style), and
    ``question_id``/``answer`` (for ``VQATask.valid_step`` and our eval).
    """

    def __init__(
        self,
        vis_processor: Any,
        text_processor: Any,
        vis_root: str,
        ann_paths: list[str],
        prompt: str = "",
    ) -> None:
        super().__init__(vis_processor, text_processor, vis_root, ann_paths[:1])
        # a file in LAVIS's coco-vqa format (question, question_id) reads as ours
        self.annotation: list[dict[str, Any]] = [with_contract_keys(a) for a in self.annotation]
        self.prompt = prompt
        # LAVIS's VQATask reads the official-format files for its accuracy (agg_metrics)
        self.coco_fmt_qust_file = ann_paths[1] if len(ann_paths) > 2 else None
        self.coco_fmt_anno_file = ann_paths[2] if len(ann_paths) > 2 else None

    def _add_instance_ids(self, key: str = "instance_id") -> None:
        """Keep the file's own ids (LAVIS's base class would overwrite them)."""

    def question(self, text: str) -> str:
        return prompted(text, self.text_processor, self.prompt)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ann = self.annotation[index]
        image = processed_image(self.vis_processor, os.path.join(self.vis_root, ann["image"]))
        counts = Counter(ann["answer"])
        answers = list(counts)
        return {
            "image": image,
            "text_input": self.question(ann["text_input"]),
            "text_output": max(answers, key=counts.__getitem__),
            "answers": answers,
            "weights": [counts[a] / len(ann["answer"]) for a in answers],
            "question_id": index,
            "instance_id": str(ann["instance_id"]),
        }

    def collater(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "image": torch.stack([s["image"] for s in samples], dim=0),
            "text_input": [s["text_input"] for s in samples],
            "text_output": [s["text_output"] for s in samples],
            "answer": [a for s in samples for a in s["answers"]],
            "weight": torch.tensor([w for s in samples for w in s["weights"]]),
            "n_answers": torch.LongTensor([len(s["answers"]) for s in samples]),
            "question_id": torch.LongTensor([s["question_id"] for s in samples]),
            "instance_id": [s["instance_id"] for s in samples],
        }


class FalldownVQABuilder(BaseDatasetBuilder):
    """Builds train/val/test from local files only: no download, no barrier."""

    train_dataset_cls = FalldownVQADataset
    eval_dataset_cls = FalldownVQADataset
    DATASET_CONFIG_DICT: ClassVar[dict[str, str]] = {"default": str(DATA / "falldown_vqa.yaml")}

    @classmethod
    def default_config_path(cls, type: str = "default") -> str:  # noqa: A002 - LAVIS's name
        return cls.DATASET_CONFIG_DICT[type]

    def build_datasets(self) -> dict[str, FalldownVQADataset]:
        return self.build()

    def build(self) -> dict[str, FalldownVQADataset]:
        self.build_processors()
        info = self.config.build_info
        vis_root = str(info.images.storage)
        if not os.path.isdir(vis_root):
            raise DataError(f"image folder not found: {vis_root} (datasets.*.build_info.images)")
        datasets = {}
        for split, ann in info.annotations.items():
            if split not in ("train", "val", "test"):
                continue
            paths = [ann.storage] if isinstance(ann.storage, str) else list(ann.storage)
            for p in paths:
                if not os.path.isfile(p):
                    raise DataError(f"annotation file not found: {p} (split {split})")
            kind = "train" if split == "train" else "eval"
            datasets[split] = FalldownVQADataset(
                self.vis_processors[kind],
                self.text_processors[kind],
                vis_root,
                paths,
                prompt=self.config.get("prompt", ""),
            )
        return datasets


def register_builder(name: str) -> None:
    """Register our builder under ``name`` too (the YAML's ``datasets:`` key)."""
    mapping = registry.mapping["builder_name_mapping"]
    if mapping.get(name) is None:
        # an alias's default config is empty: the default one would add a second dataset
        defaults = {"default": str(DATA / "alias_defaults.yaml")}
        registry.register_builder(name)(
            type(
                f"FalldownVQABuilder_{name}",
                (FalldownVQABuilder,),
                {"DATASET_CONFIG_DICT": defaults},
            )
        )
    elif not issubclass(mapping[name], FalldownVQABuilder):
        raise DataError(
            f"dataset name {name!r} is already LAVIS's {mapping[name].__name__}; "
            "pick another name for datasets.<name>."
        )


def is_ours(name: str) -> bool:
    builder = registry.mapping["builder_name_mapping"].get(name)
    return builder is not None and issubclass(builder, FalldownVQABuilder)


def registered_builders() -> list[str]:
    return sorted(registry.mapping["builder_name_mapping"])


class _LocalT5:
    """Stands in for ``T5ForConditionalGeneration`` while ``Blip2T5.__init__`` runs.

    A folder with weights loads them (local only); a folder with only a config
    (the tiny preset) gets random weights from the seeded generator.
    """

    real = _blip2_t5_module.T5ForConditionalGeneration

    @classmethod
    def from_pretrained(cls, path: str, config: Any = None) -> nn.Module:
        weights = ("pytorch_model.bin", "model.safetensors", "pytorch_model.bin.index.json")
        if any((Path(path) / w).exists() for w in weights):
            return cls.real.from_pretrained(path, config=config, local_files_only=True)
        return cls.real(config)


class FalldownBlip2T5(Blip2T5):
    """LAVIS's ``Blip2T5``, built from local files only.

    ``forward``, ``generate`` and ``predict_answers`` are LAVIS's own. Only
    the pieces that fetch by URL or hub name are replaced: the Q-Former's
    BERT tokenizer/config, the EVA-ViT weights and the Flan-T5 come from
    local paths; the ``tiny`` preset builds each at toy size from config.
    """

    PRETRAINED_MODEL_CONFIG_DICT: ClassVar[dict[str, str]] = preset_files()
    _build: ClassVar[dict[str, Any]] = {}

    @classmethod
    def default_config_path(cls, model_type: str) -> str:
        return cls.PRETRAINED_MODEL_CONFIG_DICT[model_type]

    @torch.no_grad()
    def score_answers(
        self, samples: dict[str, Any], candidates: tuple[str, ...] = ("yes", "no")
    ) -> torch.Tensor:
        """Log-likelihood of each candidate answer under the T5 decoder: (batch, candidates).

        LAVIS 1.0.2's BLIP-2 has no ``rank`` inference; this is its ``forward``
        (image -> Q-Former -> T5 encoder, prompted question) with each
        candidate as the target, summed over the candidate's tokens (``</s>``
        included), so ``softmax`` over the candidates gives P(yes).
        """
        image = samples["image"]
        with self.maybe_autocast():
            image_embeds = self.ln_vision(self.visual_encoder(image))
        image_embeds = image_embeds.float()
        image_atts = torch.ones(image_embeds.size()[:-1], dtype=torch.long, device=image.device)
        query_output = self.Qformer.bert(
            query_embeds=self.query_tokens.expand(image_embeds.shape[0], -1, -1),
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_atts,
            return_dict=True,
        )
        inputs_t5 = self.t5_proj(query_output.last_hidden_state)
        atts_t5 = torch.ones(inputs_t5.size()[:-1], dtype=torch.long, device=image.device)
        input_tokens = self.t5_tokenizer(
            samples["text_input"],
            padding="longest",
            truncation=True,
            max_length=self.max_txt_len,
            return_tensors="pt",
        ).to(image.device)
        attention = torch.cat([atts_t5, input_tokens.attention_mask], dim=1)
        scores = []
        with self.maybe_autocast(dtype=torch.bfloat16):
            embeds = self.t5_model.encoder.embed_tokens(input_tokens.input_ids)
            encoder_out = self.t5_model.encoder(
                inputs_embeds=torch.cat([inputs_t5, embeds], dim=1),
                attention_mask=attention,
                return_dict=True,
            )
            for candidate in candidates:
                target = self.t5_tokenizer(
                    [candidate] * image.size(0), padding="longest", return_tensors="pt"
                ).to(image.device)
                labels = target.input_ids.masked_fill(
                    target.input_ids == self.t5_tokenizer.pad_token_id, -100
                )
                logits = self.t5_model(
                    encoder_outputs=encoder_out,
                    attention_mask=attention,
                    decoder_attention_mask=target.attention_mask,
                    labels=labels,
                    return_dict=True,
                ).logits.float()
                logp = torch.log_softmax(logits, dim=-1)
                picked = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
                scores.append((picked * (labels != -100)).sum(dim=-1))
        return torch.stack(scores, dim=1)

    @classmethod
    def init_tokenizer(cls) -> Any:
        from transformers import BertTokenizer

        tok = BertTokenizer.from_pretrained(cls._build["qformer_tokenizer"], local_files_only=True)
        tok.add_special_tokens({"bos_token": "[DEC]"})
        return tok

    @classmethod
    def init_Qformer(  # noqa: N802 - LAVIS's name
        cls, num_query_token: int, vision_width: int, cross_attention_freq: int = 2
    ) -> tuple[nn.Module, nn.Parameter]:
        from lavis.models.blip2_models.Qformer import BertConfig

        q = cls._build.get("qformer")
        if q:
            config = BertConfig(
                vocab_size=64,
                hidden_size=q["hidden_size"],
                num_hidden_layers=q["layers"],
                num_attention_heads=q["heads"],
                intermediate_size=4 * q["hidden_size"],
                max_position_embeddings=64,
            )
            cross_attention_freq = q.get("cross_attention_freq", 1)
        else:
            config = BertConfig.from_pretrained(
                cls._build["qformer_tokenizer"], local_files_only=True
            )
        return build_qformer(config, num_query_token, vision_width, cross_attention_freq)

    @classmethod
    def init_vision_encoder(
        cls,
        model_name: str,
        img_size: int,
        drop_path_rate: float,
        use_grad_checkpoint: bool,
        precision: str,
    ) -> tuple[nn.Module, nn.Module]:
        from lavis.models.eva_vit import convert_weights_to_fp16, interpolate_pos_embed

        encoder = build_vision_encoder(
            img_size, cls._build.get("vit"), drop_path_rate, use_grad_checkpoint
        )
        if cls._build.get("vit_weights"):  # EVA-ViT-g (or a model.vit of its layout) from disk
            state = read_checkpoint(cls._build["vit_weights"])["model"]
            interpolate_pos_embed(encoder, state)
            result = encoder.load_state_dict(state, strict=False)
            if result.unexpected_keys or result.missing_keys:
                log.warning(
                    "EVA-ViT weights: missing %s, unexpected %s",
                    result.missing_keys,
                    result.unexpected_keys,
                )
        if precision == "fp16":
            convert_weights_to_fp16(encoder)
        return encoder, LayerNorm(encoder.num_features)

    @classmethod
    def from_config(cls, cfg: Any) -> FalldownBlip2T5:
        cls._build = {
            "qformer_tokenizer": cfg.get("qformer_tokenizer"),
            "vit_weights": cfg.get("vit_weights"),
            "qformer": _plain(cfg.get("qformer")),
            "vit": _plain(cfg.get("vit")),
        }
        torch.manual_seed(int(cfg.get("init_seed", 0)))
        try:
            with patched(_blip2_t5_module, "T5ForConditionalGeneration", _LocalT5):
                model = super().from_config(cfg)
        finally:
            cls._build = {}
        if not cfg.get("freeze_t5", True):
            model.t5_model.float()
            for p in model.t5_model.parameters():
                p.requires_grad = True
        return model

    def load_checkpoint_from_config(self, cfg: Any, **kwargs: Any) -> None:
        path = cfg.get("finetuned") if cfg.get("load_finetuned", False) else cfg.get("pretrained")
        self.load_report = None
        if path:
            self.load_report = load_weights(self, path)

    def load_from_pretrained(self, url_or_filename: str) -> Any:
        return load_weights(self, url_or_filename)


def build_vision_encoder(
    img_size: int,
    vit: dict[str, Any] | None = None,
    drop_path_rate: float = 0.0,
    use_grad_checkpoint: bool = False,
) -> nn.Module:
    """EVA-ViT-g exactly as ``lavis.models.eva_vit.create_eva_vit_g`` builds it, or, given
    ``model.vit`` (patch_size, width, depth, heads[, stem]), a small ViT of the same class.

    ``stem: conv`` makes it a hybrid ViT (as in the ViT paper's ResNet-stem variant): the
    patch embedding is a small CNN (:class:`ConvStem`) that reads each patch with
    3x3 convolutions instead of one linear map. Random-weight models learn shapes from a few
    thousand images with it; ``stem: patch`` (the default) is LAVIS's own linear embedding.
    """
    from lavis.models.eva_vit import VisionTransformer

    from curation.schemas.config import VitConfig  # the one place model.vit's defaults live

    spec = VitConfig.model_validate(vit) if vit is not None else None
    if spec:
        dims = {
            "patch_size": spec.patch_size,
            "embed_dim": spec.width,
            "depth": spec.depth,
            "num_heads": spec.heads,
            "mlp_ratio": 2.0,
        }
    else:
        dims = {
            "patch_size": 14,
            "embed_dim": 1408,
            "depth": 39,
            "num_heads": 1408 // 88,
            "mlp_ratio": 4.3637,
        }
    encoder = VisionTransformer(
        img_size=img_size,
        use_mean_pooling=False,
        qkv_bias=True,
        drop_path_rate=drop_path_rate,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        use_checkpoint=use_grad_checkpoint,
        **dims,
    )
    if spec and spec.stem == "conv":
        encoder.patch_embed.proj = ConvStem(spec.patch_size, spec.width, spec.stem_channels)
    return encoder


class ConvStem(nn.Module):
    """A CNN mapping (B, 3, H, W) to (B, width, H/patch, W/patch), the shape of LAVIS's
    ``PatchEmbed.proj``: per halving a 3x3 convolution, a 2x2 max-pool, batch norm and ReLU
    (channels doubling from ``channels`` up to ``width``), then a 3x3 convolution to ``width``.

    Max-pooling, not strided convolutions: with strided convolutions the random-weight
    model stayed at chance on the clutter scenes for 1,200 steps. Pooling before the norm
    and channels-last tensors make it 2.5x cheaper on a CPU than conv-norm-ReLU-pool in
    PyTorch's default layout (30 against 75 ms per batch of 32, forward and backward).
    The config schema (``VitConfig``) has checked that ``patch`` is a power of two.
    """

    def __init__(self, patch: int, width: int, channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, c_out, size = 3, channels, patch
        while size > 1:
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.MaxPool2d(2),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c_in, c_out, size = c_out, min(2 * c_out, width), size // 2
        layers.append(nn.Conv2d(c_in, width, 3, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.contiguous(memory_format=torch.channels_last))


def build_qformer(
    config: Any, num_query_token: int, vision_width: int, cross_attention_freq: int
) -> tuple[nn.Module, nn.Parameter]:
    """LAVIS's Q-Former (BERT with cross-attention) and its query tokens, random weights."""
    from lavis.models.blip2_models.Qformer import BertLMHeadModel

    config.encoder_width = vision_width
    config.add_cross_attention = True
    config.cross_attention_freq = cross_attention_freq
    config.query_length = num_query_token
    # Q-Former weights come from the BLIP-2 checkpoint (or stay random in tiny)
    qformer = BertLMHeadModel(config)
    query_tokens = nn.Parameter(torch.zeros(1, num_query_token, config.hidden_size))
    query_tokens.data.normal_(mean=0.0, std=config.initializer_range)
    return qformer, query_tokens


def _plain(value: Any) -> Any:
    if value is None:
        return None
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value) if not isinstance(value, dict) else value


def prompted(text: str, text_processor: Any, prompt: str) -> str:
    """The question as the model sees it in train, eval and predict alike: processed, prompted."""
    q = text_processor(text) if text_processor is not None else text
    return prompt.format(q) if prompt else q


def processed_image(vis_processor: Any, path: str | os.PathLike[str]) -> Any:
    """The model's input tensor for one image file, the same in training, eval and predict.

    ``open_rgb`` applies EXIF orientation, scales 16-bit images and refuses
    truncated files and decompression bombs (``DataError`` naming the file).
    """
    return vis_processor(open_rgb(path))


registry.register_builder(BUILDER_NAME)(FalldownVQABuilder)
registry.register_model(MODEL_ARCH)(FalldownBlip2T5)
# blip_image_train with an autocontrast that does not wrap around (see _processors.py)
registry.register_processor(PROCESSOR_NAME)(FalldownImageTrainProcessor)
