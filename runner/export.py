"""Exporting a trained network for use outside ecogen: ONNX or torch.export's ``.pt2``.

Every export is checked before it is written: the exported program is loaded back (ONNX in
onnxruntime, ``.pt2`` with ``torch.export.load``) and run on a random batch of a size other than
the one it was traced with, and its outputs must match the PyTorch model's (evaluation mode)
within :data:`TOLERANCE`. The batch dimension is dynamic. ONNX needs the ``export`` extra
(onnx, onnxscript, onnxruntime); ``.pt2`` only torch.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ExportError
from .extras import require

FORMATS = ("onnx", "pt2")
#: The largest absolute difference between the exported program's logits and PyTorch's.
TOLERANCE = 1e-4
#: The batch the model is traced with, and those the exported program is checked on.
EXPORT_BATCH = 2
CHECK_BATCHES = (5, 1)


@dataclass(frozen=True)
class Exported:
    path: Path
    format: str
    #: The largest absolute difference over the checked batches.
    max_abs_diff: float
    check_batches: tuple[int, ...]
    runtime: str

    def describe(self) -> str:
        batches = " and ".join(map(str, self.check_batches))
        return (
            f"wrote {self.path} ({self.format}, dynamic batch): largest absolute difference"
            f" {self.max_abs_diff:.2e} from PyTorch on batches of {batches} ({self.runtime})"
        )


def model_file(source: str | os.PathLike) -> Path:
    """The model file ``source`` names: a run directory's ``best/model.pt``, or the file."""
    path = Path(source)
    if path.is_dir():
        best = path / "best" / "model.pt"
        if not best.is_file():
            raise ExportError(
                f"{path}: no best/model.pt here (is it a run directory whose search has"
                " evaluated a candidate?)"
            )
        return best
    if not path.is_file():
        raise ExportError(f"{path}: no such run directory or model file")
    return path


def export_file(
    source: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None, *, seed: int = 0
) -> Exported:
    """Export the model of a run directory or a ``model.pt`` (:func:`phenotypes.save_model`)
    to ``out`` (default: beside the model file, ending in ``.onnx`` or ``.pt2``)."""
    _check_format(fmt)
    if fmt == "onnx":
        require("ecogen export", "export")
    path = model_file(source)
    import phenotypes as ph

    try:
        genome, model = ph.load_model(path)
    except Exception as exc:
        raise ExportError(f"{path}: cannot load the model ({_one_line(exc)})") from None
    target = Path(out) if out is not None else path.with_suffix(f".{fmt}")
    return export_model(model, tuple(genome.input_shape), fmt, target, seed=seed)


def export_model(
    model: Any, input_shape: tuple[int, ...], fmt: str, out: str | os.PathLike, *, seed: int = 0
) -> Exported:
    """Export ``model`` (a module taking ``(N, *input_shape)``) in evaluation mode on the CPU,
    check it, and only then write it to ``out``; ExportError when either fails."""
    import torch

    _check_format(fmt)
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"{out}: is a directory; --out names the file to write")
    model = model.cpu().eval()
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(EXPORT_BATCH, *input_shape, generator=generator)
    batches = [torch.randn(n, *input_shape, generator=generator) for n in CHECK_BATCHES]
    with torch.no_grad():
        expected = [model(x) for x in batches]
    dynamic = ({0: torch.export.Dim("batch")},)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name (ending as its format: torch.export insists) and renamed
    # once checked: a failed export leaves nothing behind, an earlier good one stays whole.
    partial = out.with_name(f".{out.name}.partial.{fmt}")
    try:
        if fmt == "onnx":
            outputs, runtime = _onnx(model, example, dynamic, batches, partial)
        else:
            outputs, runtime = _pt2(model, example, dynamic, batches, partial)
        difference = max(
            float((torch.as_tensor(got) - want).abs().max())
            for got, want in zip(outputs, expected, strict=True)
        )
        if not difference <= TOLERANCE:  # NaN fails too
            raise ExportError(
                f"{out}: the {fmt} export computes other outputs than the PyTorch model (largest"
                f" absolute difference {difference:.2e} > {TOLERANCE:g}); not written"
            )
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return Exported(out, fmt, difference, CHECK_BATCHES, runtime)


def _onnx(model, example, dynamic, batches, path: Path) -> tuple[list, str]:
    import onnxruntime
    import torch

    try:
        with _quiet():
            program = torch.onnx.export(
                model, (example,), dynamo=True, dynamic_shapes=dynamic, verbose=False
            )
            program.save(str(path))
    except Exception as exc:
        raise ExportError(f"ONNX export failed: {_one_line(exc)}") from None
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        outputs = [session.run(None, {name: x.numpy()})[0] for x in batches]
    except Exception as exc:
        raise ExportError(f"onnxruntime cannot run the ONNX export: {_one_line(exc)}") from None
    opset = next((o.version for o in program.model_proto.opset_import if o.domain == ""), "?")
    return outputs, f"opset {opset}, onnxruntime {onnxruntime.__version__}"


def _pt2(model, example, dynamic, batches, path: Path) -> tuple[list, str]:
    import torch

    try:
        with _quiet():
            program = torch.export.export(model, (example,), dynamic_shapes=dynamic)
        torch.export.save(program, path)
    except Exception as exc:
        raise ExportError(f"torch.export failed: {_one_line(exc)}") from None
    try:
        loaded = torch.export.load(path).module()
        with torch.no_grad():
            outputs = [loaded(x) for x in batches]
    except Exception as exc:
        raise ExportError(f"the .pt2 export does not load and run: {_one_line(exc)}") from None
    return outputs, f"torch.export.load, torch {torch.__version__}"


@contextlib.contextmanager
def _quiet():
    """The exporters' progress lines and warnings are not the user's business; errors are."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        yield


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
