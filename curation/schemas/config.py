"""The LAVIS run config (``lavis.yaml``) as pydantic models (``extra="forbid"``).

The YAML keeps LAVIS's own shape (``model``, ``datasets``, ``run``) so LAVIS
reads it unchanged; these models settle the known traps before LAVIS starts:
``run.task`` must be set, ``inference_method`` must be ``generate`` (BLIP-2
has no ``rank``), the question prompt is applied by the dataset in train,
eval and predict alike (so ``run.prompt`` stays empty), and every path is
relative to the YAML file's folder.
"""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from curation.contract import MODEL_ARCH, PROMPT, seed_problem


def _in_seed_range(value: int) -> int:
    if (problem := seed_problem(value)) is not None:
        raise ValueError(problem)
    return value


#: a seed, checked where the config is read (numpy refuses others only once training runs)
Seed = Annotated[int, AfterValidator(_in_seed_range)]


def _leaf_types(annotation: Any) -> set[Any]:
    """The types a field admits: ``int | None`` -> {int, NoneType}; ``Literal[1]`` -> {int}."""
    if get_origin(annotation) is Literal:
        return {type(v) for v in get_args(annotation)}
    args = get_args(annotation)
    if args and get_origin(annotation) in (Union, UnionType):
        return set().union(*(_leaf_types(a) for a in args))
    return {annotation}


class _Strict(BaseModel):
    # inf and nan are no learning rate or size: "greater than 0" would not say why
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads true as 1 for an int field; YAML reads yes/no/on/off as booleans
        if isinstance(value, bool) and info.field_name:
            leaves = _leaf_types(cls.model_fields[info.field_name].annotation)
            if leaves & {int, float} and bool not in leaves:
                raise ValueError(
                    f"expected a number, got the boolean {str(value).lower()} (YAML reads "
                    "true/false/yes/no/on/off as booleans)"
                )
        return value


class VitConfig(_Strict):
    patch_size: int = Field(16, gt=0)
    width: int = Field(64, gt=0)
    depth: int = Field(2, gt=0)
    heads: int = Field(2, gt=0)
    stem: Literal["patch", "conv"] = Field(
        "patch", description="patch: LAVIS's linear patch embedding; conv: a small CNN (hybrid ViT)"
    )
    stem_channels: int = Field(
        16, gt=0, le=1024, description="the conv stem's first channel count (at most 1024)"
    )

    @model_validator(mode="after")
    def _heads_divide_width(self) -> VitConfig:
        if self.width % self.heads:
            raise ValueError(f"vit.heads ({self.heads}) must divide vit.width ({self.width})")
        if self.stem == "conv" and (self.patch_size < 2 or self.patch_size & (self.patch_size - 1)):
            raise ValueError(
                f"vit.patch_size ({self.patch_size}) must be a power of two with stem: conv "
                "(the stem halves the image once per layer)"
            )
        return self


class QFormerConfig(_Strict):
    hidden_size: int = Field(64, gt=0)
    layers: int = Field(2, gt=0)
    heads: int = Field(2, gt=0)
    cross_attention_freq: int = Field(1, gt=0)

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> QFormerConfig:
        if self.hidden_size % self.heads:
            raise ValueError(
                f"qformer.heads ({self.heads}) must divide qformer.hidden_size ({self.hidden_size})"
            )
        return self


class ModelConfig(_Strict):
    """``model:``: our ``falldown_blip2_t5`` (LAVIS's ``Blip2T5``, local files only)."""

    arch: Literal["falldown_blip2_t5"] = MODEL_ARCH
    model_type: str = Field(description="a model preset's name (curation/data/presets/)")
    load_finetuned: bool = False
    pretrained: str | None = Field(None, description="BLIP-2 checkpoint .pth (local path)")
    finetuned: str | None = None
    vit_weights: str | None = Field(None, description="EVA-ViT-g weights .pth (local path)")
    t5_model: str = Field(description="Flan-T5 folder (local path)")
    qformer_tokenizer: str = Field(description="BERT tokenizer/config folder for the Q-Former")
    image_size: int = Field(gt=0)
    vit: VitConfig | None = None
    qformer: QFormerConfig | None = None
    num_query_token: int = Field(gt=0)
    freeze_vit: bool = True
    freeze_t5: bool = True
    vit_precision: Literal["fp16", "fp32"] = "fp16"
    drop_path_rate: float = 0.0
    use_grad_checkpoint: bool = False
    max_txt_len: int = Field(32, gt=0)
    prompt: str = ""
    init_seed: Seed = 0
    apply_lemmatizer: bool = False

    @model_validator(mode="after")
    def _sections_the_preset_sets(self) -> ModelConfig:
        from curation.presets import get_preset

        preset = get_preset(self.model_type).model
        if self.vit is None and preset.get("vit") is not None:
            raise ValueError(
                f"model.vit is null, but the {self.model_type} preset's model has a small ViT: "
                "null would build the full EVA-ViT-g (1B parameters) into it. Fix: remove "
                "the model.vit override (or set its keys, e.g. model.vit.depth=3)"
            )
        if self.qformer is None and preset.get("qformer") is not None:
            raise ValueError(
                f"model.qformer is null, but the {self.model_type} preset's model sets its "
                "Q-Former's size: null would take it from the tokenizer folder's config.json "
                "and the run's config.yaml would not record it. Fix: remove the model.qformer "
                "override (or set its keys, e.g. model.qformer.layers=3)"
            )
        return self

    @model_validator(mode="after")
    def _patch_fits_the_image(self) -> ModelConfig:
        if self.vit is not None and self.vit.patch_size > self.image_size:
            raise ValueError(
                f"vit.patch_size ({self.vit.patch_size}) is larger than image_size "
                f"({self.image_size}): the ViT would see no patch"
            )
        return self

    @field_validator("model_type")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        from curation.errors import UsageError
        from curation.presets import get_preset  # a leaf module: no cycle

        try:
            return get_preset(value).name
        except UsageError as exc:
            raise ValueError(str(exc)) from None


class ProcessorConfig(BaseModel):
    """A LAVIS processor: ``name`` from LAVIS's registry plus its own options."""

    model_config = ConfigDict(extra="allow")
    name: str


class SplitPair(_Strict):
    train: ProcessorConfig
    eval: ProcessorConfig


class AnnotationStorage(_Strict):
    storage: str | list[str]


class ImageStorage(_Strict):
    storage: str


class BuildInfo(_Strict):
    annotations: dict[Literal["train", "val", "test"], AnnotationStorage]
    images: ImageStorage


class DatasetConfig(_Strict):
    """One entry of ``datasets:``; its key is the LAVIS builder name."""

    builder: str | None = Field(
        None,
        description="Register this dataset key as an alias of this builder (e.g. falldown_vqa).",
    )
    data_type: Literal["images"] = "images"
    prompt: str = Field(
        PROMPT,
        description="Question template applied in train, eval and predict alike.",
    )
    vis_processor: SplitPair
    text_processor: SplitPair
    build_info: BuildInfo

    @field_validator("prompt")
    @classmethod
    def _one_slot(cls, value: str) -> str:
        # the dataset fills it with str.format: any other brace breaks the data loader
        if value and (
            value.count("{}") != 1
            or "{" in value.replace("{}", "")
            or "}" in value.replace("{}", "")
        ):
            raise ValueError(
                'the prompt needs exactly one "{}" where the question goes and no other '
                "braces (str.format fills it), e.g. 'Question: {} Short answer:'"
            )
        return value


class RunConfig(_Strict):
    """``run:``: LAVIS's runner and VQA task settings."""

    task: Literal["vqa"] = Field(description="LAVIS task; must be set (vqa).")
    runner: Literal["runner_base"] = "runner_base"
    lr_sched: Literal["linear_warmup_cosine_lr", "linear_warmup_step_lr"] = (
        "linear_warmup_cosine_lr"
    )
    init_lr: float = Field(gt=0)
    min_lr: float = Field(0.0, ge=0)
    warmup_lr: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    lr_decay_rate: float | None = None
    weight_decay: float = Field(0.05, ge=0)
    max_epoch: int = Field(gt=0)
    batch_size_train: int = Field(gt=0)
    batch_size_eval: int = Field(gt=0)
    num_workers: int = Field(0, ge=0)
    accum_grad_iters: int = Field(1, gt=0)
    log_freq: int = Field(10, gt=0)
    max_len: int = Field(10, gt=0)
    min_len: int = Field(1, gt=0)
    num_beams: int = Field(1, gt=0)
    num_ans_candidates: int = 128
    inference_method: Literal["generate"] = Field(
        "generate", description="BLIP-2 supports only generate (LAVIS's default 'rank' fails)."
    )
    prompt: Literal[""] = Field(
        "", description="Leave empty: the dataset applies datasets.*.prompt everywhere."
    )
    seed: Seed = 42
    output_dir: str = "runs"
    amp: bool = False
    # speed options (curation/training/speed_options.py, and FalldownRunner in
    # _lavis_runner.py); off by default, so a run is LAVIS's own unless asked
    amp_dtype: Literal["fp16", "bf16"] = Field(
        "fp16",
        description="with run.amp on CUDA: fp16 (LAVIS's autocast + GradScaler) or bf16 "
        "(autocast in bfloat16, no GradScaler; Ampere or newer)",
    )
    fused_adamw: bool = Field(
        False, description="torch's fused AdamW (one kernel for all parameters) in place of LAVIS's"
    )
    compile_frozen: bool = Field(
        False,
        description="torch.compile the frozen ViT and T5 blocks (weights and state-dict "
        "names unchanged); the first steps pay the compile time",
    )
    device: Literal["cpu", "cuda", "auto"] = "auto"
    resume_ckpt_path: str | None = None
    evaluate: bool = False
    train_splits: list[str] = ["train"]
    valid_splits: list[str] = ["val"]
    test_splits: list[str] = ["test"]
    distributed: Literal[False] = Field(
        False,
        description="Leave False: curate train --nproc-per-node N switches LAVIS's "
        "distributed mode on for the processes it launches.",
    )
    world_size: Literal[1] = 1
    dist_url: str = "env://"
    dist_timeout: int = Field(
        600,
        gt=0,
        description="Seconds a process of a distributed run waits for the others at a "
        "collective (gloo/nccl) before the run fails; a dead rank never hangs it.",
    )


class TrainConfig(_Strict):
    """A whole ``lavis.yaml``."""

    model: ModelConfig
    datasets: dict[str, DatasetConfig] = Field(min_length=1)
    run: RunConfig

    @model_validator(mode="after")
    def _images_fit_the_vit(self) -> TrainConfig:
        # LAVIS's ViT asserts its input size deep inside the first forward: say it here
        for name, dataset in self.datasets.items():
            for split in ("train", "eval"):
                size = (getattr(dataset.vis_processor, split).model_extra or {}).get("image_size")
                where = f"datasets.{name}.vis_processor.{split}.image_size"
                if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
                    raise ValueError(f"{where} must be a whole number of pixels, got {size!r}")
                if size is not None and size != self.model.image_size:
                    raise ValueError(
                        f"{where} ({size}) differs from model.image_size "
                        f"({self.model.image_size}): the ViT is built for one size. Fix: set "
                        "both to the same value"
                    )
        return self

    def to_yaml_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
