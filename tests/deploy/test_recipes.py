"""The product spec's container recipes exist in the justfile, take ``ENV=…`` as written in the
spec, and refuse to run a deployment without its filled-in env file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ("docker-build-env", "docker-run-env", "docker-logs", "docker-stop", "stack-up", "stack-down")


def _just(cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    just = shutil.which("just", path=str(Path(sys.executable).parent)) or shutil.which("just")
    if just is None:
        pytest.skip("just is not installed (the rust-just dev dependency: uv sync)")
    return subprocess.run(
        [just, "--justfile", str(cwd / "justfile"), "--working-directory", str(cwd), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The justfile and the env templates, in a folder with no .env file."""
    shutil.copy(ROOT / "justfile", tmp_path / "justfile")
    shutil.copytree(ROOT / "deploy" / "env", tmp_path / "deploy" / "env")
    return tmp_path


def test_the_spec_recipes_exist() -> None:
    summary = _just(ROOT, "--summary").stdout.split()

    assert set(RECIPES) <= set(summary)


@pytest.mark.parametrize("recipe", RECIPES)
def test_each_recipe_takes_env_as_the_spec_writes_it(checkout: Path, recipe: str) -> None:
    (checkout / ".env.production").write_text("APP_ENV=production\n")

    dry_run = _just(checkout, "--dry-run", recipe, "ENV=production")

    assert dry_run.returncode == 0, dry_run.stderr
    assert "docker compose --env-file .env.production " in dry_run.stderr


def test_a_deployment_without_its_env_file_is_refused(checkout: Path) -> None:
    result = _just(checkout, "stack-up", "ENV=production")

    assert result.returncode != 0
    assert "cp deploy/env/.env.production .env.production" in result.stderr
    assert "docker compose" not in result.stderr


def test_development_gets_its_env_file_from_the_template(checkout: Path) -> None:
    result = _just(checkout, "_env-file", "ENV=development")

    assert result.returncode == 0, result.stderr
    assert (checkout / ".env.development").read_text() == (ROOT / "deploy/env/.env.development").read_text()
