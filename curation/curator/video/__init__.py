"""`curate ingest LABELS --videos DIR`: cut labelled frames out of videos into the task dataset.

Label sources, told apart by their header (``segments``):

- OmniFall's segment CSV ``path,label,start,end,subject,cam,dataset`` (``label``
  a class id or name, times in seconds, ``subject`` -1 when unknown); videos at
  ``{videos}/{dataset}/video/{path}.mp4``.
- A generic segment file, CSV or JSON (a list of objects): ``video`` (relative
  to ``--videos``, with its extension), ``label`` (a class name or id),
  ``start``/``end`` in seconds or ``start_frame``/``end_frame`` (frame numbers
  from 0, both inclusive), optional ``subject``, ``camera``, ``dataset``.
- A folder of whole clips: ``fall/`` ("yes"), ``no_fall/`` and
  ``no_fall/<kind>/`` ("no", with that ``negative_kind``), ``unsure/``.

The class map (``curation.class_map``) turns a class into "yes", "no" (with its
``negative_kind``) or unsure. Frames are sampled at ``fps`` (the first frame at
or after each k/fps, by exact presentation time; ``FrameSampler``) or every n-th
frame; a frame less than ``margin`` seconds from a boundary between segments,
or in two segments whose answers differ, or in an "unsure" class, is kept
without an answer and tagged ``unsure`` (out of exports until a reviewer tags
``relabel:yes``/``relabel:no``), except the middle frame of a "yes" segment,
which keeps its answer; a frame in no segment is not ingested (``sampling``).
The schedule (``Sampling``) is stored on each frame (``sampling``) and in the
result. Each frame is a JPEG named by its video's content and frame index, so
re-ingest writes and adds nothing new (``decode``); the frames join the task
dataset through ``ingest.add_items`` (the images' own checks and hashes) and each
video, with its segments as ``TemporalDetections``, joins the sibling dataset
``NAME-videos`` for the App's video player (``dataset``). ``ingest`` runs it all.

Decoding is PyAV's (FFmpeg's libraries in the wheel, extra ``video``):
FiftyOne's own frame sampling (``fiftyone.utils.video``) shells out to the
``ffmpeg`` and ``ffprobe`` binaries, which no pip package installs together.
"""

from curation.curator.video.decode import JPEG_QUALITY, Cut, VideoProblem, cut_video
from curation.curator.video.ingest import (
    SkippedVideo,
    VideoIngestRequest,
    VideoIngestResult,
    ingest_video_request,
    ingest_videos,
    refuse_video_only_options,
    video_only_options,
)
from curation.curator.video.sampling import (
    DEFAULT_FPS,
    DEFAULT_MARGIN,
    MAX_FPS,
    FrameSampler,
    Sampling,
    Span,
    sample_indices,
    schedule,
)
from curation.curator.video.segments import (
    OMNIFALL_COLUMNS,
    VIDEO_SUFFIXES,
    SegmentRow,
    clip_folder_segments,
    group_segments,
    is_video_source,
    read_segments,
)

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_MARGIN",
    "JPEG_QUALITY",
    "MAX_FPS",
    "OMNIFALL_COLUMNS",
    "VIDEO_SUFFIXES",
    "Cut",
    "FrameSampler",
    "SegmentRow",
    "SkippedVideo",
    "Sampling",
    "Span",
    "VideoIngestRequest",
    "VideoIngestResult",
    "VideoProblem",
    "clip_folder_segments",
    "cut_video",
    "group_segments",
    "ingest_video_request",
    "ingest_videos",
    "is_video_source",
    "read_segments",
    "refuse_video_only_options",
    "sample_indices",
    "schedule",
    "video_only_options",
]
