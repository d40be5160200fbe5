"""Random MLPs with Gaussian input: the forward-activation-model testbed (DESIGN.md section 5).

Layer conventions (WhestBench's, row vectors):

    x_0 ~ N(0, I_n),   h_l = x_{l-1} @ W_l   (pre-activation),   x_l = phi(h_l),   l = 1..L

Every ``W_l`` is ``(n, n)``; there are no biases. ``L = depth`` counts weight matrices, and
the last layer is also followed by ``phi`` (as in WhestBench, whose targets are the
post-activation means ``E[x_l]`` of every layer). ``pre_L`` in the rare-event problems
means ``h_L``.

Initialisations (entries i.i.d. ``N(0, sigma_w^2 / n)``):

* ``"he"``: ``sigma_w^2 = 2`` (He et al. 2015), WhestBench's law;
* ``"critical"``: ``sigma_w^2 = 1 / E_{z~N(0,1)}[phi(z)^2]``, the weight variance for which
  unit pre-activation variance is a fixed point of the length map
  ``q -> sigma_w^2 E[phi(sqrt(q) z)^2]`` (Poole et al. 2016). For ReLU it equals He.

:meth:`RandomMLP.whestbench` reproduces ``whestbench.generation.sample_mlp`` bit for bit
(``standard_normal((n, n)) * sqrt(2/n)`` cast to float32, one draw per layer, from
``numpy.random.default_rng(seed)``); a test checks it against WhestBench itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from lowprob._validation import as_generator, check_finite_array, check_int
from lowprob.array_backends import NUMPY, gauss_hermite_rule
from lowprob.array_kernels.activations import GELU, RELU, TANH, Activation
from lowprob.errors import InputTypeError, InputValueError
from lowprob.registry import Registry

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "RandomMLP",
    "activation_function",
    "check_activation",
    "critical_weight_variance",
    "get_activation",
]


#: name -> :class:`~lowprob.array_kernels.activations.Activation`, registered once.
ACTIVATIONS: Registry[Activation] = Registry("activation")
for _act in (RELU, GELU, TANH):
    ACTIVATIONS.add(_act.name, _act)

#: Supported initialisations.
INITS: tuple[str, ...] = ("he", "critical")


def check_activation(activation: object) -> str:
    """Validate an activation (a registered name or :class:`Activation`) and return its name."""
    return get_activation(activation).name


def get_activation(activation: object) -> Activation:
    """The registered :class:`Activation` for a name (case-insensitive) or an instance."""
    if isinstance(activation, Activation):
        return activation
    if not isinstance(activation, str):
        raise InputTypeError(
            f"activation must be a string, one of {sorted(ACTIVATIONS.keys())!r}, got "
            f"{activation!r}."
        )
    key = activation.lower()
    if key not in ACTIVATIONS:
        raise InputValueError(
            f"unknown activation {activation!r}; supported: {sorted(ACTIVATIONS.keys())!r}."
        )
    return ACTIVATIONS.get(key)


def activation_function(activation: object) -> Callable[[np.ndarray], np.ndarray]:
    """The numpy function ``phi`` of a (validated) activation."""
    return partial(get_activation(activation).forward, backend=NUMPY)


def critical_weight_variance(activation: object, *, n_nodes: int = 80) -> float:
    """``sigma_w^2 = 1 / E_{z~N(0,1)}[phi(z)^2]`` (closed form when the activation has one)."""
    act = get_activation(activation)
    if act.critical_variance is not None:
        return float(act.critical_variance)
    z, w = gauss_hermite_rule(n_nodes)
    second = float(np.sum(w * act.forward(z, NUMPY) ** 2))
    return 1.0 / second


@dataclass(frozen=True)
class RandomMLP:
    """A bias-free MLP ``x_l = phi(x_{l-1} @ W_l)`` with input ``x_0 ~ N(0, I_n)``.

    Attributes:
        weights: ``L`` float arrays of shape ``(n, n)`` (row-vector convention).
        activation: ``"relu"``, ``"gelu"`` or ``"tanh"``.
        init: how the weights were drawn (``"he"``, ``"critical"``, ``"whestbench"`` or
            ``"given"``); informational.
    """

    weights: tuple[np.ndarray, ...]
    activation: str = "relu"
    init: str = "given"

    def __post_init__(self) -> None:
        act = check_activation(self.activation)
        object.__setattr__(self, "activation", act)
        if isinstance(self.weights, np.ndarray) or not isinstance(self.weights, Sequence):
            if isinstance(self.weights, np.ndarray) and self.weights.ndim == 3:
                object.__setattr__(self, "weights", tuple(self.weights))
            else:
                raise InputTypeError(
                    "weights must be a sequence of (n, n) arrays or an (L, n, n) array, got "
                    f"{type(self.weights).__name__}."
                )
        ws = tuple(self.weights)
        if len(ws) < 1:
            raise InputValueError("weights must hold at least one (n, n) matrix (depth >= 1), got 0.")
        first = np.asarray(ws[0])
        n = first.shape[0] if first.ndim == 2 else -1
        if n < 1:
            raise InputValueError(f"weights[0] must be a non-empty (n, n) matrix, got shape {first.shape!r}.")
        checked = []
        for i, w in enumerate(ws):
            arr = np.asarray(w)
            dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64
            checked.append(check_finite_array(f"weights[{i}]", arr, shape=(n, n), dtype=dtype))
        object.__setattr__(self, "weights", tuple(checked))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def sample(
        cls,
        width: int,
        depth: int,
        activation: str = "relu",
        *,
        init: str = "he",
        seed: Any = None,
        dtype: type = np.float64,
    ) -> RandomMLP:
        """Draw ``W_l`` with i.i.d. ``N(0, sigma_w^2 / n)`` entries (see module docstring)."""
        n = check_int("width", width, minimum=1)
        L = check_int("depth", depth, minimum=1)
        act = check_activation(activation)
        if init not in INITS:
            raise InputValueError(f"unknown init {init!r}; supported: {list(INITS)!r}.")
        rng = as_generator(seed)
        var = 2.0 if init == "he" else critical_weight_variance(act)
        scale = math.sqrt(var / n)
        ws = tuple((rng.standard_normal((n, n)) * scale).astype(dtype) for _ in range(L))
        return cls(ws, act, init)

    @classmethod
    def whestbench(cls, width: int, depth: int, *, seed: Any = None) -> RandomMLP:
        """WhestBench's MLP law, bit-identical to ``whestbench.generation.sample_mlp``.

        ``sample_mlp(width, depth, flopscope.numpy.random.default_rng(s))`` and
        ``RandomMLP.whestbench(width, depth, seed=s)`` give the same float32 weights.
        """
        n = check_int("width", width, minimum=1)
        L = check_int("depth", depth, minimum=1)
        rng = as_generator(seed)
        scale = float(np.sqrt(2.0 / n))
        ws = tuple((rng.standard_normal((n, n)) * scale).astype(np.float32) for _ in range(L))
        return cls(ws, "relu", "whestbench")

    @classmethod
    def from_whestbench(cls, mlp: Any) -> RandomMLP:
        """Wrap a ``whestbench.domain.MLP`` (ReLU, float32 weights; no copy of semantics)."""
        ws = tuple(np.asarray(w, dtype=np.float32) for w in mlp.weights)
        return cls(ws, "relu", "whestbench")

    def to_whestbench(self, *, seed: int = 0) -> Any:
        """Convert to a ``whestbench.domain.MLP`` (needs the ``lowprob[whestbench]`` extra)."""
        if get_activation(self.activation) is not RELU:
            raise InputValueError(
                f"WhestBench MLPs are ReLU only; this MLP uses activation {self.activation!r}."
            )
        try:
            import flopscope.numpy as fnp
            from whestbench.domain import MLP
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ImportError(
                "to_whestbench needs the optional extra: pip install 'lowprob[whestbench]'"
            ) from exc
        ws = [fnp.array(np.asarray(w, dtype=np.float32)) for w in self.weights]
        mlp = MLP(width=self.width, depth=self.depth, weights=ws, seed=int(seed))
        mlp.validate()
        return mlp

    # ------------------------------------------------------------------ properties
    @property
    def width(self) -> int:
        return int(self.weights[0].shape[0])

    @property
    def depth(self) -> int:
        return len(self.weights)

    @property
    def phi(self) -> Callable[[np.ndarray], np.ndarray]:
        return activation_function(self.activation)

    # ------------------------------------------------------------------ forward
    def forward(self, x: object, *, return_pre: bool = False) -> list[np.ndarray]:
        """Run ``x`` of shape ``(N, n)`` through the net.

        Returns the ``L`` post-activations ``[x_1, ..., x_L]`` (each ``(N, n)``), or the
        pre-activations ``[h_1, ..., h_L]`` with ``return_pre=True``.
        """
        x = check_finite_array("x", x, shape=(None, self.width))
        out = []
        for w in self.weights:
            h = x @ w
            x = self.phi(h)
            out.append(h if return_pre else x)
        return out

    def sample_inputs(self, n_samples: int, *, seed: Any = None) -> np.ndarray:
        """``n_samples`` i.i.d. ``N(0, I_n)`` inputs, float64, shape ``(n_samples, n)``."""
        N = check_int("n_samples", n_samples, minimum=1)
        return as_generator(seed).standard_normal((N, self.width))
