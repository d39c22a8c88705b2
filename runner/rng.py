"""Random-generator state: seeding a new run, capturing every generator for a checkpoint and
restoring it on resume, per-candidate seeds, and PyTorch's generators forked around a training.

A checkpoint holds the engine's own ``random.Random`` (mutations), the global ``random``,
NumPy's and PyTorch's generators (CUDA's too when present), all as JSON.
"""

from __future__ import annotations

import base64
import contextlib
import random
import zlib
from typing import Any

import numpy as np


def seed_for(seed: int, individual_id: str) -> int:
    """A candidate's training seed, fixed by the run seed and its id: a re-created candidate
    (after a resume, on any worker) trains exactly as the first attempt did."""
    return zlib.crc32(f"{seed}:{individual_id}".encode())


def to_json(state: tuple) -> list:
    """A ``random.Random`` state as JSON-ready values."""
    version, internal, gauss = state
    return [version, list(internal), gauss]


def from_json(state: list) -> tuple:
    """The inverse of :func:`to_json`."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def seed_all(seed: int) -> None:
    """Seed the global generators a new run starts with, so that code drawing from them (a
    plugin's, say) repeats too; checkpoints save them and a resume restores them."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture(engine: random.Random) -> dict[str, Any]:
    """Every generator's state: ``engine`` (the run's own), ``python``, ``numpy``, ``torch``
    and, with CUDA, ``cuda``."""
    import torch

    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    states = {
        "engine": to_json(engine.getstate()),
        "python": to_json(random.getstate()),
        "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
        "torch": _encode(torch.get_rng_state()),
    }
    if torch.cuda.is_available():
        states["cuda"] = [_encode(s) for s in torch.cuda.get_rng_state_all()]
    return states


def restore(states: dict[str, Any], engine: random.Random) -> None:
    """Put every generator back as :func:`capture` found it (CUDA's only on a machine with as
    many GPUs)."""
    import torch

    engine.setstate(from_json(states["engine"]))
    random.setstate(from_json(states["python"]))
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(_decode(states["torch"]))
    if "cuda" in states and torch.cuda.is_available():
        cuda = [_decode(s) for s in states["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def forked(device: str) -> contextlib.AbstractContextManager:
    """PyTorch's global generators (the CPU's, and ``device``'s when it is a GPU) restored on
    leaving, whatever happened inside: a resumed run skips the trainings it takes from the
    store, and must leave those generators where the run never stopped would have."""
    import torch

    import phenotypes as ph

    target = ph.resolve_device(device)
    if target.type != "cuda":
        return torch.random.fork_rng(devices=[])
    index = target.index if target.index is not None else torch.cuda.current_device()
    return torch.random.fork_rng(devices=[index])


def _encode(state: Any) -> str:
    return base64.b64encode(state.numpy().tobytes()).decode()


def _decode(text: str) -> Any:
    import torch

    return torch.from_numpy(np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy())
