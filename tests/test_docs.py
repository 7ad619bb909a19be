"""The README is a manual that stays true: short, every file it names exists, every command
it shows parses, every example spec it names validates."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from runner.cli import _parser, main
from tests.conftest import ROOT

MANUALS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
#: A path in backticks or a link: a folder of the repository, then a file with an extension
#: (data/ and results/ hold what commands write, not files the repository ships).
PATH = re.compile(r"(?<![\w/.<])((?:specs|runner|registry|tests|bench|docs|\.ci)/[\w./-]+\.(?:py|md|yaml|json|csv))")


def _console_commands(text: str) -> list[str]:
    """The ``runner`` lines of the ```console blocks, comments and prompts taken off."""
    lines = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = re.sub(r"\s*\[[^]]*\]", "", line.removeprefix("$ ").split("  #")[0]).strip()  # options in brackets
            if line.startswith("runner "):
                lines.append(line)
    return lines


def _inline_commands(text: str) -> list[str]:
    """Inline ``runner ...`` spans without placeholders (``SPEC``, ``[...]``, ``<...>``)."""
    return [span for span in re.findall(r"`(runner [^`]+)`", text) if not re.search(r"[\[<|]|\bSPEC\b|RUN_ID|\.\.\.", span)]


def commands_of(parser: argparse.ArgumentParser) -> set[str]:
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(subparsers.choices)


def test_the_readme_is_a_manual_of_at_most_450_lines() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 450


@pytest.mark.parametrize("manual", MANUALS, ids=lambda p: p.name)
def test_every_file_a_manual_names_exists(manual: Path) -> None:
    named = set(PATH.findall(manual.read_text()))
    # ``X``, ``x`` and ``<name>`` stand for any spec; runner/-relative paths (docs/internals.md) resolve there too.
    missing = [
        p for p in sorted(named) if not re.search(r"/(X|x)\.|<", p) and not (ROOT / p).exists() and not (ROOT / "runner" / p).exists()
    ]
    assert missing == []


def test_internals_table_paths_resolve() -> None:
    """The "where to change what" table names files relative to the repository or to runner/."""
    text = (ROOT / "docs" / "internals.md").read_text()
    table = text[text.index("## Where to change what") :]
    named = set(re.findall(r"`((?:registry|runner|spec|training|tracking|runs|results|search|data|runtime)/[\w*./]+\.py)", table))
    assert named, "the table names no file"
    for path in named:
        found = list(ROOT.glob(path)) or list((ROOT / "runner").glob(path))
        assert found, f"{path}: no such file"


def test_every_runner_command_the_readme_shows_parses(capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser()
    text = (ROOT / "README.md").read_text()
    shown, named = _console_commands(text), _inline_commands(text)
    assert len(shown) >= 5 and len(named) >= 10
    for line in shown + named:
        words = shlex.split(line.replace("...", "x"))[1:]
        try:
            parser.parse_args(words)
        except SystemExit as error:
            # A command named in a sentence (`runner data add`) need not carry its arguments.
            incomplete = line in named and len(words) <= 2
            if not incomplete:
                raise AssertionError(f"README shows `{line}`, which runner does not take") from error
            with pytest.raises(SystemExit) as helped:
                parser.parse_args([*words, "--help"])
            assert helped.value.code == 0, f"README names `{line}`, which runner does not have"
    capsys.readouterr()


def test_every_spec_the_readme_names_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    specs = sorted({p for p in PATH.findall((ROOT / "README.md").read_text()) if p.startswith("specs/") and (ROOT / p).exists()})
    assert specs
    assert main(["validate", *(str(ROOT / p) for p in specs)]) == 0, capsys.readouterr().err


def test_component_descriptions_cite_sources_a_reader_can_find(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """No line numbers of the project's text files (``004:213``, ``003 6.3``, ``catalog E9``)."""
    monkeypatch.setenv("COLUMNS", "400")
    assert main(["list"]) == 0
    shown = capsys.readouterr().out
    assert "Liquet et al." in shown and "Lal, Notes on ML and Neural Networks" in shown
    assert re.findall(r"\b00\d[: ]\d+|\bcatalog\b|\bE\d+\b", shown) == []
    specs = "\n".join(p.read_text() for p in sorted((ROOT / "specs").rglob("*.yaml")))
    assert re.findall(r"\b00\d:\d+|\bcatalog E\d+", specs) == []
