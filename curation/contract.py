"""The names our LAVIS integration fixes, each said once.

The builder name is the YAML's ``datasets:`` key LAVIS looks up; the model
arch is our registered ``Blip2T5`` subclass; the prompt wraps every question
in train, eval and predict alike (the dataset applies it; ``run.prompt`` stays
empty). The task question itself lives with its paraphrases in
``curation.schemas.questions``.
"""

from __future__ import annotations

from typing import Final

#: Our dataset builder, registered in LAVIS's registry by ``curation.training.plugin``.
BUILDER_NAME = "falldown_vqa"
#: Our model class (LAVIS's ``Blip2T5`` built from local files).
MODEL_ARCH: Final = "falldown_blip2_t5"
#: The question template: "{}" is where the question goes.
PROMPT = "Question: {} Short answer:"
#: Written by ``curate eval`` beside eval.json (by default the run folder); read by predict.
OPERATING_POINT_FILE = "operating_point.json"
#: The largest seed: numpy's seeding takes 0 to 2**32 - 1 (``random`` and torch take more),
#: and a run seeds all three, so every seed option and ``run.seed`` take 0 to this.
SEED_MAX = 2**32 - 1


def seed_problem(value: int) -> str | None:
    """What is wrong with ``value`` as a seed, or None when every generator takes it."""
    if 0 <= value <= SEED_MAX:
        return None
    return f"{value} is not a seed: a seed is a whole number from 0 to {SEED_MAX}"
