"""`curate watch`: frames sampled by time, scored, turned into events; damaged input skipped."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curation.cli import app
from curation.events import EventParams
from curation.events.frames import FrameSourceError, read_frames
from curation.events.watch import event_params_for, watch_video
from tests._footage import TableScorer, patch_scorer, tiny_footage, truncate

av = pytest.importorskip("av")
runner = CliRunner()


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("footage")
    videos = tiny_footage(root)
    return root, videos


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_watch_prints_one_fall_alert_per_fall_as_json_lines(footage, monkeypatch) -> None:
    root, videos = footage
    video = videos[0]
    patch_scorer(monkeypatch, TableScorer(videos))
    result = runner.invoke(app, ["watch", str(video.file), "--model", "m.pth", "--json"])
    assert result.exit_code == 0, result.output
    events = json_lines(result.stdout)
    falls = [e for e in events if e["kind"] == "fall"]
    truth = [s for s in video.segments if s.label == "fall"]
    assert len(falls) == len(truth) == video.falls
    for alert, fall in zip(falls, truth, strict=True):
        # the episode opens within the fall (frames every 0.5 s, EMA over 1 s)
        assert fall.start - 0.5 <= alert["start"] <= fall.end + 2.0
        assert alert["end"] >= alert["start"]
        assert alert["video"] == video.file.name and alert["camera"] == video.file.stem
    assert {"fall", "resolved"} <= {e["kind"] for e in events}


def test_watch_scores_the_frames_ingest_would_sample_by_time(tmp_path: Path) -> None:
    from curation.curator.video import sample_indices
    from curation.synthetic_video import write_marker_clip

    # a variable frame rate: frames bunch up and spread out, the clock must not drift
    times = [0.0, 0.1, 0.15, 0.2, 0.9, 1.0, 1.05, 1.6, 2.4, 2.45, 3.3, 3.31, 4.0]
    clip = write_marker_clip(tmp_path / "vfr.mp4", len(times), times=times)
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        pts = [Fraction(f.pts) * Fraction(stream.time_base) for f in container.decode(stream)]
    expected = [float(pts[i]) for i in sample_indices(pts, fps=2.0)]

    class Constant:
        threshold, note = 0.5, ""

        def score(self, images):
            return [0.1] * len(images)

    watched = watch_video(clip, Constant(), EventParams(fps=2.0), 0.5, batch_size=3)
    assert [t for t, _ in watched.scores] == expected
    assert watched.problem is None


def test_watch_skips_a_truncated_file_with_a_message_and_watches_the_rest(
    footage, tmp_path: Path, monkeypatch
) -> None:
    root, videos = footage
    folder = tmp_path / "cams"
    folder.mkdir()
    good = folder / "a_good.mp4"
    good.write_bytes(videos[0].file.read_bytes())
    bad = folder / "b_broken.mp4"
    bad.write_bytes(videos[1].file.read_bytes())
    truncate(bad)
    patch_scorer(monkeypatch, TableScorer(videos))
    result = runner.invoke(app, ["watch", str(folder), "--model", "m.pth", "--json"])
    assert result.exit_code == 0, result.output
    assert "b_broken.mp4" in result.stderr and "Fix:" in result.stderr
    assert "Traceback" not in result.output
    events = json_lines(result.stdout)
    assert {e["video"] for e in events} == {"a_good.mp4"}
    assert sum(e["kind"] == "fall" for e in events) == videos[0].falls
    assert "1 skipped" in result.stderr


def test_watch_of_only_broken_files_exits_1(tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    patch_scorer(monkeypatch, TableScorer([]))
    result = runner.invoke(app, ["watch", str(bad), "--model", "m.pth", "--json"])
    assert result.exit_code == 1
    assert "broken.mp4" in result.stderr and "not a readable video" in result.stderr


def test_watch_clips_writes_a_strip_per_alert_and_a_timeline(
    footage, tmp_path: Path, monkeypatch
) -> None:
    root, videos = footage
    patch_scorer(monkeypatch, TableScorer(videos))
    clips = tmp_path / "clips"
    result = runner.invoke(
        app, ["watch", str(videos[0].file), "--model", "m.pth", "--json", "--clips", str(clips)]
    )
    assert result.exit_code == 0, result.output
    alerts = [e for e in json_lines(result.stdout) if e["kind"] in ("fall", "long_lie")]
    assert alerts and all(Path(e["clip"]).is_file() for e in alerts)
    strips = sorted(p.name for p in clips.iterdir() if not p.name.endswith("_timeline.png"))
    assert strips == sorted(Path(e["clip"]).name for e in alerts)
    assert (clips / f"{videos[0].file.stem}_timeline.png").is_file()
    assert "timeline: " in result.stderr
    from PIL import Image

    with Image.open(alerts[0]["clip"]) as strip:
        assert strip.height == 96 and strip.width >= 96


def test_ctrl_c_reports_the_open_alert_as_resolved_before_stopping(footage, monkeypatch) -> None:
    root, videos = footage
    table = TableScorer(videos)

    class InterruptedAfterAlert:
        threshold, note = 0.5, ""

        def __init__(self) -> None:
            self.high = 0

        def score(self, images):
            scores = table.score(images)
            self.high += sum(p > 0.5 for p in scores)
            if self.high > 6:  # well after the alert, the fall still on screen
                raise KeyboardInterrupt
            return scores

    patch_scorer(monkeypatch, InterruptedAfterAlert())
    result = runner.invoke(
        app, ["watch", str(videos[0].file), "--model", "m.pth", "--json", "--batch-size", "1"]
    )
    assert result.exit_code == 130
    events = json_lines(result.stdout)
    assert [e["kind"] for e in events] == ["fall", "resolved"]
    assert events[1]["stream_ended"] is True
    assert "interrupted" in result.stderr


def test_watch_without_a_threshold_says_how_to_get_one(footage, monkeypatch) -> None:
    root, videos = footage
    patch_scorer(monkeypatch, TableScorer(videos, threshold=None))
    result = runner.invoke(app, ["watch", str(videos[0].file), "--model", "m.pth"])
    assert result.exit_code == 2
    assert "no threshold" in result.stderr and "--threshold" in result.stderr


def test_watch_of_a_missing_source_is_a_usage_error(tmp_path: Path, monkeypatch) -> None:
    patch_scorer(monkeypatch, TableScorer([]))
    result = runner.invoke(app, ["watch", str(tmp_path / "nope.mp4"), "--model", "m.pth"])
    assert result.exit_code == 2
    assert "nope.mp4: no such file or folder" in result.stderr


def test_watch_reads_event_parameters_tuned_beside_the_model(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "events.yaml").write_text("min_duration: 2.5\nsmoothing: median\n")
    params, where = event_params_for(run / "checkpoint_best.pth", None, ["refractory=5"])
    assert (params.min_duration, params.smoothing, params.refractory) == (2.5, "median", 5.0)
    assert where == f"{run / 'events.yaml'} with refractory=5"
    explicit = tmp_path / "mine.yaml"
    explicit.write_text("min_duration: 0.5\n")
    params, _ = event_params_for(run / "checkpoint_best.pth", explicit, None)
    assert params.min_duration == 0.5


def test_a_stream_that_drops_is_reopened_with_backoff_then_given_up(tmp_path: Path) -> None:
    waits: list[float] = []
    said: list[str] = []
    frames = read_frames(
        "http://127.0.0.1:9/camera.mp4",  # the discard port: the connection is refused
        2.0,
        retries=3,
        backoff=0.5,
        timeout=2.0,
        on_retry=said.append,
        sleep=waits.append,
    )
    with pytest.raises(FrameSourceError, match="gave up after 3 reconnection"):
        list(frames)
    assert waits == [0.5, 1.0, 2.0]
    assert len(said) == 3 and "reconnecting in 0.5 s (1/3)" in said[0]


def test_watch_scores_with_a_checkpoint_through_the_inference_layer(tmp_path: Path) -> None:
    pytest.importorskip("lavis")
    from curation.events.scorers import load_scorer
    from curation.export import ExportOptions, export_task
    from curation.inference.model import load_model
    from curation.inference.scoring import p_yes
    from curation.schemas.questions import TASK_QUESTION
    from curation.synthetic_video import write_marker_clip
    from curation.training.train import train
    from tests.conftest import SAMPLE

    out = tmp_path / "export"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    train(out / "lavis.yaml", ["run.max_epoch=1"], run_id="w")
    checkpoint = out / "runs" / "w" / "checkpoint_best.pth"
    clip = write_marker_clip(tmp_path / "clip.mp4", 12, fps=4)
    scorer = load_scorer(checkpoint, threshold=0.5)
    watched = watch_video(clip, scorer, EventParams(fps=2.0), 0.5, batch_size=4)
    # the same frames, decoded by PyAV here and scored one by one
    with av.open(str(clip)) as container:
        images = [f.to_image() for i, f in enumerate(container.decode(video=0)) if i % 2 == 0]
    expected = p_yes(load_model(checkpoint), images, [TASK_QUESTION] * len(images), 1)
    assert [t for t, _ in watched.scores] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert [p for _, p in watched.scores] == pytest.approx(expected, abs=1e-6)
    result = runner.invoke(
        app, ["watch", str(clip), "--model", str(checkpoint), "--threshold", "0.5", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "6 frames" in result.stderr


def test_server_scorer_posts_each_frame_as_an_image_field(tmp_path: Path) -> None:
    import email.parser
    import http.server
    import threading

    from PIL import Image

    from curation.events.scorers import load_scorer

    seen: list[int] = []

    class Score(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            message = email.parser.BytesParser().parsebytes(head + body)
            parts = [
                p
                for p in message.get_payload()
                if p.get_param("name", header="content-disposition") == "image"
            ]
            # P(yes): the red level of each posted frame, read back from its JPEG
            import io

            reds = [
                Image.open(io.BytesIO(p.get_payload(decode=True))).getpixel((4, 4))[0]
                for p in parts
            ]
            seen.append(len(parts))
            answer = json.dumps([{"p_yes": r / 255} for r in reds]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Score)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scorer = load_scorer(server=f"http://127.0.0.1:{server.server_port}", threshold=0.4)
        images = [Image.new("RGB", (16, 16), (red, 0, 0)) for red in (0, 128, 255)]
        scores = scorer.score(images)
    finally:
        server.shutdown()
    assert seen == [3]
    assert scores == pytest.approx([0, 128 / 255, 1], abs=0.02)
    assert scorer.threshold == 0.4


def test_sigterm_reports_the_open_alert_then_exits_143(footage, tmp_path: Path) -> None:
    """A real process scoring through a server: SIGTERM after the first alert."""
    import http.server
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    root, videos = footage

    class AlwaysFalling(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            frames = body.count(b'name="image"')
            time.sleep(0.2)  # a slow scorer: the signal comes mid-video
            answer = json.dumps([{"p_yes": 0.99}] * frames).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AlwaysFalling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    command = [sys.executable, "-c", "from curation.cli import app; app()", "watch"]
    command += [str(videos[0].file)]
    command += ["--server", url, "--threshold", "0.5", "--json", "--batch-size", "2"]
    command += ["--set", "min_duration=0", "--set", "smoothing=none"]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["kind"] == "fall"
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
    assert proc.returncode == 143, err
    events = [json.loads(line) for line in rest.splitlines() if line.startswith("{")]
    assert events[-1]["kind"] == "resolved" and events[-1]["stream_ended"] is True
    assert "terminated (SIGTERM)" in err and "Traceback" not in err


def test_threshold_on_the_command_line_wins_over_on_threshold_beside_the_model(
    footage, tmp_path: Path, monkeypatch
) -> None:
    root, videos = footage
    run = tmp_path / "run"
    run.mkdir()
    (run / "events.yaml").write_text("on_threshold: 0.25\n")
    patch_scorer(monkeypatch, TableScorer(videos))  # P(yes) 0.95 in a fall, else 0.05
    model = str(run / "checkpoint_best.pth")
    beside = runner.invoke(app, ["watch", str(videos[0].file), "--model", model, "--json"])
    assert beside.exit_code == 0, beside.output
    assert any(e["kind"] == "fall" for e in json_lines(beside.stdout))
    assert "on 0.25 (on_threshold from the event parameters)" in beside.stderr
    args = ["watch", str(videos[0].file), "--model", model, "--json", "--threshold", "0.97"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout) == []  # no frame reaches 0.97
    assert "on 0.97 (--threshold 0.97), off 0.485 (off_ratio 0.5 x on)" in result.stderr


class _ServeLike:
    """A stand-in for curate serve: its API key check, /health with the operating point,
    and its 413 answer to more images than it takes per request."""

    def __init__(self, key: str, threshold: float, max_images: int) -> None:
        import http.server
        import threading

        self.posted: list[int] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, code: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {key}":
                    return True
                self._answer(401, {"error": "missing or wrong API key"})
                return False

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self._authorised():
                    self._answer(200, {"status": "ready", "threshold": threshold})

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not self._authorised():
                    return
                n = body.count(b'name="image"')
                if n > max_images:
                    self._answer(
                        413, {"error": f"too many images: {n}, at most {max_images} per request"}
                    )
                    return
                outer.posted.append(n)
                self._answer(200, [{"p_yes": 0.9, "threshold": threshold} for _ in range(n)])

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_watch_through_a_server_takes_its_operating_point_key_and_request_limit(
    footage, monkeypatch
) -> None:
    root, videos = footage
    serve = _ServeLike("s3cret", threshold=0.7, max_images=4)
    try:
        args = ["watch", str(videos[0].file), "--server", serve.url, "--batch-size", "10"]
        monkeypatch.setenv("CURATE_API_KEY", "s3cret")
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code == 0, result.output
        assert "on 0.7 (the server's operating point" in result.stderr
        assert serve.posted and max(serve.posted) == 4  # batches of 10 split to the limit
        assert f"1 video(s), {sum(serve.posted)} frames" in result.stderr  # none lost
        monkeypatch.delenv("CURATE_API_KEY")
        refused = runner.invoke(app, args)
        assert refused.exit_code == 1
        assert "HTTP 401" in refused.stderr and "--api-key" in refused.stderr
        given = runner.invoke(app, [*args, "--api-key", "s3cret", "--threshold", "0.2"])
        assert given.exit_code == 0, given.output
        assert "on 0.2 (--threshold 0.2)" in given.stderr
    finally:
        serve.close()


def test_watch_through_a_server_that_is_down_says_it_cannot_reach_it(footage) -> None:
    import socket

    root, videos = footage
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = runner.invoke(app, ["watch", str(videos[0].file), "--server", url])
    assert result.exit_code == 1
    assert f"{url}/health: cannot reach the server" in result.stderr
    assert "refused" in result.stderr.lower() and "operating point" not in result.stderr


def test_watch_clips_of_two_videos_of_one_name_in_two_folders_stay_apart(
    footage, tmp_path: Path, monkeypatch
) -> None:
    import shutil

    root, videos = footage
    cams = tmp_path / "cams"
    for folder in ("a", "b"):
        (cams / folder).mkdir(parents=True)
        shutil.copy(videos[0].file, cams / folder / "clip.mp4")
    patch_scorer(monkeypatch, TableScorer(videos))
    clips = tmp_path / "clips"
    args = ["watch", str(cams), "--model", "m.pth", "--json", "--clips", str(clips)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    alerts = [e for e in json_lines(result.stdout) if e["kind"] in ("fall", "long_lie")]
    by_video = {e["video"]: e["camera"] for e in alerts}
    assert by_video == {"a/clip.mp4": "a/clip", "b/clip.mp4": "b/clip"}
    paths = [e["clip"] for e in alerts]
    per_video = [sum(e["video"] == v for e in alerts) for v in by_video]
    assert per_video[0] == per_video[1] > 0  # the same frames: the same alerts in each
    assert len(set(paths)) == len(paths)
    strips = [p for p in clips.iterdir() if not p.name.endswith("_timeline.png")]
    assert sorted(str(p) for p in strips) == sorted(paths)  # none written over another
    timelines = sorted(p.name for p in clips.iterdir() if p.name.endswith("_timeline.png"))
    assert timelines == ["a__clip_timeline.png", "b__clip_timeline.png"]


def test_watch_clips_at_an_existing_file_is_a_usage_error(footage, tmp_path: Path, monkeypatch):
    root, videos = footage
    taken = tmp_path / "notes.txt"
    taken.write_text("mine\n")
    scorer = TableScorer(videos)
    patch_scorer(monkeypatch, scorer)
    args = ["watch", str(videos[0].file), "--model", "m.pth", "--clips", str(taken)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"--clips {taken} is a file, not a folder" in result.stderr
    assert taken.read_text() == "mine\n" and scorer.calls == 0  # refused before scoring
    inside = runner.invoke(app, [*args[:-1], str(taken / "clips")])
    assert inside.exit_code == 2
    assert f"{taken} is a file, not a folder" in inside.stderr
