"""The leaderboard's append-only results file: one JSON row per line, flushed to disk as each row is made.

A run that is killed loses at most the row being written; ``schedgym bench --resume`` reads the file back and runs
only the (instance, solver) pairs it does not hold yet.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from schedgym.atomic import atomic_write_text

RowKey = tuple[str, str, str, str]  # (problem, suite, instance, solver)


def row_key(row: dict) -> RowKey:
    return (row["problem"], row["suite"], row["instance"], row["solver"])


class RowsFile:
    """``path`` holds one leaderboard row per line (JSON), in the order the rows were finished."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def read(self) -> list[dict]:
        """Every complete row in the file; a last line cut short by a kill is dropped from the file itself, so
        that appending goes on from a clean line end.

        Raises:
            ValueError: if a line other than the last is not a JSON row (the file is not a rows file).
        """
        if not self.path.exists():
            return []
        lines = self.path.read_text().splitlines(keepends=True)
        rows = []
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
                row_key(row)
            except (json.JSONDecodeError, KeyError, TypeError):
                if number == len(lines):  # the row being written when the run was killed
                    atomic_write_text(self.path, "".join(lines[:-1]))
                    break
                raise ValueError(f"{self.path}:{number} is not a leaderboard row; pass another --rows file or delete this one") from None
            rows.append(row)
        return rows

    def start_fresh(self) -> None:
        """An empty file (a run without ``--resume`` replaces the rows of the last one)."""
        atomic_write_text(self.path, "")

    def append(self, row: dict) -> None:
        """Write ``row`` as one line and push it to the disk before returning."""
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
