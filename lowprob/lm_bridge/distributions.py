"""Independent-token input distributions ``D = D_1 x ... x D_T`` over token sequences.

Each position ``i`` is either a constant token or a categorical law ``P(x_i = v) = p_{i,v}``
over a finite token set, independent across positions (Wu & Hilton 2024, arXiv 2410.13211,
section 3). So

    log P(x) = sum_i log p_{i, x_i},

and the law is fully described by the dense ``(T, V)`` matrix ``probs_matrix(V)`` whose
row ``i`` is ``p_{i, .}`` (a one-hot row for a constant position). The model predicts the
token *after* the last position.

JSON format (the CLI contract of ``lowprob lm``; an extra ``"metadata"`` key is allowed)::

    {"positions": [{"token": 50256}, {"tokens": [11, 12], "probs": [0.25, 0.75]}, ...]}
"""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lowprob._validation import check_int, check_probability_vector
from lowprob.errors import InputTypeError, InputValueError

__all__ = ["CategoricalPosition", "ConstantPosition", "Position", "TokenSpec"]


def _check_token(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | np.integer):
        raise InputTypeError(f"{name} must be an integer token id, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if value < 0:
        raise InputValueError(f"{name} must be a non-negative token id, got {value!r}.")
    return value


@dataclass(frozen=True)
class ConstantPosition:
    """A position that always holds ``token``."""

    token: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", _check_token("ConstantPosition.token", self.token))

    @property
    def tokens(self) -> np.ndarray:
        return np.array([self.token], dtype=np.int64)

    @property
    def probs(self) -> np.ndarray:
        return np.ones(1, dtype=np.float64)

    normalized = probs

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token}


@dataclass(frozen=True, eq=False)
class CategoricalPosition:
    """A position with ``P(x_i = tokens[k]) = probs[k]``; tokens distinct, probs sum to 1.

    ``probs`` is stored as given (so JSON round trips and :meth:`TokenSpec.spec_hash` are
    exact); the law used everywhere (sampling, ``log_prob``, ``probs_matrix``) is
    ``probs / probs.sum()``, available as :attr:`normalized`.
    """

    tokens: np.ndarray
    probs: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        raw = np.asarray(self.tokens)
        if raw.ndim != 1 or raw.size == 0:
            raise InputValueError(
                f"CategoricalPosition.tokens must be a non-empty 1-D list of ids, got shape {raw.shape!r}."
            )
        if raw.dtype.kind not in "iu":
            if raw.dtype.kind == "f" and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw)):
                raw = raw.astype(np.int64)
            else:
                raise InputTypeError(
                    f"CategoricalPosition.tokens must be integer token ids, got dtype {raw.dtype} "
                    f"(first entries {raw[:5].tolist()!r})."
                )
        tokens = raw.astype(np.int64)
        if np.any(tokens < 0):
            raise InputValueError(f"CategoricalPosition.tokens has negative ids (min {int(tokens.min())!r}).")
        uniq, counts = np.unique(tokens, return_counts=True)
        if uniq.size != tokens.size:
            dup = uniq[counts > 1][:5].tolist()
            raise InputValueError(
                f"CategoricalPosition.tokens must be distinct; repeated ids {dup!r}. Merge their probabilities."
            )
        probs = check_probability_vector("CategoricalPosition.probs", self.probs)
        if probs.shape != tokens.shape:
            raise InputValueError(
                f"CategoricalPosition.probs has length {probs.size!r} but tokens has {tokens.size!r}."
            )
        probs = probs.copy()
        normalized = probs / probs.sum()
        for arr in (tokens, probs, normalized):
            arr.setflags(write=False)
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "probs", probs)
        object.__setattr__(self, "_normalized", normalized)

    @property
    def normalized(self) -> np.ndarray:
        """``probs / probs.sum()`` (float64), the law actually used."""
        return self._normalized

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CategoricalPosition)
            and np.array_equal(self.tokens, other.tokens)
            and np.array_equal(self.probs, other.probs)
        )

    def __hash__(self) -> int:
        return hash((self.tokens.tobytes(), self.probs.tobytes()))

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens.tolist(), "probs": self.probs.tolist()}


Position = ConstantPosition | CategoricalPosition


def _position_from_json(i: int, obj: object) -> Position:
    if not isinstance(obj, Mapping):
        raise InputTypeError(f"positions[{i}] must be an object, got {obj!r}.")
    if "token" in obj:
        if set(obj) - {"token"}:
            raise InputValueError(f"positions[{i}] has 'token' and other keys {sorted(obj)!r}; use one form.")
        return ConstantPosition(_check_token(f"positions[{i}].token", obj["token"]))
    if "tokens" in obj and "probs" in obj:
        try:
            return CategoricalPosition(np.asarray(obj["tokens"]), np.asarray(obj["probs"], dtype=np.float64))
        except (InputValueError, InputTypeError) as exc:
            raise type(exc)(f"positions[{i}]: {exc}") from exc
    raise InputValueError(
        f"positions[{i}] must be {{'token': ID}} or {{'tokens': [IDs], 'probs': [floats]}}, got keys {sorted(obj)!r}."
    )


class TokenSpec:
    """An independent-token distribution over sequences of length ``T = len(positions)``.

    Args:
        positions: one :class:`ConstantPosition` or :class:`CategoricalPosition` per position.
        metadata: free-form JSON-serialisable information (family, tokenizer, how built);
            not part of :meth:`spec_hash`.
    """

    def __init__(self, positions: Sequence[Position], metadata: Mapping[str, Any] | None = None) -> None:
        if isinstance(positions, str | bytes) or not isinstance(positions, Sequence):
            raise InputTypeError(f"positions must be a sequence of positions, got {type(positions).__name__}.")
        if len(positions) == 0:
            raise InputValueError("positions must be non-empty; a spec needs at least one position.")
        for i, p in enumerate(positions):
            if not isinstance(p, ConstantPosition | CategoricalPosition):
                raise InputTypeError(
                    f"positions[{i}] must be ConstantPosition or CategoricalPosition, got {p!r}."
                )
        self.positions: tuple[Position, ...] = tuple(positions)
        self.metadata: dict[str, Any] = dict(metadata or {})

    # -- basic properties --------------------------------------------------------------
    @property
    def length(self) -> int:
        """Number of positions ``T``."""
        return len(self.positions)

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        kinds = "".join("c" if isinstance(p, ConstantPosition) else "r" for p in self.positions)
        fam = self.metadata.get("family")
        return f"TokenSpec(T={self.length}, layout={kinds!r}{', family=' + repr(fam) if fam else ''})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenSpec) and self.positions == other.positions

    def __hash__(self) -> int:
        return hash(self.positions)

    @property
    def max_token(self) -> int:
        return max(int(p.tokens.max()) for p in self.positions)

    @property
    def random_positions(self) -> list[int]:
        """Indices of the categorical (non-constant) positions."""
        return [i for i, p in enumerate(self.positions) if isinstance(p, CategoricalPosition)]

    def validate_vocab(self, vocab_size: int) -> TokenSpec:
        """Raise if any token id is ``>= vocab_size``; returns ``self`` for chaining."""
        vocab_size = check_int("vocab_size", vocab_size, minimum=1)
        for i, p in enumerate(self.positions):
            bad = p.tokens[p.tokens >= vocab_size]
            if bad.size:
                raise InputValueError(
                    f"positions[{i}] has token ids {bad[:5].tolist()!r} outside the vocabulary of size "
                    f"{vocab_size!r}; the spec was built for another tokenizer."
                )
        return self

    def entropy(self) -> float:
        """Shannon entropy ``-sum_i sum_v p_{i,v} log p_{i,v}`` in nats."""
        h = 0.0
        for p in self.positions:
            q = p.normalized[p.normalized > 0]
            h -= float(np.sum(q * np.log(q)))
        return h

    def support_size(self) -> int:
        """Number of sequences with positive probability, ``prod_i |supp D_i|`` (a Python int)."""
        n = 1
        for p in self.positions:
            n *= int(np.count_nonzero(p.probs))
        return n

    # -- dense form ----------------------------------------------------------------------
    def probs_matrix(
        self, vocab_size: int, *, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Dense per-position probabilities ``P`` of shape ``(T, V)``: ``P[i, v] = p_{i,v}``."""
        self.validate_vocab(vocab_size)
        out = torch.zeros(self.length, vocab_size, dtype=torch.float64)
        for i, p in enumerate(self.positions):
            out[i, torch.tensor(p.tokens)] = torch.from_numpy(p.normalized.copy())
        return out.to(dtype=dtype, device=device)

    def log_probs_matrix(
        self, vocab_size: int, *, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """``log P`` of shape ``(T, V)``, ``-inf`` outside the support."""
        return self.probs_matrix(vocab_size, dtype=torch.float64).log().to(dtype=dtype, device=device)

    # -- sampling and density ----------------------------------------------------------
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """Draw ``n`` i.i.d. sequences: a ``LongTensor`` of shape ``(n, T)`` on ``device``.

        Uses inverse-CDF sampling per position with uniforms from ``generator`` (which must
        live on ``device``; ``None`` uses torch's default stream on that device).
        """
        n = check_int("n", n, minimum=0)
        device = torch.device(device)
        out = torch.empty(n, self.length, dtype=torch.long, device=device)
        for i, p in enumerate(self.positions):
            if isinstance(p, ConstantPosition):
                out[:, i] = p.token
            else:
                tokens, cdf = self._tables(i, device)
                u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
                idx = torch.searchsorted(cdf, u, right=True).clamp_(max=tokens.numel() - 1)
                out[:, i] = tokens[idx]
        return out

    def _tables(self, i: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        cache = self.__dict__.setdefault("_table_cache", {})
        key = (i, str(device))
        if key not in cache:
            p = self.positions[i]
            cdf = np.cumsum(p.normalized)
            cdf[-1] = 1.0
            cache[key] = (
                torch.tensor(p.tokens, device=device),
                torch.as_tensor(cdf, dtype=torch.float64, device=device),
            )
        return cache[key]

    def log_prob(self, tokens: torch.Tensor) -> torch.Tensor:
        """``log P(x)`` for each row of ``tokens`` ``(n, T)``; float64 ``(n,)``, ``-inf`` off support."""
        if not isinstance(tokens, torch.Tensor):
            tokens = torch.as_tensor(np.asarray(tokens))
        if tokens.ndim != 2 or tokens.shape[1] != self.length:
            raise InputValueError(f"tokens must have shape (n, {self.length}), got {tuple(tokens.shape)!r}.")
        tokens = tokens.long()
        out = torch.zeros(tokens.shape[0], dtype=torch.float64, device=tokens.device)
        for i, p in enumerate(self.positions):
            col = tokens[:, i].contiguous()
            ids = torch.tensor(p.tokens, device=tokens.device)
            with np.errstate(divide="ignore"):
                lp = torch.tensor(np.log(p.normalized), device=tokens.device)
            order = torch.argsort(ids)
            ids_s, lp_s = ids[order], lp[order]
            j = torch.searchsorted(ids_s, col).clamp_(max=ids_s.numel() - 1)
            hit = ids_s[j] == col
            out += torch.where(hit, lp_s[j], torch.full_like(out, -torch.inf))
        return out

    # -- serialisation -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"positions": [p.to_json() for p in self.positions]}
        if self.metadata:
            d["metadata"] = self.metadata
        return d

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TokenSpec:
        if not isinstance(obj, Mapping) or "positions" not in obj:
            raise InputValueError(
                "a spec must be a JSON object with a 'positions' list, e.g. "
                '{"positions": [{"token": 0}, {"tokens": [1, 2], "probs": [0.5, 0.5]}]}; '
                f"got {str(obj)[:80]!r}."
            )
        extra = set(obj) - {"positions", "metadata"}
        if extra:
            raise InputValueError(f"unknown spec keys {sorted(extra)!r}; allowed are 'positions' and 'metadata'.")
        positions = obj["positions"]
        if not isinstance(positions, list):
            raise InputTypeError(f"'positions' must be a list, got {type(positions).__name__}.")
        return cls([_position_from_json(i, p) for i, p in enumerate(positions)], obj.get("metadata"))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, *, vocab_size: int | None = None) -> TokenSpec:
        """Load and validate a spec; with ``vocab_size`` also check every id is in range."""
        path = Path(path)
        if not path.is_file():
            raise InputValueError(f"spec file {str(path)!r} does not exist.")
        try:
            obj = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputValueError(f"spec file {str(path)!r} is not valid JSON: {exc}") from exc
        spec = cls.from_json(obj)
        if vocab_size is not None:
            spec.validate_vocab(vocab_size)
        return spec

    def spec_hash(self) -> str:
        """SHA-256 (hex, first 16 chars) of the canonical JSON of the positions (metadata excluded)."""
        canon = json.dumps(
            [p.to_json() for p in self.positions], separators=(",", ":"), sort_keys=True
        )
        return hashlib.sha256(canon.encode()).hexdigest()[:16]
