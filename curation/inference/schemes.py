"""Quantization schemes by name: what each does to a model, and which modules it leaves alone.

``bf16`` casts weights to bfloat16 (the model then runs under bf16 autocast);
``int8-weight`` stores Linear weights as int8 (weight-only, torchao
``Int8WeightOnlyConfig``); ``int8-dynamic`` adds int8 activations quantized per
call (torchao ``Int8DynamicActivationInt8WeightConfig``). Both int8 schemes go
through torchao's ``quantize_``: the legacy ``torch.ao.quantization.quantize_dynamic``
is deprecated and swaps T5's ``wo`` for a module without the ``weight.dtype``
that Hugging Face's T5 reads.

There is no fp16 scheme: T5 overflows in fp16 (the feed-forward ``wo`` output
exceeds 65504 and turns into inf, then NaN).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curation.errors import UsageError

#: The names ``curate quantize --scheme`` takes.
SCHEMES = ("bf16", "int8-weight", "int8-dynamic")
#: The unquantized model, as a manifest names it.
FULL_PRECISION = "fp32"

#: Why a module stays in full precision under int8.
KEPT_WO = "T5 feed-forward output (wo): int8 error there turns FlanT5's answers to nonsense"
KEPT_LM_HEAD = "T5 lm_head: P(yes) is read from its logits"
KEPT_NORM = "layer norm: kept in float32"
KEPT_EVA_QKV = (
    "EVA-ViT attention qkv: LAVIS calls F.linear(input=..., weight=...) by keyword, which "
    "torchao's int8 weight does not take"
)


@dataclass
class AppliedScheme:
    """What a scheme changed: modules quantized (or cast), and those kept with the reason."""

    scheme: str
    quantized: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)


def check_scheme(scheme: str) -> str:
    """``scheme`` if it is one of :data:`SCHEMES`; UsageError naming the valid ones otherwise."""
    if scheme in SCHEMES or scheme == FULL_PRECISION:
        return scheme
    why = (
        " (there is no fp16 scheme: T5 overflows in fp16; bf16 has float32's range)"
        if scheme.lower() in ("fp16", "float16", "half")
        else ""
    )
    raise UsageError(f"unknown scheme {scheme!r}{why}. Fix: --scheme one of {', '.join(SCHEMES)}")


def kept_reason(name: str, module: Any) -> str | None:
    """Why the module ``name`` stays out of int8, or None when it may be quantized."""
    import torch

    last = name.rsplit(".", 1)[-1]
    if last == "wo":
        return KEPT_WO
    if last == "lm_head":
        return KEPT_LM_HEAD
    if name.startswith("visual_encoder.") and name.endswith(".attn.qkv"):
        return KEPT_EVA_QKV
    if isinstance(module, torch.nn.LayerNorm) or "layernorm" in type(module).__name__.lower():
        return KEPT_NORM
    return None


def apply_scheme(model: Any, scheme: str) -> AppliedScheme:
    """Quantize ``model`` in place with ``scheme`` (on its current device) and say what changed.

    Raises:
        UsageError: an unknown scheme.
        MissingDependencyError: torchao is not installed (int8 schemes).
    """
    import torch

    check_scheme(scheme)
    applied = AppliedScheme(scheme)
    if scheme == FULL_PRECISION:
        return applied
    linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    norms = {n: m for n, m in model.named_modules() if kept_reason(n, m) == KEPT_NORM}
    applied.kept.update({n: KEPT_NORM for n in norms})
    if scheme == "bf16":
        model.to(torch.bfloat16)
        for module in norms.values():
            module.float()
        applied.quantized = sorted(
            n
            for n, m in model.named_modules()
            if n not in norms
            and any(p.dtype == torch.bfloat16 for p in m.parameters(recurse=False))
        )
        return applied
    quantize_, config = _torchao_config(scheme)
    eligible = set()
    for name, module in linears.items():
        reason = kept_reason(name, module)
        if reason:
            applied.kept[name] = reason
        else:
            eligible.add(name)
    quantize_(model, config, filter_fn=lambda _m, fqn: fqn in eligible)
    applied.quantized = sorted(eligible)
    return applied


def _torchao_config(scheme: str) -> tuple[Any, Any]:
    from curation.errors import MissingDependencyError

    try:
        from torchao.quantization import (
            Int8DynamicActivationInt8WeightConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )
    except ImportError:
        raise MissingDependencyError("torchao", "quantize") from None
    config = (
        Int8WeightOnlyConfig()
        if scheme == "int8-weight"
        else Int8DynamicActivationInt8WeightConfig()
    )
    return quantize_, config


def autocast_dtype(scheme: str) -> Any:
    """The dtype a scheme's model runs under autocast (None: no autocast)."""
    import torch

    return torch.bfloat16 if scheme == "bf16" else None
