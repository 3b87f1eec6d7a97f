"""The studio in a real ipykernel, seen from the front-end's side of the wire (no browser): preview updates sent
from the run's thread reach the iopub channel while the kernel answers another cell, and a Stop click (a comm
message, as the browser sends it) ends the run within a step. Runs under ipykernel 7 + ipywidgets 8 and under
Colab's ipykernel 6.17 + ipywidgets 7.7 (see .ci/run)."""

import json
import os
import queue
import sys
import time

import pytest
from conftest import ROOT

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")
pytest.importorskip("ipywidgets")

from jupyter_client import KernelManager  # noqa: E402
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402


class Wire:
    """A kernel client that keeps every iopub message with the time it arrived."""

    def __init__(self, client):
        self.client = client
        self.messages = []  # (arrival time, message)

    def pump(self, until, timeout):
        """Read iopub messages until ``until(messages)`` is true; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not until(self.messages):
            left = deadline - time.monotonic()
            assert left > 0, f"timed out; last messages: {[m['msg_type'] for _, m in self.messages[-10:]]}"
            try:
                msg = self.client.get_iopub_msg(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            self.messages.append((time.monotonic(), msg))

    def execute(self, code, timeout=120):
        """Run a cell; return (its stdout, the time it went idle)."""
        msg_id = self.client.execute(code)

        def idle(msgs):
            return any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                       and m["parent_header"].get("msg_id") == msg_id for _, m in msgs)

        self.pump(idle, timeout)
        done_at = next(t for t, m in self.messages if m["msg_type"] == "status" and m["parent_header"].get(
            "msg_id") == msg_id and m["content"]["execution_state"] == "idle")
        mine = [m for _, m in self.messages if m["parent_header"].get("msg_id") == msg_id]
        errors = [m["content"] for m in mine if m["msg_type"] == "error"]
        assert not errors, errors
        out = "".join(m["content"]["text"] for m in mine if m["msg_type"] == "stream")
        results = [m["content"]["data"]["text/plain"] for m in mine if m["msg_type"] == "execute_result"]
        return out + "".join(results), done_at

    def click(self, comm_id):
        """Send a button click the way the browser's widget manager does."""
        content = {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}}
        self.client.shell_channel.send(self.client.session.msg("comm_msg", content))

    def updates(self, comm_id, trait):
        """Arrival times of the state updates of ``trait`` on the widget ``comm_id``."""
        times = []
        for t, m in self.messages:
            if m["msg_type"] != "comm_msg" or m["content"].get("comm_id") != comm_id:
                continue
            data = m["content"]["data"]
            if data.get("method") == "update" and (trait in data.get("state", {})
                                                   or [trait] in data.get("buffer_paths", [])):
                times.append(t)
        return times


@pytest.fixture
def wire(tmp_path):
    kernels = tmp_path / "kernels" / "nbart-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "nbart test", "language": "python",
    }))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    km = KernelManager(kernel_name="nbart-test",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")]))
    km.start_kernel(env=env, cwd=str(tmp_path))
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        yield Wire(client)
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


def test_preview_updates_flow_from_the_thread_while_another_cell_runs_and_stop_clicks_land(wire):
    out, _ = wire.execute(
        "import nbart\n"
        "s = nbart.DreamStudio(model='vgg16', weights='none', max_size=64, octaves=1, steps=5000, seed=0,\n"
        "                      precision='float32', fps=10)\n"
        "assert s.mode == 'thread'\n"
        "s.start()\n"
        "print(s.preview.model_id, s.buttons['stop'].model_id)\n"
    )
    preview_id, stop_id = out.split()
    wire.pump(lambda _: len(wire.updates(preview_id, "value")) >= 2, timeout=120)  # frames are flowing

    out, answered_at = wire.execute("6 * 7")  # the kernel is free while the run works
    assert out.strip() == "42"
    wire.pump(lambda _: len([t for t in wire.updates(preview_id, "value") if t > answered_at]) >= 3, timeout=60)

    clicked_at = time.monotonic()
    wire.click(stop_id)
    out, _ = wire.execute(
        "assert s.wait(60)\n"
        "e = s.history[-1]\n"
        "print(e.outcome, e.steps_done, e.total, s.buttons['run'].disabled, s.preview.format)\n"
    )
    outcome, steps, total, run_disabled, fmt = out.split()
    assert outcome == "stopped" and int(steps) < int(total) and run_disabled == "False" and fmt == "png"
    stopped_at = max(wire.updates(preview_id, "value"))
    assert stopped_at - clicked_at < 10  # within a step (each takes milliseconds here), plus the message trip
    assert not any("Traceback" in m["content"].get("text", "") for _, m in wire.messages if m["msg_type"] == "stream")


def test_import_nbart_in_a_kernel_loads_tensorflow_in_the_background_without_its_startup_noise(wire):
    """The quickstart's first cell imports nbart; TensorFlow then loads while the participant reads on (issue 16.5:
    the first step within 2 s of Run), the cell returns at once, its native start-up lines stay hidden, and a cell
    that imports Keras or TensorFlow meanwhile waits for it and works."""
    out, _ = wire.execute(
        "import sys, nbart\n"
        "preload = nbart.quiet._preloading\n"
        "print(len(preload), preload[0].name, preload[0].is_alive(), nbart.quiet.in_kernel(),\n"
        "      nbart.quiet.preload() is preload[0])\n"
    )
    assert out.split() == ["1", "nbart-preload", "True", "True", "True"]  # the cell is done, the import goes on
    # a cell that imports Keras itself at once, while the preload imports TensorFlow (they import each other): the
    # two imports' module locks crossed and the kernel was broken for good ("... has no attribute DatasetV2")
    out, _ = wire.execute(
        "during = preload[0].is_alive()\n"
        "import keras\n"
        "from keras import layers\n"
        "import tensorflow as tf\n"
        "preload[0].join(180)\n"
        "print(during, preload[0].is_alive(), int(tf.reduce_sum(tf.constant([2, 3]))), layers.Dense(2).units,\n"
        "      keras.ops.sum(keras.ops.ones(4)).numpy())\n"
    )
    assert out.split() == ["True", "False", "5", "2", "4.0"]
    streams = "".join(m["content"].get("text", "") for _, m in wire.messages if m["msg_type"] == "stream")
    for noise in ("Could not find cuda drivers", "cpu_feature_guard", "cuInit", "rebuild TensorFlow", "Traceback"):
        assert noise not in streams, streams


def test_keras_imported_in_the_same_cell_as_nbart_or_from_a_thread_waits_for_the_preload(wire):
    """``import nbart`` then ``import keras`` on the next line hung the kernel for good: the preload had not yet
    guarded the import when the cell took Keras' lock. A thread's ``importlib.import_module('keras')`` did the
    same, and ``import tensorflow`` on that line showed TensorFlow's start-up lines."""
    out, _ = wire.execute(
        "import importlib, sys, threading\n"
        "import nbart\n"
        "during = nbart.quiet._preloading[0].is_alive()\n"
        "found = {}\n"
        "worker = threading.Thread(target=lambda: found.setdefault('keras', importlib.import_module('keras')))\n"
        "worker.start()\n"
        "import keras\n"
        "import tensorflow as tf\n"
        "worker.join(180)\n"
        "print(during, worker.is_alive(), found['keras'] is keras, int(tf.reduce_sum(tf.constant([2, 3]))),\n"
        "      importlib.import_module.__module__)\n",
        timeout=240,
    )
    assert out.split() == ["True", "False", "True", "5", "importlib"]  # the guard's wrapper is gone
    streams = "".join(m["content"].get("text", "") for _, m in wire.messages if m["msg_type"] == "stream")
    for noise in ("Could not find cuda drivers", "cpu_feature_guard", "cuInit", "rebuild TensorFlow", "Traceback"):
        assert noise not in streams, streams
