"""Odd inputs through the Python API and the CLI: each gives the right picture or one clear line (issue 8.1)."""

import http.server
import io
import threading
import time

import numpy as np
import pytest
from corpus import Case, cases, check_points
from PIL import Image

from nbart import cli, images
from nbart.deepdream import dream_run
from nbart.images import ImageError, load_image

CASES = cases()
IDS = [c.name for c in CASES]

# A dream that barely moves the pixels (step 1e-6 of the range, no jitter): the CLI's output is the prepared input,
# so the colours it wrote can be checked against the corpus.
STILL = ["--model=vgg16", "--weights=none", "--max-size=64", "--octaves=1", "--steps=1", "--step-size=1e-6",
         "--jitter=0", "--seed=0", "--precision=float32", "--quiet"]


def _colours(img: Image.Image) -> set:
    return {tuple(int(v) for v in c) for c in np.unique(np.asarray(img).reshape(-1, 3), axis=0)}


def _one_line(message: str) -> str:
    assert "\n" not in message and "Traceback" not in message, message
    return message


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_corpus_through_the_api(case: Case, tmp_path):
    path = tmp_path / case.name
    path.write_bytes(case.data)
    for source in (str(path), case.data, io.BytesIO(case.data)):
        if case.error:
            with pytest.raises(ImageError) as info:
                load_image(source)
            assert case.error in _one_line(str(info.value)), (source if isinstance(source, str) else "", info.value)
            continue
        img = load_image(source)
        assert img.mode == "RGB" and img.size == case.size
        check_points(img, case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_corpus_through_the_cli(case: Case, tmp_path, capsys):
    path = tmp_path / case.name
    path.write_bytes(case.data)
    out = tmp_path / "out.png"
    status = cli.main(["dream", str(path), "-o", str(out), *STILL])
    err = capsys.readouterr().err
    expected_error = case.error or case.fit_error
    if expected_error:
        lines = err.splitlines()
        assert status == 2 and len(lines) == 1 and lines[0].startswith("nbart: error: "), err
        assert expected_error in lines[0] and "Traceback" not in err
        assert not out.exists()
        return
    assert status == 0, err
    assert "Traceback" not in err
    result = Image.open(out)
    w, h = case.size
    scale = min(1.0, 64 / max(w, h))
    if min(w, h) * scale < 32:  # vgg16's smallest input: upscaled, with a note
        assert f"nbart: note: image upscaled from {w}x{h} to" in err
        assert min(result.size) == 32
    else:
        assert result.size == (round(w * scale), round(h * scale))
    check_points(result.convert("RGB"), case, tolerance=case.tolerance + 6)  # + resampling to 64 px


def test_one_pixel_image_is_upscaled_to_the_backbone_minimum_with_a_notice():
    run = dream_run(Image.new("RGB", (1, 1), (10, 200, 30)), model="inception_v3", weights="none", max_size=128,
                    octaves=1, steps=1)
    assert run.start_image.size == (75, 75)
    assert _colours(run.start_image) == {(10, 200, 30)}
    assert run.notices == ["image upscaled from 1x1 to 75x75 px, the smallest inception_v3 accepts"]


def test_thin_image_error_names_its_own_size_not_a_downscaled_one():
    with pytest.raises(ImageError) as info:
        dream_run(Image.new("RGB", (4000, 40)), model="vgg16", weights="none", max_size=512)
    assert str(info.value) == ("image is too thin: 4000x40 px can't fit within 512 px with its short side at least "
                               "32 px; crop it or raise max_size")
    # A less extreme one fits: downscaled to 512 px long, then its short side raised to 32 px.
    run = dream_run(Image.new("RGB", (480, 30)), model="vgg16", weights="none", max_size=512)
    assert run.start_image.size == (512, 32) and "upscaled from 480x30 to 512x32" in run.notices[0]


def test_big_baseline_jpeg_decodes_at_a_reduced_scale_instead_of_being_refused(monkeypatch):
    """A JPEG over Pillow's pixel limit loads when a max_size lets it decode at 1/2..1/8 scale (a 200 MP phone
    photo at 512 px); the same picture as PNG, or without max_size, is refused."""
    photo = Image.new("RGB", (400, 400), (20, 140, 220))
    jpeg, png = io.BytesIO(), io.BytesIO()
    photo.save(jpeg, "JPEG", quality=95)
    photo.save(png, "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 400x400 is 16x over; at 1/4 scale, 100x100 fits
    img, original = images.prepare(jpeg.getvalue(), max_size=64)
    assert img.size == (64, 64) and original == (400, 400)
    assert max(abs(a - b) for a, b in zip(img.getpixel((32, 32)), (20, 140, 220))) <= 2
    for data, size in ((png.getvalue(), 64), (jpeg.getvalue(), None), (jpeg.getvalue(), 300)):
        with pytest.raises(ImageError, match=r"too large to open safely \(160,000 pixels, over Pillow's limit"):
            load_image(data, max_size=size)
    progressive = io.BytesIO()
    photo.save(progressive, "JPEG", progressive=True)
    with pytest.raises(ImageError, match="too large to open safely"):  # libjpeg holds progressive ones whole
        load_image(progressive.getvalue(), max_size=64)


@pytest.mark.parametrize(
    "array, size, colour",
    [
        (np.full((1, 6, 8, 3), 200, np.uint8), (8, 6), (200, 200, 200)),  # a batch of one, as models return
        (np.full((6, 8, 3), 1.0000001, np.float32), (8, 6), (255, 255, 255)),  # rounding overshoot is clipped
        (np.full((6, 8, 3), -1e-7, np.float64), (8, 6), (0, 0, 0)),
        (np.full((6, 8), 0.5, np.float16), (8, 6), (128, 128, 128)),
        (np.full((6, 8, 4), (255, 0, 0, 0), np.uint8), (8, 6), (255, 255, 255)),  # transparent: white
        (np.full((6, 8, 3), 65535, np.uint16), (8, 6), (255, 255, 255)),
    ],
)
def test_arrays_give_the_right_colours(array, size, colour):
    img = load_image(array)
    assert img.size == size and _colours(img) == {colour}


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((3, 6, 8), np.uint8), "(got (3, 6, 8)); channels first? use array.transpose(1, 2, 0)"),
        (np.zeros((2, 6, 8, 3), np.uint8), "array must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (got "
                                           "(2, 6, 8, 3))"),
        (np.zeros((), np.uint8), "(got ())"),
        (np.zeros((6, 8, 3), np.int64), "dtype must be uint8, uint16, bool or float (got int64); use array.astype"),
        (np.zeros((6, 8, 3), np.complex64), "dtype must be uint8, uint16, bool or float (got complex64)"),
        (np.array([["a", "b"]]), "dtype must be uint8, uint16, bool or float (got <U1)"),
        (np.full((6, 8, 3), 1.5, np.float32), "float arrays must hold values in [0, 1] (got 1.5..1.5)"),
        (np.full((6, 8, 3), np.inf), "NaN or infinite"),
    ],
)
def test_bad_arrays_name_the_shape_or_dtype(array, message):
    with pytest.raises(ImageError) as info:
        load_image(array)
    assert message in _one_line(str(info.value))


def test_tensors_and_pil_images_of_odd_modes_load():
    import tensorflow as tf

    img = load_image(tf.fill((1, 5, 7, 3), 0.5))
    assert img.size == (7, 5) and img.getpixel((0, 0)) == (128, 128, 128)
    for mode, value, expected in [("I", 40000, (156, 156, 156)), ("I", 100, (100, 100, 100)),
                                  ("F", 0.25, (64, 64, 64)), ("I;16B", 65535, (255, 255, 255)),
                                  ("La", (90, 255), (90, 90, 90)), ("HSV", (0, 255, 255), (255, 0, 0)),
                                  ("YCbCr", (76, 85, 255), (254, 0, 0))]:
        got = load_image(Image.new(mode, (3, 2), value)).getpixel((1, 1))
        assert max(abs(a - b) for a, b in zip(got, expected)) <= 1, (mode, got)


def test_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    path.write_bytes(b"x")
    real_open = open

    def locked(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", locked)
    with pytest.raises(ImageError, match=r"can't read .*locked.png: permission denied"):
        load_image(str(path))


class _Server(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, body: bytes, kind: str, length: int | None = None, status: int = 200):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        picture = io.BytesIO()
        Image.new("RGB", (8, 6), (0, 128, 255)).save(picture, "PNG")
        try:
            if self.path == "/drip.png":  # one byte every 50 ms: never a socket timeout, yet never done
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                for _ in range(200):
                    self.wfile.write(b"\x00")
                    self.wfile.flush()
                    time.sleep(0.05)
            elif self.path == "/missing.png":
                self._send(b"not found", "text/plain", status=404)
            elif self.path == "/huge.png":
                self._send(b"", "image/png", length=10**12)
            elif self.path == "/empty.png":
                self._send(b"", "image/png")
            elif self.path == "/disguised.png":  # a login page served as an image
                self._send(b"<!doctype html><html><body>Please log in</body></html>", "image/png")
            else:
                self._send(picture.getvalue(), "image/png")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_urls_that_drip_fail_or_disguise_pages_get_one_line(server, monkeypatch):
    assert load_image(f"{server}/ok.png").getpixel((0, 0)) == (0, 128, 255)
    monkeypatch.setattr(images.load, "URL_TIMEOUT", 0.6)
    began = time.monotonic()
    with pytest.raises(ImageError, match=r"drip.png did not send the whole image within 0.6 s"):
        load_image(f"{server}/drip.png")
    assert time.monotonic() - began < 3
    cases = {
        "/missing.png": "can't download {}/missing.png: HTTP 404 Not Found",
        "/huge.png": "{}/huge.png is larger than 50 MB",
        "/empty.png": "{}/empty.png returned nothing (0 bytes)",
        "/disguised.png": "'{}/disguised.png' is not an image file: it is an HTML web page",
    }
    for path, message in cases.items():
        with pytest.raises(ImageError) as info:
            load_image(server + path)
        assert _one_line(str(info.value)).startswith(message.format(server)), info.value


def test_cli_reports_url_failures_in_one_line(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(images.load, "URL_TIMEOUT", 0.6)
    out = tmp_path / "out.png"
    for path, message in (("/drip.png", "did not send the whole image"), ("/missing.png", "HTTP 404")):
        assert cli.main(["dream", server + path, "-o", str(out), *STILL]) == 2
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("nbart: error: ") and message in lines[0]
    assert not out.exists()
