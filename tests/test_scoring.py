"""P(yes) from the model: the decoder log-likelihood of "yes" and "no", softmaxed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLE

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model_and_batch(tmp_path_factory: pytest.TempPathFactory):
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    from curation.export import ExportOptions, export_task
    from curation.images import open_rgb
    from curation.training import import_plugin
    from curation.training.config import absolute_dict, load_train_config

    out = tmp_path_factory.mktemp("scoring") / "export"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    import_plugin()
    data = absolute_dict(load_train_config(out / "lavis.yaml"))
    model = registry.get_model_class(data["model"]["arch"]).from_config(
        OmegaConf.create(data["model"])
    )
    model.eval()
    vis_cfg = next(iter(data["datasets"].values()))["vis_processor"]["eval"]
    vis = registry.get_processor_class(vis_cfg["name"]).from_config(OmegaConf.create(vis_cfg))
    images = [SAMPLE / "fall" / "0000.png", SAMPLE / "no_fall" / "0001.png"]
    image = torch.stack([vis(open_rgb(p)) for p in images])
    prompt = "Question: is anyone falling in this image? Short answer:"
    return model, {"image": image, "text_input": [prompt] * len(images)}


def test_score_is_the_log_likelihood_lavis_forward_trains(model_and_batch) -> None:
    model, batch = model_and_batch
    scores = model.score_answers(batch, ("yes", "no"))
    assert scores.shape == (2, 2) and bool((scores < 0).all())
    for i in range(2):
        one = {"image": batch["image"][i : i + 1], "text_input": batch["text_input"][i : i + 1]}
        for j, answer in enumerate(("yes", "no")):
            n_tokens = len(model.t5_tokenizer(answer).input_ids)  # the answer and </s>
            with torch.no_grad():
                loss = model({**one, "text_output": [answer]})["loss"]
            assert scores[i, j].item() == pytest.approx(-loss.item() * n_tokens, rel=1e-4)


def test_p_yes_and_p_no_sum_to_one(model_and_batch) -> None:
    model, batch = model_and_batch
    yes_first = torch.softmax(model.score_answers(batch, ("yes", "no")), dim=1)
    no_first = torch.softmax(model.score_answers(batch, ("no", "yes")), dim=1)
    total = yes_first[:, 0] + no_first[:, 0]
    assert torch.allclose(total, torch.ones(2), atol=1e-6)
    assert bool(((yes_first > 0) & (yes_first < 1)).all())


def test_p_yes_through_a_loaded_model(model_and_batch, tmp_path: Path) -> None:
    from curation.inference.model import LoadedModel
    from curation.inference.scoring import p_yes

    model, batch = model_and_batch
    loaded = LoadedModel(model, lambda im: batch["image"][0], lambda q: q, None, "cpu", {})
    probs = p_yes(loaded, [SAMPLE / "fall" / "0000.png"] * 3, ["q"] * 3, batch_size=2)
    assert len(probs) == 3 and all(0 < p < 1 for p in probs)
    assert probs[0] == pytest.approx(probs[2], rel=1e-4)  # same input, either batch
