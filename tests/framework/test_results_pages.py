"""Every number in docs/results comes from a committed results file through `framework experiment report`: the
report command, run on a copy of each committed experiment directory, writes the committed report.md, summary.json
and the block embedded in the plugin's results page byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from framework.experiments.report import write_report

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMMITTED = sorted(p.parent for p in (DOCS / "results").glob("*/*/report.md"))  # reported experiments


def _page(result_dir: Path) -> Path:
    """The results page that embeds this experiment (its marker and links to its directory)."""
    name, link = result_dir.name, f"{result_dir.parent.name}/{result_dir.name}/"
    pages = [p for p in (DOCS / "results").glob("*.md") if f"<!-- experiment:{name} -->" in p.read_text()]
    (page,) = [p for p in pages if link in p.read_text()]
    return page


def _block(text: str, name: str) -> str:
    return text.split(f"<!-- experiment:{name} -->", 1)[1].split(f"<!-- /experiment:{name} -->", 1)[0]


def test_a_page_embeds_numbers_only_of_committed_experiments():
    assert len(COMMITTED) >= 15
    for page in (DOCS / "results").glob("*.md"):
        text = page.read_text()
        for name in [line.split(":", 1)[1].rstrip(" ->") for line in text.splitlines()
                     if line.startswith("<!-- experiment:")]:  # fmt: skip
            if not any(d.name == name for d in COMMITTED):  # not run yet: its block must stay empty
                assert not _block(text, name).strip(), f"{page.name} embeds {name} without committed results"


@pytest.mark.parametrize("committed", COMMITTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_report_command_regenerates_the_committed_numbers(committed: Path, tmp_path: Path) -> None:
    page = _page(committed)
    docs = tmp_path / "docs" / "results"
    out = docs / committed.parent.name / committed.name
    shutil.copytree(committed, out)
    shutil.copy(page, docs / page.name)
    write_report(out, docs / page.name, figures=False)
    assert (out / "report.md").read_text() == (committed / "report.md").read_text()
    assert json.loads((out / "summary.json").read_text()) == json.loads((committed / "summary.json").read_text())
    assert _block((docs / page.name).read_text(), committed.name) == _block(page.read_text(), committed.name)
