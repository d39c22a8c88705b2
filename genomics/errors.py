"""The one exception type of the genome model."""

from __future__ import annotations


class GenomeError(ValueError):
    """A genome or genome document is invalid.

    ``problems`` lists every problem found, each as ``"path: message"`` (``nodes[3].kernel: must be
    odd, got 4``); ``str(error)`` is the first one, so a single line always names the place.
    """

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(self.problems[0] if self.problems else "invalid genome")

    def prefixed(self, prefix: str) -> GenomeError:
        """The same problems, located under ``prefix`` (``nodes[3]`` + ``kernel: ...``)."""
        return GenomeError([_join(prefix, p) for p in self.problems])


def _join(prefix: str, problem: str) -> str:
    if not prefix:
        return problem
    # "[2]: ..." and ": ..." attach to the prefix itself; "kernel: ..." is a field under it.
    if problem.startswith(("[", ":")):
        return prefix + problem
    return f"{prefix}.{problem}"
