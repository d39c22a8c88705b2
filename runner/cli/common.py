"""What the commands share: reading a genome named on the command line, and number formats."""

from __future__ import annotations

from pathlib import Path

from genomics import Genome, GenomeError


def load_genome(spec: str) -> tuple[Genome, str]:
    """A genome from a JSON file path or a zoo name, and a short name for it."""
    import zoo
    from genomics import loads

    path = Path(spec)
    if path.is_file():
        try:
            return loads(read_text(path)), path.stem
        except GenomeError as exc:
            raise GenomeError([f"{path}: {p}" for p in exc.problems]) from None
    if spec in zoo.names():
        return zoo.load(spec), spec
    raise GenomeError(
        f"{spec}: no such genome file, and no zoo genome of that name"
        f" (zoo: {', '.join(zoo.names())})"
    )


def read_text(path: Path) -> str:
    """A genome file's text; GenomeError when it cannot be read as text."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise GenomeError("not UTF-8 text (is it a genome JSON file?)") from None
    except OSError as exc:
        raise GenomeError(f"cannot read ({exc.strerror})") from None


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_size(n: int) -> str:
    """Bytes as people read them: KiB below a MiB, MiB (two decimals) above."""
    return f"{n / 1024:,.1f} KiB" if n < 1024**2 else f"{n / 1024**2:,.2f} MiB"
