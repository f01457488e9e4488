"""Errors shared by every problem's loaders and envs."""

from __future__ import annotations


class InstanceFormatError(ValueError):
    """An instance file could not be parsed.

    The message names the file, the 1-based line and what to change, so a CLI can print it as one line.
    """

    def __init__(self, path: str, line: int | None, problem: str, fix: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        self.fix = fix
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {problem}. Fix: {fix}")
