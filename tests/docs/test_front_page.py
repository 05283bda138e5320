"""The README is a front page: short, with the diagram and the two commands first; every page defines each shell
variable its examples use, and every relative link resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "SECURITY.md", ROOT / "CHANGELOG.md"]
SHELL_BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)
# Set by the shell or by the command itself, not by the reader.
NOT_THE_READERS = {"PATH", "HOME"}


def test_the_readme_is_a_front_page_with_the_diagram_and_the_two_commands_first():
    text = README.read_text()
    assert len(text.encode()) < 12_000
    assert "```mermaid" in text
    first_block = SHELL_BLOCK.search(text)
    assert first_block and re.findall(r"^scripts/\w+", first_block.group(1), re.MULTILINE) == [
        "scripts/run",
        "scripts/test",
    ]
    for page in ("operating", "inventory", "settings", "local-cloud", "benchmarks", "architecture"):
        assert f"(docs/{page}.md)" in text, page
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_every_shell_variable_an_example_uses_is_defined_on_its_page():
    for page in PAGES:
        blocks = "\n".join(SHELL_BLOCK.findall(page.read_text()))
        used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", blocks)) - NOT_THE_READERS
        defined = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", blocks, re.MULTILINE))
        defined |= set(re.findall(r"\b([A-Z][A-Z0-9_]*)=\$\(", blocks))
        assert used <= defined, f"{page.name}: {sorted(used - defined)} used but never set"


def test_every_relative_link_resolves():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name}: {target}"
