"""The README's set-up section holds exactly two commands, and `.ci/run` runs the second (the test command)."""

import re

from conftest import ROOT


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", setup, re.S)]


def test_the_readme_has_exactly_two_set_up_commands_one_that_dreams_offline_and_one_that_tests():
    install_and_dream, install_and_test = _setup_commands()
    assert "pip install ." in install_and_dream and "nbart dream sample:" in install_and_dream
    assert install_and_test.endswith("pytest") and '".[dev]"' in install_and_test


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _setup_commands()[1] in ci.splitlines()


def test_the_readme_says_how_to_run_the_quality_tests_and_ci_sets_their_images():
    readme = (ROOT / "README.md").read_text()
    tests = readme.split("## Tests", 1)[1].split("\n## ", 1)[0]
    assert "NBART_IMAGES" in tests and "tests/test_quality.py" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert "[ -d ../shared/images ]" in ci and 'export NBART_IMAGES="$(cd ../shared/images && pwd)"' in ci
    assert ci.index("NBART_IMAGES") < ci.index("pytest")  # set before the tests run
