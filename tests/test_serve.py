"""`curate serve` through real HTTP: a server process on 127.0.0.1 and httpx requests."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SAMPLE
from typer.testing import CliRunner

pytest.importorskip("lavis")
pytest.importorskip("torchao")
httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from curation.cli import app  # noqa: E402
from curation.export import ExportOptions, export_task  # noqa: E402
from curation.training.train import train  # noqa: E402

IMAGES = [SAMPLE / "fall" / "0000.png", SAMPLE / "no_fall" / "0001.png"]
KEY = "s3cret-key"
#: Server start-up, model load included, must take less than this (the loop is bounded).
START_LIMIT_S = 180


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from curation.quantize import quantize

    out = tmp_path_factory.mktemp("serve") / "export"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    train(out / "lavis.yaml", ["run.max_epoch=1"], run_id="s")
    folder = out.parent / "model"
    quantize(
        out / "runs" / "s" / "checkpoint_0.pth", "int8-weight", out / "val.json", folder, force=True
    )
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        curate = Path(sys.executable).with_name("curate")
        cmd = [str(curate), "serve", str(folder), "--port", str(self.port), *args]
        self.proc = subprocess.Popen(
            cmd,
            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.first_health: int | None = None

    def wait_live(self) -> None:
        deadline = time.monotonic() + START_LIMIT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(self.url + "/livez", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("the server did not answer /livez")

    def wait_ready(self, headers: dict[str, str] | None = None) -> None:
        deadline = time.monotonic() + START_LIMIT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            status = httpx.get(self.url + "/health", headers=headers, timeout=5).status_code
            if self.first_health is None:
                self.first_health = status
            if status == 200:
                return
            time.sleep(0.1)
        raise AssertionError("the server did not become ready")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            if self.proc.poll() is not None and self.proc.stdout:
                self.proc.stdout.close()

    def output(self) -> str:
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stdout.read() if self.proc.stdout and not self.proc.stdout.closed else ""


@pytest.fixture(scope="module")
def server(model_folder: Path) -> Iterator[Server]:
    # a batch closes at 2 images or after 3 s: two 1-image requests sent together share one
    srv = Server(
        model_folder,
        "--max-batch-size", "2", "--batch-timeout-ms", "3000",
        "--max-images", "3", "--max-upload-mb", "1",
    )  # fmt: skip
    try:
        srv.wait_live()
        srv.health_while_loading = httpx.get(srv.url + "/health", timeout=5)
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def files(*paths: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("image", (p.name, p.read_bytes(), "image/png")) for p in paths]


def metric(url: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_health_is_503_until_the_model_is_warm_then_200(server: Server) -> None:
    early = server.health_while_loading
    assert early.status_code == 503 and early.json()["status"] == "starting"
    ready = httpx.get(server.url + "/health", timeout=5)
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["scheme"] == "int8-weight"
    manifest = json.loads((Path(server.proc.args[2]) / "manifest.json").read_text())
    assert body["threshold"] == manifest["operating_point"]["threshold"]


def test_scores_equal_curate_predict_on_the_same_images(server: Server) -> None:
    folder = server.proc.args[2]
    result = CliRunner().invoke(app, ["predict", folder, *map(str, IMAGES), "--json"])
    assert result.exit_code == 0, result.output
    expected = json.loads(result.output[result.output.index("[") :])
    response = httpx.post(server.url + "/v1/score", files=files(*IMAGES), timeout=60)
    assert response.status_code == 200, response.text
    got = response.json()
    assert len(got) == 2
    for served, predicted in zip(got, expected, strict=True):
        assert served["p_yes"] == pytest.approx(predicted["p_yes"], abs=1e-6)
        assert served["answer"] == predicted["answer"]
        assert served["threshold"] == predicted["threshold"]
        assert served["model"] == Path(folder).name


def test_two_requests_sent_together_are_scored_in_one_batch(server: Server) -> None:
    batches = metric(server.url, "curate_batch_size_images_count")
    images = metric(server.url, "curate_batch_size_images_sum")
    answers: list[httpx.Response] = []

    def send(path: Path) -> None:
        answers.append(httpx.post(server.url + "/v1/score", files=files(path), timeout=60))

    threads = [threading.Thread(target=send, args=(p,)) for p in IMAGES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.status_code for r in answers] == [200, 200]
    assert metric(server.url, "curate_batch_size_images_count") == batches + 1
    assert metric(server.url, "curate_batch_size_images_sum") == images + 2


def _png(width: int, height: int) -> bytes:
    """A PNG header claiming width x height, with a tiny (invalid-size) image body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


PART_HEAD = (
    b'--x\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
    b"Content-Type: image/png\r\n\r\n"
)


def _bad_requests() -> dict[str, dict]:
    good = IMAGES[0].read_bytes()
    return {
        "not an image": {"files": [("image", ("notes.txt", b"hello, not pixels", "text/plain"))]},
        "truncated": {"files": [("image", ("cut.png", good[: len(good) // 2], "image/png"))]},
        "decompression bomb": {"files": [("image", ("bomb.png", _png(60000, 60000), "image/png"))]},
        "empty file": {"files": [("image", ("empty.png", b"", "image/png"))]},
        "empty body": {
            "content": b"",
            "headers": {"content-type": "multipart/form-data; boundary=x"},
        },
        "wrong content type": {"json": {"image": "fall.png"}},
        "a path instead of a file": {"data": {"image": str(IMAGES[0])}, "files": {"x": b""}},
        "too many images": {"files": files(*IMAGES, *IMAGES)},
        "huge upload": {"files": [("image", ("big.png", b"\0" * (2 << 20), "image/png"))]},
        "huge upload without a length": {
            "content": iter([PART_HEAD] + [b"\0" * (1 << 16)] * 40),
            "headers": {"content-type": "multipart/form-data; boundary=x"},
        },
        "a malformed body": {
            "content": b"--x\r\n" + b"A" * 20000,
            "headers": {"content-type": "multipart/form-data; boundary=x"},
        },
        "unknown field": {"files": [*files(IMAGES[0]), ("camera", ("c", b"1", "text/plain"))]},
        "repeated question": {
            "files": [
                *files(IMAGES[0]),
                ("question", (None, "Is anyone falling in this image?")),
                ("question", (None, "Is it raining?")),
            ]
        },
    }


EXPECTED = {
    "not an image": (400, "not a readable image"),
    "truncated": (400, "corrupt or truncated"),
    "decompression bomb": (413, "too large to open safely"),
    "empty file": (400, "empty file"),
    "empty body": (400, ""),
    "wrong content type": (415, "multipart/form-data"),
    "a path instead of a file": (400, ""),
    "too many images": (413, "too many images"),
    "huge upload": (413, "larger than the server's limit"),
    "huge upload without a length": (413, "larger than the server's limit"),
    "a malformed body": (400, "multipart body cannot be read"),
    "unknown field": (400, "unknown field"),
    "repeated question": (400, "field 'question' given 2 times"),
}


@pytest.mark.parametrize("case", list(EXPECTED))
def test_bad_input_gets_a_4xx_json_error_and_the_server_keeps_serving(
    server: Server, case: str
) -> None:
    status, words = EXPECTED[case]
    response = httpx.post(server.url + "/v1/score", timeout=60, **_bad_requests()[case])
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200


def test_the_task_question_in_another_case_is_scored_as_the_task_question(
    server: Server,
) -> None:
    shouted = "IS ANYONE FALLING IN THIS IMAGE"
    folder = server.proc.args[2]
    by_predict = {}
    for question in (None, shouted):
        args = ["--question", question] if question else []
        result = CliRunner().invoke(app, ["predict", folder, str(IMAGES[0]), "--json", *args])
        assert result.exit_code == 0, result.output
        by_predict[question] = json.loads(result.output[result.output.index("[") :])[0]
        data = {"question": question} if question else {}
        response = httpx.post(
            server.url + "/v1/score", files=files(IMAGES[0]), data=data, timeout=60
        )
        assert response.status_code == 200, response.text
        served = response.json()[0]
        assert served["p_yes"] == pytest.approx(by_predict[question]["p_yes"], abs=1e-6)
        assert served["threshold"] == by_predict[question]["threshold"] is not None
    # the threshold was chosen on P(yes) of the task question as trained: the same P(yes)
    assert by_predict[shouted]["p_yes"] == pytest.approx(by_predict[None]["p_yes"], abs=1e-6)


def test_a_client_that_drops_its_upload_is_not_counted_as_bad_input(server: Server) -> None:
    before_400 = metric(server.url, "curate_requests_total", endpoint="/v1/score", status="400")
    before_499 = metric(server.url, "curate_requests_total", endpoint="/v1/score", status="499")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 100000\r\n\r\n" + PART_HEAD + b"\0" * 1000
        )
    # the server notices the closed connection on its next read: wait a bounded while
    for _ in range(200):
        got = metric(server.url, "curate_requests_total", endpoint="/v1/score", status="499")
        if got > before_499:
            break
        time.sleep(0.05)
    assert got == before_499 + 1
    assert (
        metric(server.url, "curate_requests_total", endpoint="/v1/score", status="400")
        == before_400
    )
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200


def test_a_path_in_a_text_field_is_never_read(server: Server) -> None:
    response = httpx.post(
        server.url + "/v1/score",
        files=[("image", (None, str(IMAGES[0])))],  # a text part holding a path
        timeout=30,
    )
    assert response.status_code == 400
    assert "never reads a path" in response.json()["error"]


def test_metrics_follow_prometheus_naming(server: Server) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    httpx.post(server.url + "/v1/score", json={}, timeout=10)  # a 415, counted
    text = httpx.get(server.url + "/metrics", timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["curate_requests"].type == "counter"
    assert families["curate_request_duration_seconds"].type == "histogram"
    assert families["curate_batch_size_images"].type == "histogram"
    assert families["curate_queue_depth_images"].type == "gauge"
    assert families["curate_p_yes"].type == "histogram"
    assert families["curate_model_info"].type == "gauge"  # an Info, as text exposition has it
    assert metric(server.url, "curate_requests_total", endpoint="/v1/score", status="415") >= 1
    assert metric(server.url, "curate_model_info", scheme="int8-weight") == 1
    assert metric(server.url, "curate_ready") == 1


def test_api_key_guards_every_endpoint_but_livez_and_sigterm_loses_no_request(
    model_folder: Path,
) -> None:
    srv = Server(
        model_folder, "--max-batch-size", "8", "--batch-timeout-ms", "2000",
        env={"CURATE_API_KEY": KEY},
    )  # fmt: skip
    try:
        srv.wait_live()
        auth = {"Authorization": f"Bearer {KEY}"}
        srv.wait_ready(auth)
        assert httpx.get(srv.url + "/livez", timeout=5).status_code == 200
        for path in ("/health", "/metrics"):
            assert httpx.get(srv.url + path, timeout=5).status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert httpx.get(srv.url + path, headers=wrong, timeout=5).status_code == 401
            assert httpx.get(srv.url + path, headers=auth, timeout=5).status_code == 200
        refused = httpx.post(srv.url + "/v1/score", files=files(IMAGES[0]), timeout=30)
        assert refused.status_code == 401 and "API key" in refused.json()["error"]
        assert (
            httpx.post(
                srv.url + "/v1/score",
                files=files(IMAGES[0]),
                headers={"X-API-Key": KEY},
                timeout=30,
            ).status_code
            == 200
        )

        # three requests wait in a batch (closes after 2 s); SIGTERM comes while they wait
        answers: list[httpx.Response | Exception] = []

        def send(path: Path) -> None:
            try:
                answers.append(
                    httpx.post(srv.url + "/v1/score", files=files(path), headers=auth, timeout=60)
                )
            except httpx.HTTPError as exc:
                answers.append(exc)

        threads = [threading.Thread(target=send, args=(p,)) for p in [*IMAGES, IMAGES[0]]]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while metric_with(srv, auth, "curate_queue_depth_images") < 3:
            assert time.monotonic() < deadline, "the requests never queued"
            time.sleep(0.05)
        srv.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(60)
        assert [getattr(a, "status_code", a) for a in answers] == [200, 200, 200]
        assert srv.proc.wait(60) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(srv.url + "/livez", timeout=2)
    finally:
        srv.stop()


def metric_with(srv: Server, headers: dict[str, str], name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(srv.url + "/metrics", headers=headers, timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return 0.0


def test_two_worker_processes_serve_one_port_and_stop_on_sigterm(model_folder: Path) -> None:
    srv = Server(model_folder, "--workers", "2")
    try:
        srv.wait_live()
        srv.wait_ready()
        # /health answered by one worker; curate_ready is 1 once every worker is
        for _ in range(START_LIMIT_S * 10):
            if metric(srv.url, "curate_ready") == 1:
                break
            time.sleep(0.1)
        for _ in range(3):
            response = httpx.post(srv.url + "/v1/score", files=files(IMAGES[0]), timeout=60)
            assert response.status_code == 200 and 0 < response.json()[0]["p_yes"] < 1
        # each scrape reaches one worker (a new connection each) and reports them all
        from prometheus_client.parser import text_string_to_metric_families

        scrapes_before = metric(srv.url, "curate_requests_total", endpoint="/metrics")
        for scrape in range(1, 7):
            text = httpx.get(srv.url + "/metrics", timeout=10).text
            samples = [s for f in text_string_to_metric_families(text) for s in f.samples]

            def value(name: str, samples: list = samples, **labels: str) -> float:
                return sum(
                    s.value
                    for s in samples
                    if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
                )

            assert value("curate_requests_total", endpoint="/v1/score", status="200") == 3
            assert value("curate_requests_total", endpoint="/metrics") == scrapes_before + scrape
            assert value("curate_p_yes_count", question="task") == 3
            assert value("curate_ready") == 1
            assert value("curate_model_info", scheme="int8-weight") == 1
    finally:
        code = srv.stop()
    assert code == 0


def test_a_model_that_fails_to_load_stops_the_server_with_exit_1(
    model_folder: Path, tmp_path: Path
) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_folder, broken)
    with open(broken / "model.pt", "ab") as fh:
        fh.write(b"\0")
    srv = Server(broken)
    try:
        code = srv.proc.wait(START_LIMIT_S)
        output = srv.output()
    finally:
        srv.stop()
    assert code == 1, output
    assert "sha256 differs" in output


def test_a_missing_model_is_refused_before_listening(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "model not found" in result.output


def test_decoded_upload_is_the_image_predict_opens() -> None:
    from curation.images import open_rgb

    data = IMAGES[0].read_bytes()
    assert open_rgb(io.BytesIO(data), name="x").tobytes() == open_rgb(IMAGES[0]).tobytes()
