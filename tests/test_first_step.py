"""A studio's first seconds after Run (issue 16.5), checked by what is built and traced, never by seconds.

The seconds themselves (first step within 2 s of Run with the panel open a few seconds, the first estimate against
the truth) are measured by ``benchmarks/bench_first_step.py`` (results in ``benchmarks/results/first-step.*``).
"""

import math

import pytest
from conftest import TINY, TINY_STYLE

import nbart
from nbart import extractors
from nbart.studio import driver
from nbart.studio.render import status_line


@pytest.fixture
def builds(monkeypatch):
    """Counts the networks built from here on (``extractors.model``'s weight loads)."""
    count = {"networks": 0}
    load = extractors.load_weights

    def counting(*args, **kwargs):
        count["networks"] += 1
        return load(*args, **kwargs)

    monkeypatch.setattr(extractors, "load_weights", counting)
    extractors.clear_cache()
    return count


def _traced() -> dict:
    """Every cached traced function, by its extractor and key, with how many times it was traced."""
    out = {}
    for key, ext in extractors.cached_extractors.items():
        for fkey, pair in ext.functions.items():
            for i, f in enumerate(pair):
                f = getattr(f, "function", f)  # the style loss is wrapped to keep its argument order
                out[(key, fkey, i)] = f.experimental_get_tracing_count()
    return out


def test_the_first_estimate_shown_waits_for_the_engines_model(gradient_image):
    """After the first step (which also builds and traces) nothing is estimated; from the second on, the engine's
    per-stage estimate. The mean pace of the first step made the first estimate shown 3-15x too long."""
    events = list(nbart.dream_run(gradient_image, **TINY))
    assert math.isnan(events[0].seconds_left)
    assert "estimating the time left" in status_line(events[0])
    assert events[1].seconds_left == events[1].eta and math.isfinite(events[1].eta)
    assert status_line(events[1]).endswith(" left") and "estimating" not in status_line(events[1])
    assert "left" not in status_line(events[-1])  # the last step: nothing left


def test_a_warmed_up_dream_studio_runs_without_building_or_tracing_again(builds):
    """What the warm-up builds while the panel is open is what Run uses: the run builds and traces nothing more
    (its first step is then one step's work)."""
    studio = nbart.DreamStudio(**TINY, warm_up=True)
    studio.warm_up_thread.join(120)
    assert not studio.warm_up_thread.is_alive()
    warmed = _traced()
    assert builds["networks"] == 1 and warmed and all(n == 1 for n in warmed.values())
    assert studio.start(block=True)
    assert studio.current is not None and studio.current.steps_done == studio.current.total
    assert builds["networks"] == 1 and _traced() == warmed
    studio.pickers["image"].sample.value = "starry_night"  # another picture: nothing new to build
    assert studio.start(block=True)
    assert builds["networks"] == 1 and _traced() == warmed


def test_the_style_studio_reuses_what_it_built_when_only_the_images_change(builds):
    """Changing the content or the style images (a painting's tile, an upload) rebuilds no network, extractor or
    traced function; neither does Continue."""
    studio = nbart.StyleStudio(**{**TINY_STYLE, "sizes": (64,)})  # a landscape content fits at 64 px
    assert studio.start(block=True)
    built, traced = builds["networks"], _traced()
    assert built == 1 and traced and all(n == 1 for n in traced.values())
    studio.pickers["style"].sample.value = ("the_scream",)
    assert studio.start(block=True)
    studio.pickers["style"].sample.value = ("starry_night", "the_scream")  # two styles, blended
    studio.pickers["content"].sample.value = "starry_night"
    assert studio.start(block=True), studio.error
    assert studio.continue_run(2, block=True), studio.error
    assert len(studio.history) == 4 and studio.error is None
    assert builds["networks"] == built and _traced() == traced


def test_pressing_run_while_the_warm_up_imports_keras_reads_no_half_made_module(monkeypatch):
    """Run pressed while the warm-up thread is still importing TensorFlow (and Keras with it) found a half-made
    ``keras`` in sys.modules: ``keras.config`` raised in the click handler and nothing ran."""
    import sys
    import types

    from nbart.studio.driver import keras_state

    half = types.ModuleType("keras")
    half.__spec__ = types.SimpleNamespace(_initializing=True)  # what importlib marks while a module runs
    monkeypatch.setitem(sys.modules, "keras", half)
    assert keras_state() == {}
    monkeypatch.delitem(sys.modules, "keras")
    import keras

    assert keras_state() == {"dtype_policy": keras.config.dtype_policy().name}


@pytest.fixture
def slow_probe(monkeypatch, tmp_path):
    """An empty rate cache and a probe that waits for ``release`` (records the calls)."""
    import threading

    from nbart import cost

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(cost, "_calibrations", {})
    state = {"calls": [], "release": threading.Event(), "started": threading.Event(), "busy": lambda: False}

    def probe(backbone, precision="float32", repeats=3, cancel=None):
        state["calls"].append((backbone, cancel, state["busy"]()))
        state["started"].set()
        state["release"].wait(30)
        return {"s_per_gflop": 0.01, "call_s": 0.02, "build_s": 1.0, "trace_s": 0.5, "new_shape_s": 0.25}

    monkeypatch.setattr(cost, "probe", probe)
    return state


def test_a_run_reading_the_rate_never_waits_for_a_probe_under_way(slow_probe):
    """The cost probe (seconds) held the rate cache's lock: a run starting meanwhile waited in pace_hints until it
    ended. Now the run reads what is known (nothing yet) at once, and the probe's rate is kept when it lands."""
    import threading

    from nbart import cost

    probing = threading.Thread(target=cost.calibration, args=("vgg16", "float32"))
    probing.start()
    assert slow_probe["started"].wait(30)
    reader = threading.Thread(target=lambda: slow_probe.setdefault("hints", cost.pace_hints("vgg16", "float32")))
    reader.start()
    reader.join(10)
    alive = reader.is_alive()
    slow_probe["release"].set()
    probing.join(30)
    assert not alive and slow_probe["hints"] == {}  # read at once, while the probe ran
    assert cost.pace_hints("vgg16", "float32") == {"new_stage_s": 0.25, "step_overhead_s": 0.02}
    assert len(slow_probe["calls"]) == 1


def test_a_cancelled_probe_measures_and_keeps_nothing(monkeypatch, tmp_path):
    """``cancel`` (the studio: a run has started) stops the probe before its timed calls; nothing is cached, and
    the probe's random-weight network does not stay in the run's caches."""
    from nbart import cost

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(cost, "_calibrations", {})
    extractors.clear_cache()
    assert cost.probe("vgg16", "float32", cancel=lambda: True) is None
    assert ("vgg16", "none", "float32") not in extractors.cached_models
    assert cost.calibration("vgg16", "float32", cancel=lambda: True) is None
    assert cost.calibration("vgg16", "float32", run_probe=False) is None


def test_the_studio_never_probes_beside_a_run(slow_probe, monkeypatch):
    """The warm-up's probe waits until no run is in progress (it would slow the run's steps and mislead its first
    estimate of the time left), and it is handed a cancel that is true once Run is pressed."""
    import threading

    from nbart import warmup

    warming, go = threading.Event(), threading.Event()

    def held_warm_up(task, params=None, **kwargs):  # the warm-up's build, held until the run below has started
        warming.set()
        go.wait(30)

    monkeypatch.setattr(warmup, "warm_up", held_warm_up)
    slow_probe["release"].set()
    studio = nbart.DreamStudio(**TINY, warm_up=True, estimate=True)
    slow_probe["busy"] = lambda: (studio.running, len(studio.history))
    assert warming.wait(30)
    assert studio.start(block=False)
    go.set()  # the warm-up goes on to its probe while the run builds and runs
    assert studio.wait(120)
    studio.warm_up_thread.join(120)
    # one probe, after the run ended (its result in the history), not beside it
    assert [busy for _, _, busy in slow_probe["calls"]] == [(False, 1)]
    cancel = slow_probe["calls"][0][1]
    assert cancel() is False
    driver._set_running(studio.driver, True)  # as Run sets it
    assert cancel() is True
    driver._set_running(studio.driver, False)
    assert cancel() is False


def test_no_studio_probes_beside_another_studios_run(slow_probe):
    """Two studios in one kernel: the second one's probe waits while the first one runs (the dream studio's probe
    ran 31 s beside the style studio's run, slowing its steps 2x and caching a rate measured on a shared core),
    and a probe under way is cancelled by any studio's Run."""
    import threading

    slow_probe["release"].set()
    running = nbart.DreamStudio(**{**TINY, "steps": 10000}, warm_up=False, estimate=False)
    assert running.start(block=False)
    assert _wait_for(lambda: running.active_run is not None and running.active_run.latest is not None)
    slow_probe["busy"] = lambda: running.running
    other = nbart.DreamStudio(**TINY, warm_up=True, estimate=True)
    waited = threading.Event()
    threading.Timer(3.0, lambda: (waited.set(), running.stop())).start()  # the other's warm-up has built by then
    assert running.wait(120) and waited.is_set()
    other.warm_up_thread.join(120)
    assert [busy for _, _, busy in slow_probe["calls"]] == [False]  # one probe, after the first studio's run
    cancel = slow_probe["calls"][0][1]
    assert cancel() is False
    driver._set_running(running.driver, True)  # Run pressed in the first studio
    assert cancel() is True
    driver._set_running(running.driver, False)


def _wait_for(condition, timeout: float = 120) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _import_nbart_in_a_fresh_process(env: dict) -> tuple[str, str]:
    import os
    import subprocess
    import sys

    code = ("import sys, nbart\n"
            "started = list(nbart.quiet._preloading)\n"
            "[t.join(180) for t in started]\n"
            "print(len(started), 'tensorflow' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr


def test_a_script_or_the_cli_does_not_load_tensorflow_at_import():
    """Outside a Jupyter kernel ``import nbart`` stays light (the CLI's --help, a script that only reads images)."""
    out, _ = _import_nbart_in_a_fresh_process({"NBART_PRELOAD": ""})
    assert out == "0 False"


def test_nbart_preload_1_loads_tensorflow_in_the_background_quietly_and_0_turns_it_off():
    out, err = _import_nbart_in_a_fresh_process({"NBART_PRELOAD": "1", "TF_CPP_MIN_LOG_LEVEL": ""})
    assert out == "1 True"
    for noise in ("Could not find cuda drivers", "cpu_feature_guard", "cuInit", "rebuild TensorFlow"):
        assert noise not in err, err
    out, _ = _import_nbart_in_a_fresh_process({"NBART_PRELOAD": "0"})
    assert out == "0 False"
