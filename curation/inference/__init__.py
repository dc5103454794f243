"""What answers a question about an image: load a model, score P(yes), answer at a threshold.

``curate predict``, ``eval``, ``find-issues``, ``quantize`` and ``serve`` all score
through this package:

- :mod:`curation.inference.model`: ``load_model`` (a checkpoint or a model folder,
  on CPU or GPU) and ``LoadedModel``;
- :mod:`curation.inference.scoring`: ``p_yes`` and ``answer`` (generated text) for
  a batch of images (paths or PIL images) and questions;
- :mod:`curation.inference.operating_point`: the threshold file (read, write,
  fingerprint, "never yes") and ``answer_at``;
- :mod:`curation.inference.schemes`: the quantization schemes;
- :mod:`curation.inference.predict`: the library side of ``curate predict``.

Importing this package does not import torch or LAVIS.
"""
