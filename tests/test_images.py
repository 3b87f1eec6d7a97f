import http.server
import io
import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from nbart import images
from nbart.images import ImageError, load_image


def _asymmetric(size=(40, 30)) -> Image.Image:
    """Grey image with a red block at the top left and a blue block at the bottom: every flip is visible."""
    a = np.full((size[1], size[0], 3), 128, np.uint8)
    a[:8, :10] = (255, 0, 0)
    a[-6:, 5:30] = (0, 0, 255)
    return Image.fromarray(a)


_INVERSE = {
    1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation):
    upright = _asymmetric()
    stored = upright if _INVERSE[orientation] is None else upright.transpose(_INVERSE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, format="PNG", exif=exif)
    np.testing.assert_array_equal(np.asarray(load_image(buf.getvalue())), np.asarray(upright))


def test_broken_exif_keeps_the_picture():
    buf = io.BytesIO()
    _asymmetric().save(buf, format="JPEG", exif=b"Exif\x00\x00garbage-not-a-tiff-header")
    assert load_image(buf.getvalue()).size == (40, 30)


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_transparency_is_composited_on_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    out = np.asarray(load_image(_save(rgba, "PNG")))
    assert tuple(out[1, 1]) == (255, 255, 255)
    assert tuple(out[0, 0]) == (0, 0, 255)
    la = Image.new("LA", (3, 3), (0, 128))
    assert tuple(np.asarray(load_image(_save(la, "PNG")))[0, 0]) == (127, 127, 127)


def test_palette_with_transparency_is_composited_on_white():
    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    p.putpixel((1, 1), 1)
    out = np.asarray(load_image(_save(p, "PNG", transparency=0)))
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[1, 1]) == (255, 0, 0)


def test_grayscale_cmyk_and_16_bit_become_rgb():
    assert load_image(_save(Image.new("L", (5, 5), 90), "PNG")).getpixel((0, 0)) == (90, 90, 90)
    cmyk = load_image(_save(Image.new("CMYK", (5, 5), (0, 255, 255, 0)), "JPEG"))
    r, g, b = cmyk.getpixel((2, 2))
    assert r > 200 and g < 60 and b < 60  # pure red
    sixteen = Image.fromarray(np.full((5, 5), 65535 // 2, np.uint16))
    assert sixteen.mode.startswith("I;16")
    assert load_image(_save(sixteen, "PNG")).getpixel((0, 0)) == (127, 127, 127)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (6, 6), c) for c in ((255, 0, 0), (0, 255, 0))]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:])
    r, g, b = load_image(data).getpixel((3, 3))
    assert r > 200 and g < 50


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.zeros((4, 5), np.uint8), (5, 4)),
        (np.zeros((4, 5, 1), np.uint8), (5, 4)),
        (np.zeros((4, 5, 3), np.float32), (5, 4)),
        (np.zeros((4, 5, 4), np.uint8), (5, 4)),
        (np.zeros((4, 5, 3), np.uint16), (5, 4)),
        (np.zeros((4, 5), bool), (5, 4)),
    ],
)
def test_arrays_of_the_supported_shapes_and_dtypes(array, expected):
    img = load_image(array)
    assert img.mode == "RGB" and img.size == expected


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((4, 5, 2), np.uint8), "array must have shape"),
        (np.zeros((4,), np.uint8), "array must have shape"),
        (np.zeros((4, 5, 3), np.int32), "array dtype must be uint8, uint16, bool or float"),
        (np.full((4, 5, 3), 255.0), "float arrays must hold values in [0, 1]"),
        (np.full((4, 5, 3), np.nan), "NaN"),
        (np.zeros((0, 5, 3), np.uint8), "array is empty"),
    ],
)
def test_bad_arrays_get_a_clear_error(array, message):
    with pytest.raises(ImageError) as info:
        load_image(array)
    assert message in str(info.value)


def test_bad_files_get_one_line_errors(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("hello, I am text")
    html = tmp_path / "page.jpg"
    html.write_text("<!doctype html><html><body>not an image</body></html>")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(_save(_asymmetric((200, 200)), "JPEG")[:400])
    cases = {
        empty: "is empty",
        text: "is not an image file",
        html: "is not an image file",
        truncated: "truncated or corrupt",
        tmp_path / "missing.png": "no such file",
        tmp_path: "is a folder",
    }
    for path, message in cases.items():
        with pytest.raises(ImageError) as info:
            load_image(str(path))
        assert message in str(info.value) and "\n" not in str(info.value), path


def test_decompression_bombs_are_refused_in_plain_words(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match="too large to open safely"):
        load_image(_save(Image.new("RGB", (100, 100)), "PNG"))


def test_max_size_downscales_the_long_side():
    img = load_image(_asymmetric((400, 100)), max_size=200)
    assert img.size == (200, 50)
    assert load_image(_asymmetric((40, 30)), max_size=200).size == (40, 30)


def test_fit_upscales_tiny_images_and_refuses_too_thin_ones():
    assert images.fit(Image.new("RGB", (1, 1)), 512, 75).size == (75, 75)
    assert images.fit(Image.new("RGB", (16, 8)), 512, 75).size == (150, 75)
    with pytest.raises(ImageError, match="too thin"):
        images.fit(Image.new("RGB", (4000, 40)), 512, 75)


def test_samples_load():
    for name in images.sample_names():
        img = load_image(f"sample:{name}")
        assert img.mode == "RGB" and max(img.size) <= 600
    with pytest.raises(ImageError, match="unknown sample 'nope'; choose from grace_hopper"):
        load_image("sample:nope")


def test_save_png_keeps_parameters_and_is_atomic(tmp_path):
    path = tmp_path / "out.png"
    images.save_image(_asymmetric(), path, {"steps": 3, "layers": ["mixed3"]})
    assert images.read_params(path) == {"steps": 3, "layers": ["mixed3"]}
    assert os.listdir(tmp_path) == ["out.png"]  # no temporary file left


@pytest.mark.parametrize("name", ["out.jpg", "OUT.JPG", "out.jpeg", "out.webp"])
def test_jpeg_and_webp_keep_the_parameters_too(tmp_path, name):
    """They used to carry no settings (WebP) or carry them where read_params didn't look (a JPEG comment)."""
    settings = {"steps": 3, "layers": ["mixed3"], "note": "café"}
    images.save_image(_asymmetric(), tmp_path / name, settings)
    assert images.read_params(tmp_path / name) == settings
    images.save_image(_asymmetric(), tmp_path / name)  # no settings given: none read back
    assert images.read_params(tmp_path / name) is None


def test_failed_save_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    path.write_bytes(b"old")

    def boom(self, fp, *a, **k):
        fp.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(ImageError, match="can't write .*No space left on device"):
        images.save_image(_asymmetric(), path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.png"]


def test_save_rejects_unknown_suffix_and_missing_folder(tmp_path):
    with pytest.raises(ImageError, match="output must end in .png, .jpg"):
        images.save_image(_asymmetric(), tmp_path / "out.bmp")
    with pytest.raises(ImageError, match="does not exist"):
        images.save_image(_asymmetric(), tmp_path / "no" / "out.png")


def test_save_gif_writes_all_frames(tmp_path):
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 120, 240)]
    images.save_gif(frames, tmp_path / "run.gif")
    with Image.open(tmp_path / "run.gif") as gif:
        assert gif.n_frames == 3


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/slow.png":
            time.sleep(1.5)
        if self.path == "/page":
            body, kind = b"<html>hi</html>", "text/html"
        else:
            body, kind = _save(_asymmetric(), "PNG"), "image/png"
        try:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout case), as it should; no traceback in a later test's stderr


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_urls_load_images_and_refuse_pages_and_slow_servers(server, monkeypatch):
    assert load_image(f"{server}/a.png").size == (40, 30)
    with pytest.raises(ImageError, match="returned a web page"):
        load_image(f"{server}/page")
    monkeypatch.setattr(images.load, "URL_TIMEOUT", 0.3)
    with pytest.raises(ImageError, match="did not answer within 0.3 s"):
        load_image(f"{server}/slow.png")
    with pytest.raises(ImageError, match="can't download"):
        load_image("http://127.0.0.1:9/none.png")
