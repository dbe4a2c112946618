"""Reading the rich tables `plan`, `status` and `history` print, as a reader does."""

from __future__ import annotations


def table(output: str) -> dict[str, dict[str, str]]:
    """A rich table's rows by their first cell, each cell's wrapped lines joined."""
    lines = [line.split("│")[1:-1] for line in output.splitlines() if line.startswith("│")]
    header = next(line for line in output.splitlines() if line.startswith("┃"))
    names = [name.strip() for name in header.split("┃")[1:-1]]
    rows: list[list[str]] = []
    for cells in lines:
        if cells[0].strip() or not rows:
            rows.append([c.strip() for c in cells])
        else:
            rows[-1] = [f"{a} {b.strip()}".strip() for a, b in zip(rows[-1], cells, strict=True)]
    return {row[0]: dict(zip(names, row, strict=True)) for row in rows}
