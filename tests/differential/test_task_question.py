"""The task question asked in another case, scored as the records the threshold was fitted on.

The operating point is chosen on P(yes) of the export's task records, asked with
their ``text_input`` exactly. A second way to the text the model must see for
"IS ANYONE FALLING IN THIS IMAGE": the raw val.json record's ``text_input``, run
through LAVIS's own question processor (``blip_question``, built from the raw
lavis.yaml) and the dataset's prompt; and the P(yes) ``curate predict`` gives for
the shouted question must be the one it gives for the record's own text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import SAMPLE
from typer.testing import CliRunner

pytest.importorskip("lavis")

from curation.cli import app  # noqa: E402
from curation.export import ExportOptions, export_task  # noqa: E402
from curation.training.train import train  # noqa: E402

SHOUTED = "IS ANYONE FALLING IN THIS IMAGE"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("task-question") / "export"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    train(out / "lavis.yaml", ["run.max_epoch=1"], run_id="t")
    return out / "runs" / "t" / "checkpoint_0.pth"


def test_a_shouted_task_question_is_the_text_and_score_of_the_records(checkpoint: Path) -> None:
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    from curation.evaluate.run import default_image_root
    from curation.inference.model import load_model
    from curation.schemas.questions import canonical_question

    export = checkpoint.parents[2]
    record = json.loads((export / "val.json").read_text())[0]
    dataset = next(iter(yaml.safe_load((export / "lavis.yaml").read_text())["datasets"].values()))
    cfg = dataset["text_processor"]["eval"]
    lavis_text = registry.get_processor_class(cfg["name"]).from_config(OmegaConf.create(cfg))
    expected = dataset["prompt"].format(lavis_text(record["text_input"]))
    loaded = load_model(checkpoint)
    assert loaded.question(canonical_question(SHOUTED)) == expected

    scored = {}
    for question in (record["text_input"], SHOUTED):
        image = default_image_root(export / "val.json") / record["image"]
        result = CliRunner().invoke(
            app, ["predict", str(checkpoint), str(image), "--json", "--question", question]
        )
        assert result.exit_code == 0, result.output
        scored[question] = json.loads(result.output[result.output.index("[") :])[0]["p_yes"]
    assert scored[SHOUTED] == pytest.approx(scored[record["text_input"]], abs=1e-9)
