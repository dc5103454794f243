"""The sibling video dataset ``NAME-videos``: each video with its segments as
``TemporalDetections`` (their frame ranges: ``sampling.segment_support``), for the
App's video player."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curation.curator.video.decode import Cut


def add_videos(
    name: str,
    frames_dataset: str,
    cuts: list[Cut],
    source_path: str,
    overwrite: bool,
    relabel: bool = False,
) -> None:
    """Each video with its segments as ``TemporalDetections`` in the sibling video dataset
    (with ``relabel``, a video already there gets the label file's segments again)."""
    from curation.curator._fo import fiftyone, user_datasets

    fo = fiftyone()
    if overwrite and name in user_datasets(fo):
        fo.delete_dataset(name)
    ds = fo.load_dataset(name) if name in user_datasets(fo) else fo.Dataset(name, persistent=True)
    existing = set(ds.distinct("ingest_key")) if "ingest_key" in ds.get_field_schema() else set()
    # the same video file from a label file under another name is the same video
    key_of_file = (
        {
            path: key
            for path, key, where in zip(
                *ds.values(["filepath", "ingest_key", "source_path"]), strict=True
            )
            if where != source_path
        }
        if len(ds)
        else {}
    )
    samples = []
    relabelled: dict[str, Any] = {}
    for c in cuts:
        key = hashlib.sha1(
            f"{source_path}\0{c.video}\0{c.sha256}".encode("utf-8", "surrogatepass")
        ).hexdigest()
        if key not in existing and key_of_file.get(str(c.path.resolve())) in existing:
            key = key_of_file[str(c.path.resolve())]
        if key in existing and not relabel:
            continue
        detections = []
        for seg, support in zip(c.segments, c.supports, strict=True):
            if support is None:  # no decoded frame lies in it (named in empty_yes if "yes")
                continue
            detections.append(
                fo.TemporalDetection(label=seg.name, support=list(support), answer=seg.rule.answer)
            )
        if key in existing:
            relabelled[key] = fo.TemporalDetections(detections=detections)
            continue
        seg0 = c.segments[0]
        sample = fo.Sample(
            filepath=str(c.path.resolve()),
            video=c.video,
            source_path=source_path,
            ingest_key=key,
            frames_dataset=frames_dataset,
            subject=seg0.subject,
            camera=seg0.camera,
            source_dataset=seg0.source_dataset,
            segments=fo.TemporalDetections(detections=detections),
        )
        sample.metadata = fo.VideoMetadata(
            size_bytes=c.path.stat().st_size,
            frame_width=c.size[0] or None,
            frame_height=c.size[1] or None,
            frame_rate=c.fps,
            total_frame_count=c.frames,
            duration=c.duration,
        )
        samples.append(sample)
    if relabelled:
        ids = dict(zip(*ds.values(["ingest_key", "id"]), strict=True))
        ds.set_values("segments", {ids[k]: v for k, v in relabelled.items()}, key_field="id")
    if samples:
        ds.add_samples(samples, progress=False)
