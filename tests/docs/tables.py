"""Reading the Markdown tables of docs/ and the README, for the tests that keep them in step with the code."""

from __future__ import annotations

from pathlib import Path


def rows(path: Path, first_header: str) -> list[list[str]]:
    """The body rows (cells stripped) of every table in `path` whose first header cell is `first_header`."""
    found: list[list[str]] = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        cells = split(line)
        if not cells or cells[0] != first_header or i + 1 >= len(lines) or not set(lines[i + 1]) <= set("|-: "):
            continue
        for body in lines[i + 2 :]:
            if not body.startswith("|"):
                break
            found.append(split(body))
    return found


def split(line: str) -> list[str]:
    """A table row's cells; an escaped pipe (`\\|`) stays inside its cell."""
    if not line.startswith("|"):
        return []
    cells, cell, escaped = [], "", False
    for char in line.strip()[1:]:
        if char == "|" and not escaped:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += char
        escaped = char == "\\"
    return cells
