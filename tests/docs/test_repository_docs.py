"""The repository's documentation stands on its own.

``docs/api.md`` is the user-facing copy of the project's binding HTTP contract, which lives
outside the repository (``../shared/API.md``). The copy may gain sections, never drop or
change a line of the contract; README links only to files inside the repository, so a
clone of the repository alone has no dead links.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPOSITORY = Path(__file__).resolve().parents[2]
CONTRACT_COPY = REPOSITORY / "docs" / "api.md"
BINDING_CONTRACT = REPOSITORY.parent / "shared" / "API.md"
README = REPOSITORY / "README.md"
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _first_line_missing_in_order(required: list[str], found: list[str]) -> tuple[int, str] | None:
    """The first ``(number, line)`` of ``required`` that ``found`` lacks after the previous ones."""
    remaining = iter(found)
    for number, line in enumerate(required, start=1):
        if not any(candidate == line for candidate in remaining):
            return number, line
    return None


def test_first_line_missing_in_order_finds_dropped_changed_and_reordered_lines() -> None:
    contract = ["# API", "", "- GET /a", "- GET /b"]

    assert _first_line_missing_in_order(contract, ["> copy", *contract, "## More"]) is None
    assert _first_line_missing_in_order(contract, ["# API", "", "- GET /b"]) == (3, "- GET /a")
    assert _first_line_missing_in_order(contract, ["# API", "", "- GET /a", "- GET /b!"]) == (4, "- GET /b")
    assert _first_line_missing_in_order(contract, ["# API", "", "- GET /b", "- GET /a"]) == (4, "- GET /b")


def test_docs_api_md_keeps_every_line_of_the_binding_contract_in_order() -> None:
    if not BINDING_CONTRACT.is_file():
        pytest.skip(
            f"no binding contract at {BINDING_CONTRACT}: this repository was cloned without the "
            "project's shared/ folder beside it, so docs/api.md has nothing to be checked against"
        )

    missing = _first_line_missing_in_order(_lines(BINDING_CONTRACT), _lines(CONTRACT_COPY))

    assert missing is None, (
        f"docs/api.md drops or changes line {missing[0]} of {BINDING_CONTRACT} "
        f"(or moves it before an earlier one): {missing[1]!r}"
    )


def test_readme_links_only_to_files_inside_the_repository() -> None:
    readme = README.read_text(encoding="utf-8")
    targets = [link for link in MARKDOWN_LINK.findall(readme) if not re.match(r"[a-z]+://", link)]

    assert "](../" not in readme
    assert "docs/api.md" in targets
    for target in targets:
        path = (REPOSITORY / target.split("#")[0]).resolve()
        assert path.is_relative_to(REPOSITORY), target
        assert path.exists(), target
