"""The speed options of a run: ``run.amp_dtype``, ``run.fused_adamw``, ``run.compile_frozen``."""

from __future__ import annotations

import contextlib
from typing import Any


def amp_dtype(run_cfg: Any) -> str | None:
    """``"fp16"`` or ``"bf16"`` when the run uses amp (LAVIS's ``run.amp``), else None."""
    if not run_cfg.get("amp", False):
        return None
    return str(run_cfg.get("amp_dtype", "fp16") or "fp16")


def train_autocast(run_cfg: Any, device: Any) -> contextlib.AbstractContextManager[Any]:
    """The bf16 autocast around one train step (``run.amp_dtype: bf16`` on CUDA), else nothing.

    LAVIS's inner loop opens an fp16 autocast only when the runner gives it a
    GradScaler; with bf16 ``FalldownRunner.scaler`` gives none, so the step
    opens its own. Outside CUDA (where ``curate train`` turns amp off) it is a no-op.
    """
    import torch

    if amp_dtype(run_cfg) == "bf16" and torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def fused_adamw(optimizer: Any) -> Any:
    """LAVIS's AdamW rebuilt as torch's fused AdamW: same parameter groups and settings."""
    import torch

    defaults = optimizer.defaults
    groups = [
        {k: v for k, v in group.items() if k not in ("fused", "foreach")}
        for group in optimizer.param_groups
    ]
    return torch.optim.AdamW(
        groups,
        lr=defaults["lr"],
        betas=defaults["betas"],
        eps=defaults["eps"],
        weight_decay=defaults["weight_decay"],
        fused=True,
    )


def compile_frozen(model: Any, backend: str = "inductor") -> list[str]:
    """Compile the frozen vision encoder and frozen T5 blocks in place; return what was compiled.

    ``nn.Module.compile`` keeps parameter and state-dict names, so checkpoints,
    resume and ``predict`` see LAVIS's names. Trainable parts are left alone
    (the tiny preset trains everything: nothing is compiled there). The ViT
    sees one image size, so it is compiled with static shapes; T5 blocks see
    text of varying length and let torch choose dynamic shapes.
    """
    compiled = []

    def frozen(module: Any) -> bool:
        return not any(p.requires_grad for p in module.parameters())

    vit = getattr(model, "visual_encoder", None)
    if vit is not None and frozen(vit):
        vit.compile(backend=backend, dynamic=False)
        compiled.append("visual_encoder")
    t5 = getattr(model, "t5_model", None)
    if t5 is not None and frozen(t5):
        for stack_name in ("encoder", "decoder"):
            for block in getattr(t5, stack_name).block:
                block.compile(backend=backend)
            compiled.append(f"t5_model.{stack_name}.block")
    return compiled
