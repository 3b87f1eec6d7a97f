"""The Binder files agree with the package: pins satisfy pyproject, postBuild is valid shell and fetches the
weights the default backbones load."""

import pathlib
import shlex
import subprocess

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from packaging.requirements import Requirement

from nbart import backbones, cli, registry
from nbart.params import DreamParams, StyleParams

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"


def _pins() -> dict[str, Requirement]:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {r.name.lower(): r for r in reqs}


def test_requirements_parse_and_are_exact_pins():
    for name, req in _pins().items():
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{name} should be pinned with =="


def test_pins_satisfy_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for line in project["dependencies"]:
        req = Requirement(line)
        assert req.name.lower() in pins, f"{req.name} is a dependency but not pinned in binder/requirements.txt"
        version = next(iter(pins[req.name.lower()].specifier)).version
        assert req.specifier.contains(version, prereleases=True), f"{req.name}=={version} does not satisfy {req}"


def test_ipykernel_is_new_enough_for_thread_updates():
    version = next(iter(_pins()["ipykernel"].specifier)).version
    assert tuple(map(int, version.split(".")[:2])) >= (7, 1)


def test_runtime_is_python_3_12():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.12"


def test_postbuild_is_executable_valid_shell():
    post = BINDER / "postBuild"
    assert post.stat().st_mode & 0o111
    assert post.read_text().startswith("#!/usr/bin/env bash")
    subprocess.run(["bash", "-n", str(post)], check=True)


def test_postbuild_downloads_the_weights_the_default_backbones_load():
    commands = [shlex.split(line) for line in (BINDER / "postBuild").read_text().splitlines()
                if line.strip().startswith("nbart download")]
    assert len(commands) == 1
    named = set(commands[0][2:])
    defaults = {DreamParams().model, StyleParams().model}
    assert named == defaults
    for name in named:  # each is a registry backbone whose weights `auto` will find in Keras' cache
        assert backbones.get(name).imagenet_file.endswith("_notop.h5")
    args = cli.build_parser().parse_args(commands[0][1:])
    assert args.command == "download" and set(args.models) == defaults


def test_download_reports_unreachable_weights_in_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):  # Keras' download, failing as it does without a network
        raise OSError("network is unreachable")

    monkeypatch.setattr(registry.Backbone, "build", offline)
    assert cli.main(["download", "vgg19"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nbart: error: can't download the ImageNet weights of vgg19") and "\n" not in err


@pytest.mark.parametrize("name", ["inception_v3", "vgg19"])
def test_cached_weights_make_auto_use_imagenet(name, monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / backbones.get(name).imagenet_file).write_bytes(b"")
    assert backbones.resolve(name, "auto").weights == "imagenet"
