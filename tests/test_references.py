"""Help texts, docs and recipes name only files that exist, and state one figure per fact."""

from __future__ import annotations

import re
from pathlib import Path

from mme.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
CONFIG_PATH = re.compile(r"configs/[\w/.\-]+\.ya?ml")


def _texts() -> dict[str, str]:
    texts = {str(p.relative_to(REPO)): p.read_text(encoding="utf-8") for p in REPO.glob("docs/*.md")}
    texts["README.md"] = (REPO / "README.md").read_text(encoding="utf-8")
    for path in (REPO / "configs").rglob("*.yaml"):
        texts[str(path.relative_to(REPO))] = path.read_text(encoding="utf-8")
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps sub-parsers here
    for name, command in commands.items():
        texts[f"mme {name} --help"] = command.format_help()
    return texts


def test_every_cited_recipe_exists() -> None:
    missing = [
        f"{where}: {match}"
        for where, text in _texts().items()
        for match in CONFIG_PATH.findall(text)
        if not (REPO / match).is_file()
    ]
    assert not missing, "cited recipes that do not exist:\n" + "\n".join(missing)


def test_quick_demo_duration_is_stated_the_same_everywhere() -> None:
    """`mme demo --help` (docstring and option) and docs/demo.md give one duration for --quick."""
    texts = _texts()
    claims = set()
    for where in ("mme demo --help", "docs/demo.md"):
        for paragraph in re.split(r"\n\s*\n", texts[where]):
            if "--quick" in paragraph:
                flat = " ".join(paragraph.split())
                claims |= set(re.findall(r"~\d+ s|under (?:a|\d+) minutes?|\b\d+ s\b", flat))
    assert claims == {"~10 s"}, claims
