"""The studio in a real browser: JupyterLab and Notebook 7 on 127.0.0.1, driven by Playwright on Debian's Chromium.

A notebook builds a studio with a tiny run; the test clicks Run, watches the preview ``<img>``'s ``blob:`` source
change several times while the kernel answers another cell, clicks Stop and checks that the run ends and the panel
says so. Screenshots of the panel at a laptop's size go to ``build/screenshots/``.

Skipped (with the reason) where Chromium, JupyterLab, Notebook 7 or Playwright are absent; ``.ci/run`` installs them.
Playwright's own browser download is never used: Chromium comes from Debian (``apt-get install chromium``).
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ROOT

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("NBART_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
SCREENSHOTS = ROOT / "build" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}

STUDIO_CELL = """\
import nbart
studio = nbart.DreamStudio(model="vgg16", weights="none", max_size=96, octaves=1, steps=4000, seed=0,
                           precision="float32", fps=10)
studio"""
OTHER_CELL = """\
import time
time.sleep(3)  # the kernel answers this cell while the studio runs
6 * 7"""
EXPLORE_CELL = """\
studio.explore.size, studio.explore.steps = 40, 1  # tiny thumbnails: the test clicks one, it doesn't judge them"""
STYLE_CELL = """\
nbart.StyleStudio(model="vgg16", weights="none", sizes=(96,), steps=20, seed=0, precision="float32",
                  fast_preview=True)"""


def _missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    for module in ("playwright", "jupyterlab", "notebook"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install -e '.[browser]'; .ci/run does)"
    return None


if _missing():
    if os.environ.get("NBART_REQUIRE_BROWSER"):  # CI: a missing browser is a failure, not a skip
        raise RuntimeError(f"NBART_REQUIRE_BROWSER is set but {_missing()}")
    pytest.skip(_missing(), allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(params=["jupyterlab", "notebook"])
def server(request, tmp_path_factory):
    """A Jupyter server (JupyterLab or Notebook 7) on 127.0.0.1 with a token, serving a folder with the notebook."""
    app = request.param
    root = tmp_path_factory.mktemp(app)
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}
                    for src in (STUDIO_CELL, OTHER_CELL, STYLE_CELL, EXPLORE_CELL)],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (root / "studio.ipynb").write_text(json.dumps(nb))
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')  # no news toast
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "JUPYTER_CONFIG_DIR": str(root / ".config"), "JUPYTER_RUNTIME_DIR": str(root / ".runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces")}
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", app, "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
         *(["--allow-root"] if os.geteuid() == 0 else [])],  # CI runs as root
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.close()
            pytest.fail(f"{app} did not start:\n{(root / 'server.log').read_text()[-3000:]}")
        time.sleep(0.3)
    url = (f"{base}/lab/tree/studio.ipynb" if app == "jupyterlab" else f"{base}/notebooks/studio.ipynb")
    yield app, f"{url}?token={token}", root
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _wait_for_kernel(page, timeout: float = 120) -> None:
    """Until the notebook's kernel has been idle for a second (it flickers through 'unknown' while it connects)."""
    indicator = ".jp-Notebook-ExecutionIndicator"
    deadline, idle_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        idle = page.locator(f"{indicator}[data-status=idle]").count() > 0
        idle_since = (idle_since or time.monotonic()) if idle else None
        if idle_since and time.monotonic() - idle_since > 1.0:
            return
        page.wait_for_timeout(100)
    pytest.fail("the notebook's kernel never became idle")


def _run_cell(page, index: int) -> None:
    """Shift+Enter in cell ``index``, again if the keys arrived before the editor was ready (the prompt stays '[ ]')."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputPrompt")
    for _ in range(3):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if prompt.inner_text().strip() not in ("[ ]:", ""):
                return
            page.wait_for_timeout(100)
    pytest.fail(f"cell {index} did not start")


def test_the_preview_changes_live_while_the_kernel_answers_another_cell_and_stop_works(browser, server):
    app, url, root = server
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(url)
        page.locator(".jp-Notebook .jp-Cell .jp-InputArea-editor").first.wait_for(timeout=90_000)
        _wait_for_kernel(page)
        _run_cell(page, 0)
        run, stop = page.locator(".nbart-run"), page.locator(".nbart-stop")
        run.wait_for(timeout=120_000)
        preview = page.locator("img.nbart-preview")
        preview.wait_for()
        page.wait_for_timeout(500)  # let the layout settle for the picture
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{app}-studio-ready.png"))
        first = preview.get_attribute("src")
        assert first and first.startswith("blob:")

        run.click()
        page.wait_for_function("() => !document.querySelector('.nbart-stop').disabled", timeout=30_000)
        # wait for the steps to flow (the worker imports TensorFlow and builds the model first)
        page.wait_for_function("() => document.querySelector('.nbart-status').innerText.startsWith('step ')",
                               timeout=120_000)
        _run_cell(page, 1)
        asked = time.monotonic()
        answer = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea-output")
        seen, answered = [], None
        while time.monotonic() - asked < 60:
            seen.append((time.monotonic(), preview.get_attribute("src")))
            if answered is None and answer.count() and "42" in answer.first.inner_text():
                answered = time.monotonic()
            if answered is not None and time.monotonic() - answered > 1.0:
                break
            page.wait_for_timeout(50)
        assert answered is not None, "the other cell got no answer while the studio ran"
        during = {src for t, src in seen if asked <= t <= answered}
        assert len(during) >= 3, f"the preview changed {len(during) - 1} times while the other cell ran"
        assert stop.is_enabled() and run.is_disabled()  # still running after the other cell answered
        page.screenshot(path=str(SCREENSHOTS / f"{app}-studio-running.png"))

        stop.click()
        page.wait_for_function("() => !document.querySelector('.nbart-run').disabled", timeout=30_000)
        status = page.locator(".nbart-status").inner_text()
        assert "stopped" in status and "picture is kept" in status, status
        assert stop.is_disabled()
        page.locator(".nbart-restore").first.wait_for(state="visible", timeout=10_000)
        page.screenshot(path=str(SCREENSHOTS / f"{app}-studio-stopped.png"))
        # Show code gives the stopped picture: the run as a loop that breaks at the step the Stop reached
        page.locator(".nbart-studio button.nbart-code").first.click()
        code_box = page.locator(".nbart-studio .nbart-code textarea").first
        code_box.wait_for(state="visible", timeout=10_000)
        code = code_box.input_value()
        assert "run = nbart.dream_run('sample:grace_hopper'" in code and "seed=0" in code, code
        assert "    if event.step == " in code and "result = run.image()" in code, code
        # the whole panel, on a taller screen (an element screenshot inside JupyterLab's scroller is unreliable)
        page.set_viewport_size({"width": VIEWPORT["width"], "height": 1300})
        page.locator(".nbart-studio .widget-tab").first.scroll_into_view_if_needed()
        page.locator(".nbart-studio").evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
        page.screenshot(path=str(SCREENSHOTS / f"{app}-studio-panel.png"))

        # the style studio beside it: its fast preview appears without Run, a painting's tile picks the style
        page.set_viewport_size(VIEWPORT)
        _run_cell(page, 2)
        style = page.locator(".nbart-studio").nth(1)
        style.locator(".nbart-run").wait_for(timeout=60_000)
        style_status, style_preview = style.locator(".nbart-status"), style.locator("img.nbart-preview")
        style_status.filter(has_text="fast preview ·").wait_for(timeout=120_000)
        assert style.locator(".nbart-run").is_enabled(), "the fast preview came from a run"
        fast_src = style_preview.get_attribute("src")
        assert fast_src and fast_src.startswith("blob:")
        style.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(500)
        page.screenshot(path=str(SCREENSHOTS / f"{app}-style-studio-fast.png"))
        style.locator(".nbart-style-tile").nth(1).click()  # The Scream
        deadline = time.monotonic() + 60
        while style_preview.get_attribute("src") == fast_src and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert style_preview.get_attribute("src") != fast_src, "picking a painting changed no preview"
        # both previews in the history: the second slot appears with the new one
        style.locator(".nbart-history .nbart-restore").nth(1).wait_for(state="visible", timeout=60_000)
        style_status.filter(has_text="fast preview ·").wait_for(timeout=60_000)
        page.wait_for_timeout(300)
        page.screenshot(path=str(SCREENSHOTS / f"{app}-style-studio.png"))
        style.locator(".widget-tab .lm-TabBar-tab, .widget-tab .p-TabBar-tab").nth(2).click()  # Model
        page.wait_for_timeout(300)
        page.screenshot(path=str(SCREENSHOTS / f"{app}-style-studio-layers.png"))
    except Exception:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{app}-failure.png"))
        raise
    finally:
        page.close()


def test_explore_tab_fills_thumbnails_and_a_click_sets_the_layers(browser, server):
    app, url, root = server
    page = browser.new_page(viewport={"width": VIEWPORT["width"], "height": 1300})
    try:
        page.goto(url)
        page.locator(".jp-Notebook .jp-Cell .jp-InputArea-editor").first.wait_for(timeout=90_000)
        _wait_for_kernel(page)
        _run_cell(page, 0)
        studio = page.locator(".nbart-studio").first
        studio.locator(".nbart-run").wait_for(timeout=120_000)
        _run_cell(page, 3)  # tiny thumbnails
        _wait_for_kernel(page)
        studio.locator(".widget-tab .lm-TabBar-tab, .widget-tab .p-TabBar-tab").filter(has_text="Explore").click()
        studio.locator(".nbart-explore-run").click()
        picks = studio.locator("button.nbart-explore-pick")
        page.wait_for_function("() => [...document.querySelectorAll('button.nbart-explore-pick')]"
                               ".filter(b => !b.disabled).length >= 13", timeout=300_000)
        thumbs = studio.locator("img.nbart-explore-pick-image")
        assert (thumbs.nth(12).get_attribute("src") or "").startswith("blob:")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{app}-studio-explore.png"))
        picks.nth(6).click()  # block3_conv3
        studio.locator(".nbart-explore-status").filter(has_text="layers set to block3_conv3").wait_for(timeout=30_000)
        studio.locator(".widget-tab .lm-TabBar-tab, .widget-tab .p-TabBar-tab").filter(has_text="Model").click()
        selected = studio.locator(".nbart-param-layers select").evaluate(
            "s => [...s.selectedOptions].map(o => o.textContent.trim())")
        assert selected == ["block3_conv3"], selected
    except Exception:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{app}-explore-failure.png"))
        raise
    finally:
        page.close()


def test_chromium_is_debians_and_playwright_did_not_download_one():
    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)
    cache = os.path.expanduser("~/.cache/ms-playwright")
    assert not os.path.isdir(cache) or not any(n.startswith("chromium") for n in os.listdir(cache))
