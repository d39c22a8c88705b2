"""Zero-cost proxies: a genome's promise scored from one minibatch at initialisation, without
training (Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS").

A proxy is a function ``(model, x, y) -> float`` on a freshly compiled model and one minibatch
of the training split; larger always means predicted better. It may change the model (synflow
takes the absolute value of every weight): :func:`score` compiles a new one for each call. The
built-ins follow the reference implementation of Abdelfattah et al. (``foresight``): the model
in training mode (batch norm on batch statistics) except for synflow, the Conv2d and Linear
layers' weights as "the parameters", per-layer values summed.

:func:`score` compiles the genome with a seed (the weights the candidate with that seed trains
from), runs the proxy on the CPU with PyTorch's generators seeded and restored afterwards
(dropout draws, deterministic for a seed), and turns an error or a value that is not finite into
a recorded failure instead of raising.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from genomics import Genome

from .compiler import ACTIVATION_FUNCTIONS, compile_genome
from .data import Dataset

Proxy = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]


def _layers(model: nn.Module) -> list[nn.Module]:
    """The layers whose weights the proxies measure, as in ``foresight``: convolutions and
    dense layers (the pattern-binarized convolution is a Conv2d)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _loss_backward(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    model.train()
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum of |w * dR/dw| for an all-ones input, every parameter made positive. Synaptic flow
    (Tanaka et al. 2020), R the summed outputs; larger: more signal flows through the weights,
    which grows with their number.

    As in ``foresight``: batch norm removed (identity), double precision against overflow; also
    dropout off (evaluation mode), so that the score is the weights' alone. The data are not
    used, only their shape."""
    for name, module in list(model.named_modules()):
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent), attr, nn.Identity())
    model.double().eval()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.abs_()
    model.zero_grad()
    model(torch.ones((1, *x.shape[1:]), dtype=torch.float64)).sum().backward()
    total = torch.zeros((), dtype=torch.float64)
    for layer in _layers(model):
        if layer.weight.grad is not None:
            total += (layer.weight * layer.weight.grad).abs().sum()
    return total.item()


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum of |w * dL/dw|, L the cross-entropy of the minibatch. SNIP's saliency (Lee et al.
    2019: the gradient of L with respect to a mask of ones on each weight, as ``foresight``
    computes it); larger: the loss is more sensitive to the weights."""
    _loss_backward(model, x, y)
    return sum(
        (layer.weight * layer.weight.grad).abs().sum().item()
        for layer in _layers(model)
        if layer.weight.grad is not None
    )


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over the layers of the norm of dL/dw on the minibatch. L is the cross-entropy;
    larger: bigger gradients (``foresight``'s sign)."""
    _loss_backward(model, x, y)
    return sum(
        layer.weight.grad.norm().item() for layer in _layers(model) if layer.weight.grad is not None
    )


def jacob_cov(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """How little the minibatch's input gradients correlate. Jacobian covariance (Mellor et al.
    2020, the first NASWOT score): ``-sum(log(v + k) + 1 / (v + k))`` over the eigenvalues v of
    the correlation matrix of the images' gradients of the summed outputs, k = 1e-5; larger:
    the network tells the images apart."""
    model.train()
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    out = model(x)
    out.backward(torch.ones_like(out))
    jacobian = x.grad.reshape(len(x), -1).double().numpy()
    with np.errstate(invalid="raise", divide="raise"):
        corr = np.corrcoef(jacobian)
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


class _ActivationCodes(fx.Interpreter):
    """Runs a compiled genome, keeping for every activation which of its inputs are positive
    (for ReLU, which units are on)."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.codes: list[torch.Tensor] = []
        self._activations = set(ACTIVATION_FUNCTIONS.values())

    def call_function(self, target, args, kwargs):
        if target in self._activations:
            self.codes.append((args[0] > 0).flatten(1))
        return super().call_function(target, args, kwargs)


def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """How distinct the minibatch's activation patterns are (log-determinant). NASWOT (Mellor
    et al. 2021): log|K|, K[i, j] the activation units on which images i and j agree (both on
    or both off; on: a positive activation input); larger: the images fall in more distinct
    linear regions."""
    if not isinstance(model, fx.GraphModule):
        raise TypeError("naswot needs a compiled genome (a torch.fx GraphModule)")
    model.train()
    codes = _ActivationCodes(model)
    with torch.no_grad():
        codes.run(x)
    if not codes.codes:
        raise ValueError("no activation to read codes from")
    c = torch.cat(codes.codes, dim=1).double()
    kernel = c @ c.T + (1 - c) @ (1 - c).T
    sign, logdet = torch.linalg.slogdet(kernel)
    if sign <= 0:
        raise ValueError("the activation codes of the minibatch are not independent")
    return logdet.item()


#: ecogen's proxies by name (``runner.proxies`` adds ``ecogen.proxies`` entry points).
BUILTIN: dict[str, Proxy] = {
    "synflow": synflow,
    "snip": snip,
    "grad_norm": grad_norm,
    "jacob_cov": jacob_cov,
    "naswot": naswot,
}


@attrs.frozen
class ProxyScore:
    """A proxy's score of one genome: ``value``, or None with the ``failure`` that stopped
    it (one line)."""

    proxy: str
    value: float | None
    failure: str = ""

    @property
    def ok(self) -> bool:
        return self.value is not None


def minibatch(data: Dataset, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``size`` images of ``data``'s training split (all of them when fewer), drawn with
    ``seed``, on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(data.y_train), generator=generator)[:size]
    return data.x_train[index].cpu(), data.y_train[index].cpu()


def score(
    genome: Genome, proxy: Proxy, x: torch.Tensor, y: torch.Tensor, seed: int, name: str = ""
) -> ProxyScore:
    """``proxy`` of ``genome`` compiled with ``seed``, on ``(x, y)``; never raises for the
    genome or the proxy: an exception or a value that is not finite is a failure."""
    name = name or getattr(proxy, "__name__", "proxy")
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = compile_genome(genome, seed=seed)
            value = float(proxy(model, x, y))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        return ProxyScore(name, None, f"{type(exc).__name__}: {first}".rstrip(": "))
    if not np.isfinite(value):
        return ProxyScore(name, None, f"not a finite score: {value}")
    return ProxyScore(name, value)
