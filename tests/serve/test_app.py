"""``dkt.serve.app`` as a client sees it: each way of sending inputs, every refusal, the token,
the limits under load, and a failure inside one request.

The server promises what the command line does (the painting outside the object comes back
byte for byte), so the replies are decoded and compared with the inputs pixel by pixel.
"""

from __future__ import annotations

import asyncio
import io
import select
import socket
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the web stack is not installed (pip install 'dkt[serve]')")
pytest.importorskip("python_multipart", reason="python-multipart is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

with warnings.catch_warnings():  # Starlette's notice about httpx2, at import time
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

import dkt  # noqa: E402
from dkt.dktnet.checkpoint import file_sha256  # noqa: E402
from dkt.inference.paste import paste  # noqa: E402
from dkt.serve.app import ServeSettings, create_app  # noqa: E402
from tests.conftest import synthetic_pair  # noqa: E402
from tests.serve.conftest import serving  # noqa: E402

HARMONIZE = "/v1/harmonize"


# --------------------------------------------------------------------------- helpers


def encode(array: np.ndarray, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def make_painting(height: int = 64, width: int = 80, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(30, 220, (height, width, 3), dtype=np.uint8)


def make_cutout(height: int = 20, width: int = 30) -> np.ndarray:
    """A saturated green blob with a soft edge on a transparent background."""
    yy, xx = np.mgrid[0:height, 0:width]
    inside = ((yy - height / 2) / (height / 2.2)) ** 2 + ((xx - width / 2) / (width / 2.2)) ** 2
    alpha = np.clip((1.2 - inside) * 255, 0, 255).astype(np.uint8)
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., :3] = (40, 210, 60)
    rgba[..., 3] = alpha
    return rgba


def pair_files(composite: np.ndarray, mask: np.ndarray) -> dict[str, tuple[str, bytes]]:
    return {"composite": ("c.png", encode(composite)), "mask": ("m.png", encode(mask))}


def cutout_files(painting: np.ndarray, cutout: np.ndarray) -> dict[str, tuple[str, bytes]]:
    return {"painting": ("p.png", encode(painting)), "cutout": ("o.png", encode(cutout))}


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    """A refusal: the status, a JSON body with one one-line ``error`` naming ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"], body
    assert "\n" not in body["error"] and body["error"].strip()
    for word in words:
        assert word in body["error"], body["error"]


def assert_background_kept(reply: bytes, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
    result = decode(reply)
    assert result.shape == composite.shape
    outside = mask == 0
    assert outside.any()
    np.testing.assert_array_equal(result[outside], composite[outside])
    assert (result[~outside] != composite[~outside]).any(), "the object was not restyled"
    return result


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def harmonizer(tiny_model: Path):
    with dkt.Harmonizer(tiny_model, device="cpu") as h:
        yield h


@pytest.fixture
def make_client(harmonizer) -> Callable[..., TestClient]:
    clients: list[TestClient] = []

    def make(**settings: object) -> TestClient:
        client = TestClient(create_app(harmonizer, ServeSettings(**settings)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


@pytest.fixture
def no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make every tempfile function fail and point the temporary folder at an empty one."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a request tried to create a temporary file")

    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "mkstemp",
                 "mkdtemp", "TemporaryDirectory"):  # fmt: skip
        monkeypatch.setattr(tempfile, name, refuse)
    return folder


# --------------------------------------------------------------------------- the three modes


def test_composite_and_mask_restyles_the_object_and_keeps_the_painting(client) -> None:
    composite, mask = synthetic_pair(64, 80)
    response = client.post(HARMONIZE, files=pair_files(composite, mask))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert_background_kept(response.content, composite, mask)
    assert response.headers["x-dkt-backend"] == "torch"
    model, total = (float(response.headers[f"x-dkt-seconds-{k}"]) for k in ("model", "total"))
    assert 0 < model <= total


def test_painting_and_cutout_are_pasted_centred_by_default(client) -> None:
    painting, cutout = make_painting(), make_cutout()
    response = client.post(HARMONIZE, files=cutout_files(painting, cutout))
    assert response.status_code == 200, response.text
    composite, mask = paste(painting, cutout)
    assert_background_kept(response.content, composite, mask)
    assert response.headers["x-dkt-mode"] == "painting+cutout"


def test_painting_and_cutout_go_where_x_y_and_scale_say(client) -> None:
    painting, cutout = make_painting(), make_cutout()
    fields = {"x": "-5", "y": "30", "scale": "1.5"}
    response = client.post(HARMONIZE, files=cutout_files(painting, cutout), data=fields)
    assert response.status_code == 200, response.text
    composite, mask = paste(painting, cutout, (-5, 30), 1.5)
    result = assert_background_kept(response.content, composite, mask)
    np.testing.assert_array_equal(result[mask == 0], painting[mask == 0])


def test_an_rgba_composite_alone_uses_its_alpha_as_the_mask(client) -> None:
    composite, mask = synthetic_pair(64, 80)
    rgba = np.dstack([composite, mask])
    response = client.post(HARMONIZE, files={"composite": ("c.png", encode(rgba))})
    assert response.status_code == 200, response.text
    assert response.headers["x-dkt-mode"] == "composite-alpha"
    assert_background_kept(response.content, composite, mask)


def test_a_label_mask_of_zeros_and_ones_marks_the_object(client) -> None:
    composite, mask = synthetic_pair(64, 80)
    response = client.post(HARMONIZE, files=pair_files(composite, (mask > 0).astype(np.uint8)))
    assert response.status_code == 200, response.text
    assert_background_kept(response.content, composite, mask)


@pytest.mark.parametrize(
    ("fmt", "media", "lossless"),
    [("png", "image/png", True), ("webp", "image/webp", True), ("jpeg", "image/jpeg", False)],
)
def test_the_format_field_picks_the_reply_format(client, fmt, media, lossless) -> None:
    composite, mask = synthetic_pair(64, 80)
    response = client.post(HARMONIZE, files=pair_files(composite, mask), data={"format": fmt})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media
    assert Image.open(io.BytesIO(response.content)).format == {"jpeg": "JPEG"}.get(fmt, fmt.upper())
    if lossless:
        assert_background_kept(response.content, composite, mask)


def test_the_size_field_sets_the_working_size(client, harmonizer, monkeypatch) -> None:
    seen: list[tuple[int, ...]] = []
    run = harmonizer.backend.run
    monkeypatch.setattr(harmonizer.backend, "run", lambda c, m: seen.append(c.shape) or run(c, m))
    composite, mask = synthetic_pair(64, 80)
    response = client.post(HARMONIZE, files=pair_files(composite, mask), data={"size": "40"})
    assert response.status_code == 200, response.text
    assert seen == [(1, 3, 32, 40)]


# --------------------------------------------------------------------------- style strength


@pytest.mark.parametrize("files", ["pair", "cutout"])
def test_strength_0_replies_with_the_composite_byte_for_byte(client, files: str) -> None:
    if files == "pair":
        composite, mask = synthetic_pair(64, 80)
        upload = pair_files(composite, mask)
    else:
        upload = cutout_files(PAINTING, CUTOUT)
        composite, _ = paste(PAINTING, CUTOUT)
    response = client.post(HARMONIZE, files=upload, data={"strength": "0"})
    assert response.status_code == 200, response.text
    assert response.headers["x-dkt-strength"] == "0"
    np.testing.assert_array_equal(decode(response.content), composite)


def test_strength_1_is_the_default_and_half_changes_the_object_less(client) -> None:
    composite, mask = synthetic_pair(64, 80)
    replies = {}
    for strength in (None, "1", "0.3", "0.5"):
        fields = {} if strength is None else {"strength": strength}
        response = client.post(HARMONIZE, files=pair_files(composite, mask), data=fields)
        assert response.status_code == 200, response.text
        assert response.headers["x-dkt-strength"] == {None: "1"}.get(strength, strength)
        replies[strength] = assert_background_kept(response.content, composite, mask)
    assert np.array_equal(replies["1"], replies[None])
    change = {k: np.abs(v.astype(int) - composite)[mask > 0].mean() for k, v in replies.items()}
    assert change["0.3"] < change["1"] and change["0.5"] < change["1"], change


def test_the_model_says_whether_its_strength_can_change(client) -> None:
    assert client.get("/v1/model").json()["strength"] == {
        "default": 1.0, "adjustable": True, "note": None
    }  # fmt: skip


def test_an_old_export_refuses_a_strength_and_runs_at_1(old_style_onnx: Path) -> None:
    composite, mask = synthetic_pair(64, 80)
    with (
        dkt.Harmonizer(old_style_onnx, device="cpu") as old,
        TestClient(create_app(old, ServeSettings())) as client,
    ):
        info = client.get("/v1/model").json()["strength"]
        assert info["adjustable"] is False and "re-export" in info["note"]
        files = pair_files(composite, mask)
        refused = client.post(HARMONIZE, files=files, data={"strength": "0.5"})
        assert_error(refused, 422, "strength: 0.5:", "old-style.onnx", "re-export")
        response = client.post(HARMONIZE, files=pair_files(composite, mask))
        assert response.status_code == 200, response.text
        assert_background_kept(response.content, composite, mask)


# --------------------------------------------------------------------------- refusals


def _truncated_png() -> bytes:
    data = encode(make_painting(64, 80))
    return data[: len(data) // 2]


def _bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A valid PNG header claiming 3.6 Gpx, and no pixel data: only a header check stops it."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


COMPOSITE, MASK = synthetic_pair(64, 80)
PAINTING, CUTOUT = make_painting(), make_cutout()
BAD_REQUESTS = {
    "not an image": (
        {"composite": ("c.png", b"hello, not a picture"), "mask": ("m.png", encode(MASK))}, {},
        400, ("composite:", "not an image"),
    ),
    "truncated": (
        {"composite": ("c.png", _truncated_png()), "mask": ("m.png", encode(MASK))}, {},
        400, ("composite:", "truncated"),
    ),
    "empty file": (
        {"painting": ("p.png", b""), "cutout": ("o.png", encode(CUTOUT))}, {},
        400, ("painting:", "empty"),
    ),
    "mask of another size": (
        pair_files(COMPOSITE, MASK[:40]), {}, 400, ("mask:", "80x40", "80x64"),
    ),
    "empty mask": (
        pair_files(COMPOSITE, np.zeros_like(MASK)), {}, 400, ("mask:", "empty"),
    ),
    "mask without composite": (
        {"mask": ("m.png", encode(MASK))}, {}, 422, ("composite:", "missing"),
    ),
    "painting without cutout": (
        {"painting": ("p.png", encode(PAINTING))}, {}, 422, ("cutout:", "missing"),
    ),
    "both input sets": (
        {**pair_files(COMPOSITE, MASK), **cutout_files(PAINTING, CUTOUT)}, {},
        422, ("not both",),
    ),
    "neither input set": ({"format": (None, "png")}, {}, 422, ("composite:", "missing")),
    "an unknown field": (
        {**pair_files(COMPOSITE, MASK), "image": ("i.png", b"")}, {},
        422, ("image:", "unknown field"),
    ),
    "composite without alpha, no mask": (
        {"composite": ("c.png", encode(COMPOSITE))}, {}, 400, ("composite:", "no alpha"),
    ),
    "cutout without alpha": (
        {"painting": ("p.png", encode(PAINTING)), "cutout": ("o.png", encode(PAINTING))}, {},
        400, ("cutout:", "not a cut-out"),
    ),
    "placement wholly outside": (
        cutout_files(PAINTING, CUTOUT), {"x": "500", "y": "10"}, 400, ("x, y:", "outside"),
    ),
    "only x": (cutout_files(PAINTING, CUTOUT), {"x": "5"}, 422, ("x, y:",)),
    "x with a composite": (pair_files(COMPOSITE, MASK), {"x": "5", "y": "5"}, 422, ("x:",)),
    "x not a number": (
        cutout_files(PAINTING, CUTOUT), {"x": "left", "y": "3"}, 422, ("x:", "integer"),
    ),
    "scale not positive": (cutout_files(PAINTING, CUTOUT), {"scale": "0"}, 422, ("scale:",)),
    "scale that vanishes": (
        cutout_files(PAINTING, CUTOUT), {"scale": "0.01"}, 400, ("scale:", "vanishes"),
    ),
    "scale into a bomb": (
        cutout_files(PAINTING, CUTOUT), {"scale": "3000"}, 413, ("scale:", "too many pixels"),
    ),
    "scale past any size": (
        cutout_files(PAINTING, CUTOUT), {"scale": "1e308"}, 413, ("scale:", "1e+308"),
    ),
    "scale that overflows to inf": (
        cutout_files(PAINTING, CUTOUT), {"scale": "1e400"}, 422, ("scale:", "finite"),
    ),
    "unknown format": (pair_files(COMPOSITE, MASK), {"format": "gif"}, 422, ("format:",)),
    "strength over 1": (
        pair_files(COMPOSITE, MASK), {"strength": "1.5"}, 422, ("strength:", "less than or equal"),
    ),
    "strength under 0": (pair_files(COMPOSITE, MASK), {"strength": "-0.1"}, 422, ("strength:",)),
    "strength not a number": (
        pair_files(COMPOSITE, MASK), {"strength": "strong"}, 422, ("strength:", "number"),
    ),
    "strength nan": (
        cutout_files(PAINTING, CUTOUT), {"strength": "nan"}, 422, ("strength:", "finite"),
    ),
    "too many pixels (from the header)": (
        {"composite": ("c.png", _bomb_png()), "mask": ("m.png", encode(MASK))}, {},
        413, ("composite:", "too many pixels", "60000x60000"),
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("files", "fields", "status", "words"), BAD_REQUESTS.values(), ids=list(BAD_REQUESTS)
)
def test_a_bad_request_gets_a_4xx_and_one_json_line_naming_the_field(
    client, files, fields, status, words
) -> None:
    response = client.post(HARMONIZE, files=files, data=fields)
    assert_error(response, status, *words)


@pytest.mark.parametrize(("size", "status"), [("0", 413), ("100000", 413), ("40", 200)])
def test_a_working_size_over_the_largest_is_refused(make_client, size, status) -> None:
    client = make_client(max_size=50)
    composite, mask = synthetic_pair(64, 80)
    response = client.post(HARMONIZE, files=pair_files(composite, mask), data={"size": size})
    if status == 200:
        assert response.status_code == 200, response.text
    else:
        assert_error(response, 413, "size:", "80 px", "50")


@pytest.mark.parametrize("size", ["7", "1"])
def test_a_working_size_below_8_is_refused_in_the_words_of_the_api(client, size) -> None:
    """Issue 26: sizes below 8 ran the network at 8 px without a word; the server says
    what ``dkt.Harmonizer`` and ``dkt harmonize`` say."""
    composite, mask = synthetic_pair(64, 80)
    response = client.post(HARMONIZE, files=pair_files(composite, mask), data={"size": size})
    assert_error(response, 422, f"size must be 0 (the image's own) or at least 8, got {size}")
    with pytest.raises(dkt.OptionError, match="size must be 0"):
        ServeSettings(size=int(size))


def test_integer_masks_and_frames_follow_the_files_rules(client) -> None:
    """Issue 26: a 0/255 16-bit mask upload harmonized nothing; an animated upload was cut
    to its first frame; a mask too faint to change a pixel came back as a result."""
    composite, mask = synthetic_pair(64, 80)
    wide = io.BytesIO()
    Image.fromarray(mask.astype(np.uint16)).save(wide, format="PNG")
    files = {"composite": ("c.png", encode(composite)), "mask": ("m.png", wide.getvalue())}
    reply = client.post(HARMONIZE, files=files)
    assert reply.status_code == 200, reply.text
    assert np.abs(decode(reply.content).astype(int) - composite)[mask > 0].mean() > 2.0
    gif = io.BytesIO()
    Image.fromarray(composite).save(gif, format="GIF", save_all=True,
                                    append_images=[Image.fromarray(255 - composite)])  # fmt: skip
    files["composite"] = ("c.gif", gif.getvalue())
    assert_error(client.post(HARMONIZE, files=files), 400, "composite: an animated GIF of 2")
    faint = io.BytesIO()
    Image.fromarray((mask > 0).astype(np.float32) * 0.001).save(faint, format="TIFF")
    files = {"composite": ("c.png", encode(composite)), "mask": ("m.tif", faint.getvalue())}
    assert_error(client.post(HARMONIZE, files=files), 400, "mask: mask selects nothing")


def test_a_body_that_is_not_a_form_is_refused(client) -> None:
    assert_error(client.post(HARMONIZE, json={"composite": "x"}), 415, "multipart/form-data")


def test_an_upload_over_the_limit_is_refused_from_its_content_length(make_client) -> None:
    client = make_client(max_upload_bytes=50_000)
    big = make_painting(200, 200)  # about 120 kB as PNG: random pixels do not compress
    response = client.post(HARMONIZE, files=pair_files(big, np.zeros((200, 200), np.uint8)))
    assert_error(response, 413, "too large", "limit")
    assert response.headers["connection"] == "close"


def test_an_upload_over_the_limit_is_refused_while_reading_without_a_length(harmonizer) -> None:
    """Streamed with no Content-Length: the server stops reading at the first chunk past the
    limit (the ASGI transport pulls the body only as the application asks for it)."""
    app = create_app(harmonizer, ServeSettings(max_upload_bytes=50_000))
    sent = []

    async def body():
        yield b'--xyz\r\nContent-Disposition: form-data; name="composite"; filename="c"\r\n\r\n'
        for _ in range(1000):  # 10 MB if read to the end
            sent.append(1)
            yield b"\0" * 10_000

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dkt") as client:
            headers = {"content-type": "multipart/form-data; boundary=xyz"}
            return await client.post(HARMONIZE, content=body(), headers=headers)

    response = asyncio.run(post())
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "too large")
    assert len(sent) <= 6


def test_an_upload_trickling_in_past_the_timeout_is_refused(harmonizer) -> None:
    app = create_app(harmonizer, ServeSettings(upload_timeout_s=0.3))

    async def body():
        yield b'--xyz\r\nContent-Disposition: form-data; name="composite"; filename="c"\r\n\r\n'
        for _ in range(50):
            await asyncio.sleep(0.1)
            yield b"\0"

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dkt") as client:
            headers = {"content-type": "multipart/form-data; boundary=xyz"}
            return await client.post(HARMONIZE, content=body(), headers=headers)

    assert_error(asyncio.run(post()), 408, "body:", "longer than 0.3 s")


def test_a_fastapi_validation_error_has_the_same_json_shape(harmonizer) -> None:
    app = create_app(harmonizer, ServeSettings())

    @app.get("/probe")
    def probe(count: int) -> dict[str, int]:
        return {"count": count}

    with TestClient(app) as client:
        assert client.get("/probe", params={"count": 3}).json() == {"count": 3}
        assert_error(client.get("/probe", params={"count": "many"}), 422, "count:", "integer")
        assert_error(client.get("/probe"), 422, "count:", "required")
        assert_error(client.get("/no/such/page"), 404, "/no/such/page")


# --------------------------------------------------------------------------- token


def test_the_token_guards_every_v1_endpoint_but_health(make_client) -> None:
    client = make_client(token="s3cret")
    composite, mask = synthetic_pair(64, 80)
    files = pair_files(composite, mask)
    refused = client.post(HARMONIZE, files=files)
    assert_error(refused, 401, "token")
    assert refused.headers["www-authenticate"] == "Bearer"
    assert_error(client.post(HARMONIZE, files=files, headers=_bearer("wrong")), 401, "wrong")
    assert_error(client.get("/v1/model"), 401, "token")
    allowed = client.post(HARMONIZE, files=files, headers=_bearer("s3cret"))
    assert allowed.status_code == 200, allowed.text
    assert_background_kept(allowed.content, composite, mask)
    assert client.get("/v1/model", headers=_bearer("s3cret")).status_code == 200
    assert client.get("/v1/health").json() == {"status": "ok"}
    assert client.get("/").status_code == 200  # the page asks for the token itself


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- load and failures


def test_fifty_concurrent_requests_get_200_or_503_and_the_server_answers_after(
    harmonizer, monkeypatch, no_temp_files
) -> None:
    """With 2 runs and 3 waiting, a burst of 50 fills the queue: the rest get 503 at once."""
    running, most = [0], [0]
    lock = threading.Lock()
    run = harmonizer.backend.run

    def counting_run(composite, mask):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            threading.Event().wait(0.05)  # long enough for the burst to pile up
            return run(composite, mask)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(harmonizer.backend, "run", counting_run)
    app = create_app(harmonizer, ServeSettings(max_concurrent=2, max_queue=3))
    composite, mask = synthetic_pair(64, 80)
    files = pair_files(composite, mask)

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dkt") as client:
            replies = await asyncio.gather(*(client.post(HARMONIZE, files=files)
                                             for _ in range(50)))  # fmt: skip
            replies.append(await client.post(HARMONIZE, files=files))  # quiet again
            return replies

    replies = asyncio.run(burst())
    *burst_replies, after = replies
    statuses = [r.status_code for r in burst_replies]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 5 and statuses.count(503) >= 1, statuses
    for reply in burst_replies:
        if reply.status_code == 503:
            assert_error(reply, 503, "busy")
            assert int(reply.headers["retry-after"]) >= 1
        else:
            assert_background_kept(reply.content, composite, mask)
    assert most[0] <= 2
    assert after.status_code == 200
    assert list(no_temp_files.iterdir()) == []


def test_a_large_upload_is_decoded_in_memory_without_temp_files(client, no_temp_files) -> None:
    """Over Starlette's 1 MB spool limit, where its form parser would write a temp file."""
    painting = make_painting(700, 900)
    files = cutout_files(painting, make_cutout(200, 300))
    assert len(files["painting"][1]) > 1 << 20
    response = client.post(HARMONIZE, files=files)
    assert response.status_code == 200, response.text
    composite, mask = paste(painting, make_cutout(200, 300))
    assert_background_kept(response.content, composite, mask)
    assert list(no_temp_files.iterdir()) == []


def test_a_failure_inside_the_model_is_a_500_for_that_request_alone(
    client, harmonizer, monkeypatch
) -> None:
    run = harmonizer.backend.run
    calls = []

    def failing_once(composite, mask):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return run(composite, mask)

    monkeypatch.setattr(harmonizer.backend, "run", failing_once)
    composite, mask = synthetic_pair(64, 80)
    failed = client.post(HARMONIZE, files=pair_files(composite, mask))
    assert_error(failed, 500, "RuntimeError")
    assert "CUDA" not in failed.json()["error"]  # the details stay in the server's log
    again = client.post(HARMONIZE, files=pair_files(composite, mask))
    assert again.status_code == 200, again.text
    assert client.get("/v1/health").status_code == 200


# --------------------------------------------------------------------------- model and page


def test_model_describes_the_loaded_model(client, tiny_model: Path) -> None:
    reply = client.get("/v1/model")
    info = reply.json()
    assert info["name"] == tiny_model.name
    assert info["sha256"] == file_sha256(tiny_model)
    # The file's name and hash, never where it lives on the server's disks.
    assert "path" not in info and str(tiny_model.parent) not in reply.text
    assert (info["backend"], info["device"]) == ("torch", "cpu")
    assert info["limits"]["max_concurrent"] == 1


def test_the_page_its_files_and_the_api_docs_are_served(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for element in ("painting", "cutout", "composite", "mask", "harmonize", "status", "download",
                    "strength"):  # fmt: skip
        assert f'id="{element}"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace('href="static/', "")  # nothing from elsewhere
    script = client.get("/static/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert 'form.append("strength"' in script.text  # the slider's value reaches the form
    assert 'type="range" id="strength" min="0" max="1"' in page.text
    assert client.get("/static/style.css").status_code == 200
    assert_error(client.get("/static/..%2Fapp.py"), 404)
    assert_error(client.get("/static/study.html"), 404)  # another page's file
    assert client.get("/docs").status_code == 200
    body = client.get("/openapi.json").json()["paths"][HARMONIZE]["post"]["requestBody"]
    assert set(body["content"]["multipart/form-data"]["schema"]["properties"]) >= {
        "composite", "mask", "painting", "cutout", "x", "y", "scale", "size", "strength", "format"
    }  # fmt: skip


def test_settings_refuse_limits_that_allow_nothing() -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        ServeSettings(max_concurrent=0)
    with pytest.raises(ValueError, match="token"):
        ServeSettings(token=" ")


# --------------------------------------------------------------------------- real sockets


def raw_request(base: str, files: dict[str, tuple[str, bytes]]) -> bytes:
    """A whole harmonize request as the bytes a client sends down its socket."""
    request = httpx.Request("POST", base + HARMONIZE, files=files)
    body = request.read()
    head = [f"POST {HARMONIZE} HTTP/1.1", f"Host: {request.url.host}"]
    head += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


class Trickle:
    """Sockets that send a request's headers, then one byte of body every ``every`` s; each
    reconnects when the server closes it (``reconnect``), until :meth:`stop`. ``replies``
    collects the status lines the server answered them with."""

    HEAD = (
        f"POST {HARMONIZE} HTTP/1.1\r\nHost: dkt\r\nContent-Length: 100000\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n\r\n"
    ).encode()
    #: A well-formed start of a body, so the server reads on instead of refusing it.
    BODY = b'--xyz\r\nContent-Disposition: form-data; name="composite"; filename="c"\r\n\r\n'

    def __init__(self, base: str, sockets: int, every: float, reconnect: bool) -> None:
        self.base, self.every, self.reconnect = base, every, reconnect
        self.replies: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(sockets)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with connect(self.base) as sock:
                sock.sendall(self.HEAD)
                body = iter(self.BODY + bytes(1000))
                while not self._stop.wait(self.every):
                    if select.select([sock], [], [], 0)[0]:  # answered (and closed)
                        self.replies.append(sock.recv(200).decode().split("\r\n")[0])
                        break
                    try:
                        sock.send(bytes([next(body)]))
                    except OSError:
                        break
            if not self.reconnect:
                return

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)


def test_a_normal_request_gets_through_while_twenty_sockets_trickle_their_uploads(
    harmonizer,
) -> None:
    """Uploads are read before a request takes a place in the model's queue: twenty
    trickling sockets (reconnecting when cut off) once took all nine places and kept every
    other client at 503 until the upload timeout."""
    composite, mask = synthetic_pair(64, 80)
    with serving(create_app(harmonizer, ServeSettings())) as base:
        attack = Trickle(base, sockets=20, every=0.5, reconnect=True)
        try:
            time.sleep(1.5)  # every trickle connected and sending
            started = time.monotonic()
            response = httpx.post(base + HARMONIZE, files=pair_files(composite, mask), timeout=20)
            took = time.monotonic() - started
        finally:
            attack.stop()
    assert response.status_code == 200, response.text
    assert_background_kept(response.content, composite, mask)
    assert took < 10


def test_when_every_upload_place_is_taken_the_slowest_trickle_makes_room(harmonizer) -> None:
    composite, mask = synthetic_pair(64, 80)
    settings = ServeSettings(max_uploads=4)
    with serving(create_app(harmonizer, settings)) as base:
        attack = Trickle(base, sockets=4, every=0.3, reconnect=False)
        try:
            time.sleep(1.5)  # all four places held, each for longer than the grace second
            response = httpx.post(base + HARMONIZE, files=pair_files(composite, mask), timeout=20)
            time.sleep(0.5)  # the one cut off reads its answer
        finally:
            attack.stop()
    assert response.status_code == 200, response.text
    assert attack.replies == ["HTTP/1.1 408 Request Timeout"], attack.replies


def test_clients_that_go_away_give_up_their_place_and_the_model_never_runs_for_them(
    harmonizer, monkeypatch
) -> None:
    """Three clients queue behind a long run and close their sockets: the next client is
    queued (not refused with 503), and the model runs for the two that stayed only."""
    runs: list[float] = []
    run = harmonizer.backend.run

    def slow_run(composite, mask):
        runs.append(time.monotonic())
        time.sleep(1.0)
        return run(composite, mask)

    monkeypatch.setattr(harmonizer.backend, "run", slow_run)
    composite, mask = synthetic_pair(64, 80)
    files = pair_files(composite, mask)
    replies: list[httpx.Response] = []
    with serving(create_app(harmonizer, ServeSettings(max_queue=3))) as base:
        first = threading.Thread(
            target=lambda: replies.append(httpx.post(base + HARMONIZE, files=files, timeout=20))
        )
        first.start()
        deadline = time.monotonic() + 10
        while not runs and time.monotonic() < deadline:
            time.sleep(0.02)
        assert runs, "the first request never reached the model"
        leaving = [connect(base) for _ in range(3)]
        for sock in leaving:
            sock.sendall(raw_request(base, files))
        time.sleep(0.3)  # read, decoded and queued behind the first run
        for sock in leaving:
            sock.close()
        time.sleep(0.3)
        second = httpx.post(base + HARMONIZE, files=files, timeout=20)
        first.join(timeout=20)
    assert [r.status_code for r in replies] == [200]
    assert second.status_code == 200, second.text
    assert len(runs) == 2, f"the model ran {len(runs)} times for 2 clients that stayed"


def test_memory_kept_by_a_burst_goes_back_once_the_server_is_idle(make_client, monkeypatch) -> None:
    released: list[float] = []
    monkeypatch.setattr("dkt.serve.app.release_freed_memory", lambda: released.append(1))
    client = make_client(idle_release_s=0.3)
    composite, mask = synthetic_pair(64, 80)
    for _ in range(3):
        assert client.post(HARMONIZE, files=pair_files(composite, mask)).status_code == 200
    assert released == []  # not between requests that follow each other closely
    deadline = time.monotonic() + 5
    while not released and time.monotonic() < deadline:
        time.sleep(0.05)
    assert released == [1]


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("files", ["composite+mask", "painting+cutout"])
def test_the_reply_keeps_the_paintings_profile_dpi_and_exif(client, fmt: str, files: str, tmp_path):
    """Issue 26 item 4: a wide-gamut painting's reply shows in the painting's colours."""
    from tests.imaging.meta_files import MAKE, ORIENTATION, metadata_of, save_with_meta
    from tests.imaging.meta_files import wide_gamut_profile as profile

    composite, mask = synthetic_pair(64, 80)
    background = save_with_meta(tmp_path / "c.jpg", composite, dpi=(300, 150), orientation=6)
    if files == "composite+mask":
        sent = {"composite": ("c.jpg", background.read_bytes()), "mask": ("m.png", encode(mask))}
    else:
        sent = {"painting": ("p.jpg", background.read_bytes()),
                "cutout": ("o.png", encode(make_cutout()))}  # fmt: skip
    response = client.post(HARMONIZE, files=sent, data={"format": fmt})
    assert response.status_code == 200, response.text
    icc, dpi, exif = metadata_of(response.content)
    assert icc == profile()
    if fmt != "webp":  # WebP holds no DPI
        assert dpi == pytest.approx((150, 300), rel=1e-3)
    assert (exif[ORIENTATION], exif[MAKE]) == (1, "dkt test camera")
