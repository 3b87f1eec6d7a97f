"""The package's import graph: one-way layers, no cycle, no module using another module's private names.

Read from the source (ast), lazy imports inside functions included: they are dependencies too, only deferred.
A new module must be placed in LAYERS (see ARCHITECTURE.md); the failure message says so.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "nbart"

# Lowest first. A module may import modules of its own layer or below, never above. `nbart.images` stands for the
# module or the package and its submodules; `nbart.studio` for every studio module.
LAYERS = [
    ["errors", "quiet"],  # error types and the one advice table; TensorFlow imported without its start-up noise
    ["spec", "registry", "images", "resources", "video", "sheets"],
    # spec machinery; backbone data; image I/O; memory limits; GIF/MP4 in and out;
    # labelled contact sheets
    ["params", "weights", "masks"],  # the task parameter specs; which weights, loading them; mask makers
    ["precision", "objectives", "lean", "runtime", "executor", "pixels", "convgrad"],
    # float32/bfloat16; the paper's losses; the lean executor; the single-threaded TF executor; float image
    # resizing and colour transforms; convolutions whose input gradient is a forward convolution (float32 memory)
    ["grams"],  # the Gram matrices' memory-saving custom gradients (on objectives.gram_matrix)
    ["extractors"],  # cached networks and feature extractors (lean or Keras, Gram junctions)
    ["backbones"],  # compatibility re-exports of the four modules above
    ["events", "timeline"],  # StepEvent and the Run handle; a run's bounded frames
    ["runs", "optimizers", "styleplan", "tiling", "cost", "control", "inside", "stylelosses",
     "pyramid"],
    # plumbing shared by the tasks; style size plans; dream octaves and tiles; what a run will cost (every run checks
    # that it fits before it starts, so the tasks call it); masked and guided objectives (traced); the inside view
    # (per-term losses, gradient map); each style_loss's terms; the Laplacian pyramid
    # the tasks; the layer explorer
    ["deepdream", "styletransfer", "dream", "style", "fast", "zoom", "videostyle", "explorer"],
    ["warmup", "budget", "sweeps"],  # builds and traces what the tasks will run; sizes that fit a minute; sweeps
    # front-ends (safety: a CLI run's checkpoints; cli_motion: zoom and video commands; progress: a notebook cell's
    # bar) and the API
    ["cli", "cli_motion", "safety", "studio", "progress", "__main__", "__init__"],
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}

# Known reaches into other modules' privates still to remove (none left). An entry that is no longer found fails
# too, so the list can only shrink.
KNOWN_PRIVATE_USES: set[tuple[str, str]] = set()


def _modules() -> dict[str, pathlib.Path]:
    """Dotted names below nbart ("images", "studio.base", "__init__") -> file."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _unit(module: str) -> str:
    """The LAYERS entry a module belongs to: its top-level name below nbart."""
    return module.split(".")[0]


def _resolve(name: str) -> str | None:
    """"nbart.images.load" -> "images.load"; "nbart" -> "__init__"; None outside nbart."""
    if name == "nbart":
        return "__init__"
    if not name.startswith("nbart."):
        return None
    parts = name[len("nbart."):].split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts) or None


def _imports(module: str) -> tuple[set[str], dict[str, str], set[tuple[str, str]]]:
    """The nbart modules ``module`` imports; its local aliases of nbart modules; private names it imports."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    deps, aliases, privates = set(), {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                target = _resolve(a.name)
                if target:
                    deps.add(target)
                    if a.asname:
                        aliases[a.asname] = target
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package
                anchor = ("nbart." + package if package else "nbart").split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                submodule = _resolve(f"{base}.{a.name}")
                if submodule and submodule != _resolve(base):  # `from nbart import backbones`: a module
                    deps.add(submodule)
                    aliases[a.asname or a.name] = submodule
                elif _resolve(base):
                    target = _resolve(base)
                    deps.add(target)
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        privates.add((target, a.name))
    deps.discard(module)
    return deps, aliases, privates


def _private_uses(module: str) -> set[str]:
    """"other._name" for every use of another nbart module's private attribute or import of a private name."""
    deps, aliases, privates = _imports(module)
    found = {f"{target}.{name}" for target, name in privates if target != module}
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")
                and aliases[node.value.id] != module):
            found.add(f"{aliases[node.value.id]}.{node.attr}")
    return found


GRAPH = {module: _imports(module)[0] for module in MODULES}


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in MODULES if _unit(m) not in LAYER)
    assert not unplaced, f"place {', '.join(unplaced)} in LAYERS of tests/test_architecture.py (and ARCHITECTURE.md)"


def test_imports_point_down_the_layers():
    upward = sorted(
        f"{m} (layer {LAYER[_unit(m)]}) imports {d} (layer {LAYER[_unit(d)]})"
        for m, deps in GRAPH.items() for d in deps
        if _unit(m) in LAYER and _unit(d) in LAYER and LAYER[_unit(d)] > LAYER[_unit(m)]
    )
    assert not upward, "\n".join(upward)


def test_the_bottom_layers_import_nothing_above_them():
    # the leaves the rest stands on: errors and quiet import nothing of nbart, the registry only them
    assert GRAPH["errors"] == set() and GRAPH["quiet"] == set()
    assert GRAPH["registry"] == {"errors", "quiet"}
    assert GRAPH["spec"] == {"errors"}


def test_there_is_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for d in sorted(GRAPH.get(m, ())):
            if state.get(d) == 1:
                return path[path.index(d):] + [d]
            if d not in state:
                cycle = visit(d)
                if cycle:
                    return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(GRAPH):
        if m not in state:
            cycle = visit(m)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_uses_another_modules_private_names():
    found = {(m, use) for m in MODULES for use in _private_uses(m)}
    new = sorted(found - KNOWN_PRIVATE_USES)
    assert not new, "private names used across modules: " + ", ".join(f"{m} uses {u}" for m, u in new)
    fixed = sorted(KNOWN_PRIVATE_USES - found)
    assert not fixed, f"no longer used, remove from KNOWN_PRIVATE_USES: {fixed}"


@pytest.mark.parametrize("source, expected", [
    ("from nbart import backbones\nbackbones._models\n", {"backbones._models"}),
    ("from nbart.lean import _identity\n", {"lean._identity"}),
    ("import nbart.lean as L\nL._producer(1)\nL.__name__\n", {"lean._producer"}),
])
def test_the_private_use_check_sees_each_form(source, expected, tmp_path, monkeypatch):
    # the checker itself, on a throwaway module: each form of reaching into a private is seen, dunders are not
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    monkeypatch.setitem(MODULES, "probe", probe)
    assert _private_uses("probe") == expected
