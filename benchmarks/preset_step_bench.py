"""CPU seconds per training step of a preset's model (forward + backward + AdamW), by variant.

    OMP_NUM_THREADS=1 python benchmarks/preset_step_bench.py EXPORT/lavis.yaml [key=value ...]

Builds the export's model from its config (random weights, the real LAVIS Blip2T5 code),
then times a few steps on random images with the export's first training questions.
Prints wall and process-CPU seconds per step: on a shared machine only the CPU figure
compares across runs. Overrides (model.vit.patch_size=8 ...) try variants of the preset.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    import torch
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    from curation.training import import_plugin
    from curation.training.config import absolute_dict
    from curation.training.train import prepare

    config, overrides = Path(sys.argv[1]), sys.argv[2:]
    loaded, _ = prepare(config, overrides)
    import_plugin()
    data = absolute_dict(loaded)
    batch = int(data["run"]["batch_size_train"])
    model = registry.get_model_class(data["model"]["arch"]).from_config(
        OmegaConf.create(data["model"])
    )
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    records = json.loads((config.parent / "train.json").read_text())[:batch]
    size = int(data["model"]["image_size"])
    samples = {
        "image": torch.randn(batch, 3, size, size),
        "text_input": [r["text_input"] for r in records],
        "text_output": [r["answer"][0] for r in records],
    }
    params = sum(p.numel() for p in model.parameters())

    def step() -> None:
        loss = model(samples)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    n = 20
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        step()
    wall, cpu = (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{config} {' '.join(overrides) or '(preset as shipped)'}: {params / 1e6:.2f} M params, "
        f"batch {batch}, threads {torch.get_num_threads()}: {wall:.3f} s/step wall, "
        f"{cpu:.3f} s/step CPU (load average {load})"
    )


if __name__ == "__main__":
    main()
