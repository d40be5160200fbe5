"""A tabulated GPT-2 forward for independent-token inputs: the same float32 logits, far fewer FLOPs.

Every LM problem feeds the model sequences whose position ``i`` holds a token from a finite
support ``S_i`` (a :class:`~lowprob.lm_bridge.distributions.TokenSpec`), and every method reads
only the **last** position. Two facts make most of a GPT-2 forward a table lookup:

1. **Layer 0 is per (position, token).** ``resid_0[i] = W_E[x_i] + W_pos[i]`` and therefore
   ``h = LN_1(resid_0[i])`` and ``(q, k, v)[i] = h W_attn + b_attn`` depend on ``(i, x_i)``
   alone. They are computed once for the ``R = sum_i |S_i|`` rows of the support and gathered
   per sample (``index[i, v]`` is the row of token ``v`` at position ``i``).
2. **The last layer is needed at the last position only.** Its keys and values are needed at
   every position, its query, attention output and MLP only at ``T - 1``.

Cost per sample in multiply-adds (:func:`tabulated_macs_per_sample` has every term): for
``gelu-1l`` (``d = 128``, ``H = 4``, ``V = 4096``) on a 33-position spec the full forward costs
``7.29 M``, the tabulated one ``0.74 M`` (``0.70 M`` with a score table), of which ``d V =
0.52 M`` is the unembedding; a gradient call costs ``14.6 M`` against ``1.0 M``. Two layers
(``gelu-2l``): ``14.1 M`` against ``6.9 M`` (layer 0 still mixes every position).

**One-hot gradients.** ITGIS and MHIS need ``g[b, i, v] = d s(x_b) / d onehot[b, i, v]`` for a
score ``s`` linear in the final activation (``s = logit_t`` up to a constant, or ``u . x``).
Since ``onehot @ W_E`` is the embedding, ``g[b, i, :] = G[b, i, :] W_E^T`` with
``G = d s / d resid_0`` of shape ``(B, T, d)``. :meth:`TabulatedGPT2.score_gradient` returns
the **true model's** ``G``: the gathered rows are leaves of the autograd graph, ``LN_1`` is
re-applied to them (``O(T d)``), and the tabulated ``h W + b`` is a custom autograd function
whose backward is the exact ``grad_h = grad_out W^T``. So the derivative flows through the
embedding, ``LN_1`` and the attention weights exactly as in the full model; only the forward
values are looked up. Backward cost (1 layer): about the forward's ``2 T H d + 11 d^2`` plus
``O(T d)`` for ``LN_1``, with no ``d V`` term because ``s`` is linear in ``x``.

Same numbers as the adapter up to float32 summation order (tested in
``tests/test_lm_fast_path.py``). Supported: ``HFAdapter`` with ``model_type == "gpt2"``,
``scale_attn_weights``, no ``scale_attn_by_inverse_layer_idx``, no cross-attention
(:func:`tabulation_unsupported_reason` says why not otherwise).

Reference: Radford et al. 2019 (GPT-2); the tabulation is the one of
:mod:`lowprob.lm_bridge.ground_truth` (Wu & Hilton 2024, arXiv 2410.13211, section 4).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lowprob.errors import InputValueError, UnavailableError
from lowprob.lm_bridge.adapters.base import ModelAdapter
from lowprob.lm_bridge.distributions import TokenSpec

__all__ = ["TabulatedGPT2", "tabulated_macs_per_sample", "tabulation_unsupported_reason"]


def tabulation_unsupported_reason(adapter: ModelAdapter) -> str | None:
    """``None`` if :class:`TabulatedGPT2` computes ``adapter``'s forward exactly, else why not."""
    from lowprob.lm_bridge.adapters.hf import HFAdapter

    if not isinstance(adapter, HFAdapter):
        return f"adapter {type(adapter).__name__} is not an HFAdapter (the tabulated forward is GPT-2 only)"
    if adapter.model_type != "gpt2":
        return f"model_type {adapter.model_type!r} is not 'gpt2' (the tabulated forward is GPT-2 only)"
    cfg = adapter.config
    if not getattr(cfg, "scale_attn_weights", True):
        return "config.scale_attn_weights is False (the tabulated forward scales scores by d_head^-1/2)"
    if getattr(cfg, "scale_attn_by_inverse_layer_idx", False):
        return "config.scale_attn_by_inverse_layer_idx is True (not implemented in the tabulated forward)"
    if getattr(cfg, "add_cross_attention", False):
        return "config.add_cross_attention is True (not a decoder-only GPT-2)"
    if getattr(cfg, "reorder_and_upcast_attn", False) and adapter.dtype != torch.float32:
        return "config.reorder_and_upcast_attn with non-float32 weights (the adapter upcasts attention)"
    return None


def tabulated_macs_per_sample(
    d: int, T: int, V: int, n_layers: int, *, n_heads: int, d_mlp: int | None = None, score_table: bool = False
) -> dict[str, int]:
    """Multiply-adds per sample of the tabulated and the full forward, and of a gradient call.

    With ``m = d_mlp`` (default ``4 d``), ``H = n_heads``, ``P = d^2 + 2 d m`` (output
    projection and MLP at one position) and ``A = 2 T d`` (one position's attention over ``T``):

    * full forward: ``n_layers T (4 d^2 + 2 d m + A) + d V`` (every position of every layer;
      the unembedding at the last position only).
    * tabulated, 1 layer: ``2 T H d + 2 d^2 + P + d V`` (``W_K q``, scores and weighted
      ``LN_1`` rows, ``W_V``); with a score table ``T H d + d^2 + P + d V``.
    * tabulated, ``L >= 2`` layers: layer 0 ``T (P + A)``, layers ``1..L-2`` full, the last
      ``2 T d^2`` (keys and values) ``+ d^2 + A + P`` at the last position, ``+ d V``.
    * gradient call (``logits`` and ``d (u . x) / d onehot``): tabulated 1 layer: forward
      ``+ 4 T H d + 3 d^2 + P`` (backward, ``O(T d)`` layer norms not counted);
      ``L >= 2``: about ``2 x`` the forward without ``d V``, ``+ 3 T d^2`` (layer-0 QKV backward).
      Full: ``2 x`` the full forward (the adapter differentiates ``logit_t`` through ``W_U``).
    """
    m = 4 * d if d_mlp is None else d_mlp
    H = n_heads
    P = d * d + 2 * d * m
    A = 2 * T * d
    full = n_layers * T * (4 * d * d + 2 * d * m + A) + d * V
    if n_layers == 1:
        fwd = (T * H * d + d * d if score_table else 2 * T * H * d + 2 * d * d) + P + d * V
        grad = 2 * T * H * d + 2 * d * d + P + d * V + 4 * T * H * d + 3 * d * d + P
    else:
        fwd = T * (P + A) + (n_layers - 2) * T * (4 * d * d + 2 * d * m + A) + 2 * T * d * d + d * d + A + P + d * V
        grad = fwd + (fwd - d * V) + 3 * T * d * d
    return {"forward": int(fwd), "forward_and_gradient": int(grad), "full_forward": int(full),
            "full_forward_and_gradient": int(2 * full)}


class _TableLinear(torch.autograd.Function):
    """``y = h W + b`` whose value is looked up (``table``) but whose backward is the true ``grad_h = grad_y W^T``."""

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, table: torch.Tensor, W: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(W)
        return table.clone()

    @staticmethod
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # noqa: D102
        (W,) = ctx.saved_tensors
        return grad_y @ W.T, None, None


class TabulatedGPT2:
    """Exact GPT-2 last-position logits, final activations and one-hot gradients, layer 0 tabulated.

    Args:
        adapter: an :class:`~lowprob.lm_bridge.adapters.hf.HFAdapter` of a GPT-2 model (see
            :func:`tabulation_unsupported_reason`); only its public accessors are used.
        spec: the input law; the tables cover exactly the support of each position.
        device: where the index lives (the adapter's device; default).

    Tables (``R = sum_i |S_i|`` rows): ``index[i, v]`` the row of token ``v`` at position ``i``
    (``-1`` off support); ``resid0[r] = W_E[v] + W_pos[i]`` ``(R, d)``;
    ``qkv0[r] = c_attn(ln_1(resid0[r]))`` ``(R, 3d)``; ``k0, v0`` its key and value parts.
    ``h0[r] = ln_1(resid0[r])``. One layer: ``scores[j, r, h]`` the attention score of the
    last position's ``j``-th support token against row ``r`` (when ``|S_{T-1}| R H <=
    max_score_table``); ``xhat0, rstd0`` ``LN_1``'s normalised rows and inverse scales (for the
    written-out backward). Memory about ``R * 9 d`` floats plus the score table.
    """

    def __init__(
        self, adapter: Any, spec: TokenSpec, device: torch.device | str | None = None, *, max_score_table: int = 2**24
    ) -> None:
        reason = tabulation_unsupported_reason(adapter)
        if reason is not None:
            raise UnavailableError(f"TabulatedGPT2 cannot run this model: {reason}. Use the adapter's forward.")
        if not isinstance(spec, TokenSpec):
            raise InputValueError(f"spec must be a TokenSpec, got {type(spec).__name__}.")
        spec.validate_vocab(adapter.vocab_size)
        T = spec.length
        if T > adapter.n_ctx:
            raise InputValueError(f"spec has {T} positions but the model's context is {adapter.n_ctx}; shorten the spec.")
        device = adapter.device if device is None else torch.device(device)
        self.blocks = list(adapter.hf_blocks)
        self.ln_f = adapter.final_norm
        self.W_U = adapter.W_U
        self.b_U = adapter.b_U
        self.W_E = adapter.W_E
        self.H = int(adapter.config.n_head)
        self.d = int(adapter.d_model)
        self.vocab_size = int(adapter.vocab_size)
        self.length = T
        index = torch.full((T, adapter.vocab_size), -1, dtype=torch.long)
        toks, pos = [], []
        row = 0
        for t, p in enumerate(spec.positions):
            ids = torch.as_tensor(np.array(p.tokens))
            index[t, ids] = torch.arange(row, row + ids.numel())
            toks.append(ids)
            pos.append(torch.full_like(ids, t))
            row += ids.numel()
        self.n_rows = row
        self.index = index.to(device)
        self._positions = torch.arange(T, device=device)
        toks_t, pos_t = torch.cat(toks).to(device), torch.cat(pos).to(device)
        d, H = self.d, self.H
        with torch.no_grad():
            resid = adapter.W_E[toks_t] + adapter.positional(T)[pos_t]
            blk = self.blocks[0]
            self.resid0 = resid  # (rows, d)
            self.qkv0 = blk.attn.c_attn(blk.ln_1(resid))  # (rows, 3d)
            self.k0 = self.qkv0[:, d : 2 * d].contiguous()  # (rows, d)
            self.v0 = self.qkv0[:, 2 * d :].contiguous()  # (rows, d)
            self.h0 = blk.ln_1(resid)  # (rows, d): LN_1 of layer 0
            mu = resid.mean(-1, keepdim=True)
            self.rstd0 = (resid.var(-1, unbiased=False, keepdim=True) + blk.ln_1.eps).rsqrt()  # (rows, 1)
            self.xhat0 = (resid - mu) * self.rstd0  # (rows, d): LN_1's normalised input
            self.score0 = None
            self.scores = None
            last = spec.positions[-1]
            self._last_start = int(index[T - 1, int(last.tokens[0])])  # rows of position T-1 are contiguous
            if len(self.blocks) == 1 and last.tokens.size * row * H <= max_score_table:
                # 1 layer: the last query depends on the last token only, so every score
                # q_{T-1, u} . k_{t, v} / sqrt(d_h) is a table entry ``scores[u, row(t, v), h]``.
                q = self.qkv0[self._last_start : self._last_start + last.tokens.size, :d]
                q = q.reshape(-1, H, d // H)
                k = self.k0.view(-1, H, d // H)
                self.scores = torch.einsum("jhe,rhe->jrh", q, k) * (d // H) ** -0.5  # (|S_T-1|, rows, H)
                if last.tokens.size == 1:
                    self.score0 = self.scores[0]  # (rows, H), the old name

    # -- pieces --------------------------------------------------------------------------------
    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (..., T, d) -> (..., H, T, dh)
        *lead, T, _ = x.shape
        return x.reshape(*lead, T, self.H, self.d // self.H).transpose(-3, -2)

    def _mlp(self, blk: Any, resid: torch.Tensor) -> torch.Tensor:
        return resid + blk.mlp(blk.ln_2(resid))

    def _full_layer(self, blk: Any, resid: torch.Tensor, qkv: torch.Tensor) -> torch.Tensor:
        q, k, v = (self._heads(z) for z in qkv.split(self.d, dim=-1))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, dh)
        a = a.transpose(1, 2).reshape(resid.shape)
        return self._mlp(blk, resid + blk.attn.c_proj(a))

    def _last_layer(
        self, blk: Any, resid_last: torch.Tensor, q: torch.Tensor | None, k: torch.Tensor | None,
        v: torch.Tensor, scores: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Last layer at the last position only.

        ``q (B, d)``, ``k, v (B, T, d)``, ``resid_last (B, d)``; or precomputed ``scores (B, T, H)``.
        """
        B, T, d = v.shape
        H = self.H
        dh = d // H
        if scores is None:
            scores = (k.reshape(B, T, H, dh) * q.reshape(B, 1, H, dh)).sum(-1) * (dh**-0.5)  # (B, T, H)
        w = torch.softmax(scores, dim=1)
        a = (w.unsqueeze(-1) * v.reshape(B, T, H, dh)).sum(1).reshape(B, d)
        return self._mlp(blk, resid_last + blk.attn.c_proj(a))

    def _one_layer(self, rows: torch.Tensor) -> torch.Tensor:
        """One layer at the last position, with keys and values folded into the query (no autograd).

        With ``h_t = LN_1(resid0_t)``: ``score_{t,h} = (h_t W_K^h + b_K^h) . q^h / sqrt(d_h)
        = h_t . (W_K^h q^h) / sqrt(d_h) + const_h``, and since the weights sum to 1,
        ``a^h = sum_t w_{t,h} (h_t W_V^h + b_V^h) = (sum_t w_{t,h} h_t) W_V^h + b_V^h``.
        So only ``h`` is gathered ``(B, T, d)``; per sample ``2 T H d + 2 d^2`` multiply-adds
        replace ``2 T d^2`` of key/value projections. With a score table the scores are looked
        up and ``sum_t w h_t`` is an embedding bag over the ``h0`` table.
        """
        B, T = rows.shape
        d, H = self.d, self.H
        dh = d // H
        last = rows[:, -1]
        blk = self.blocks[0]
        W, bias = blk.attn.c_attn.weight, blk.attn.c_attn.bias  # Conv1D: x @ W + b, W (d, 3d)
        if self.scores is not None:
            # Scores are a table; m[b, h] = sum_t w[b, t, h] h0[row(b, t)] is an embedding bag
            # (weighted row sums straight from the table, nothing (B, T, d) is materialised).
            R = self.scores.shape[1]
            idx = ((last - self._last_start).unsqueeze(1) * R + rows).reshape(-1)
            w = torch.softmax(self.scores.view(-1, H).index_select(0, idx).view(B, T, H), dim=1)
            m = F.embedding_bag(
                rows.unsqueeze(1).expand(B, H, T).reshape(B * H, T), self.h0,
                per_sample_weights=w.transpose(1, 2).reshape(B * H, T), mode="sum",
            ).view(B, H, d)
            a = torch.einsum("bhd,dhe->bhe", m, W[:, 2 * d :].reshape(d, H, dh)).reshape(B, d) + bias[2 * d :]
            return self._mlp(blk, self.resid0.index_select(0, last) + blk.attn.c_proj(a))
        h_pre = self.h0.index_select(0, rows[:, :-1].reshape(-1)).view(B, T - 1, d)
        h_last = self.h0.index_select(0, last)
        resid_last = self.resid0.index_select(0, last)
        q = self.qkv0.index_select(0, last)[:, :d].reshape(B, H, dh)
        qk = torch.einsum("dhe,bhe->bhd", W[:, d : 2 * d].reshape(d, H, dh), q)  # (B, H, d)
        const = (bias[d : 2 * d].reshape(H, dh) * q).sum(-1)  # (B, H)
        scores = torch.cat(
            [torch.bmm(qk, h_pre.transpose(1, 2)), (qk * h_last.unsqueeze(1)).sum(-1, keepdim=True)], dim=-1
        )
        w = torch.softmax((scores + const.unsqueeze(-1)) * dh**-0.5, dim=-1)  # (B, H, T)
        m = torch.bmm(w[:, :, :-1], h_pre) + w[:, :, -1:] * h_last.unsqueeze(1)  # (B, H, d)
        a = torch.einsum("bhd,dhe->bhe", m, W[:, 2 * d :].reshape(d, H, dh)).reshape(B, d) + bias[2 * d :]
        return self._mlp(blk, resid_last + blk.attn.c_proj(a))

    def rows(self, tokens: torch.Tensor) -> torch.Tensor:
        """Table rows ``(B, T)`` of ``tokens (B, T)``; raises if a token is off its position's support."""
        if tokens.ndim != 2 or tokens.shape[1] != self.length:
            raise InputValueError(f"tokens must have shape (B, {self.length}), got {tuple(tokens.shape)!r}.")
        rows = self.index[self._positions, tokens]
        if rows.numel() and int(rows.min()) < 0:
            b, i = (int(z) for z in (rows < 0).nonzero()[0])
            raise InputValueError(
                f"token {int(tokens[b, i])!r} at position {i} is not in the spec's support there; "
                "the tables cover the spec's support only (use the adapter's forward for other inputs)."
            )
        return rows

    def _final_residual(self, rows: torch.Tensor, leaf: Any = None) -> torch.Tensor:
        """Residual before ``ln_f`` at the last position ``(B, d)``.

        ``rows`` from :meth:`rows`. Without ``leaf`` everything is looked up (no autograd). With
        ``leaf = resid0[rows]`` ``(B, T, d)`` requiring grad (two or more layers; one layer:
        :meth:`_one_layer_score_gradient`), ``LN_1`` is re-applied to it and the tabulated
        projections carry the exact backward (:class:`_TableLinear`).
        """
        B, T = rows.shape
        d = self.d
        flat = rows.reshape(-1)
        blk0 = self.blocks[0]
        W0 = blk0.attn.c_attn.weight  # Conv1D: x @ W + b, W (d, 3d)
        if len(self.blocks) == 1:
            if leaf is not None:
                raise InputValueError("one layer: use score_gradient (its backward is written out).")
            return self._one_layer(rows)
        if leaf is None:
            resid = self.resid0.index_select(0, flat).view(B, T, d)
            qkv = self.qkv0.index_select(0, flat).view(B, T, 3 * d)
        else:
            resid = leaf
            qkv = _TableLinear.apply(blk0.ln_1(leaf), self.qkv0.index_select(0, flat).view(B, T, 3 * d), W0)
        for i, blk in enumerate(self.blocks[:-1]):
            if i > 0:
                qkv = blk.attn.c_attn(blk.ln_1(resid))
            resid = self._full_layer(blk, resid, qkv)
        blk = self.blocks[-1]
        h = blk.ln_1(resid)
        W, bias = blk.attn.c_attn.weight, blk.attn.c_attn.bias
        kv = h @ W[:, d:] + bias[d:]
        q = h[:, -1] @ W[:, :d] + bias[:d]
        k, v = kv.split(d, dim=-1)
        return self._last_layer(blk, resid[:, -1], q, k, v)

    # -- public operations --------------------------------------------------------------------------
    def final_activations(self, tokens: torch.Tensor) -> torch.Tensor:
        """``x = ln_f(resid)[:, -1]`` ``(B, d)``: what ``ModelAdapter.final_activation`` returns."""
        with torch.no_grad():
            return self.ln_f(self._final_residual(self.rows(tokens)))

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        """``x W_U + b_U`` ``(B, V)`` (one fused ``addmm``)."""
        with torch.no_grad():
            return torch.addmm(self.b_U, x, self.W_U)

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Last-position logits ``x W_U + b_U`` ``(B, V)``."""
        return self.unembed(self.final_activations(tokens))

    def score_gradient(self, tokens: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, G)``: final activations ``x (B, d)`` and ``G = d (x_b . u) / d resid_0[b]`` ``(B, T, d)``.

        ``G[b, i] @ W_E^T`` is the gradient of ``x_b . u`` w.r.t. the one-hot input at position
        ``i`` (through the embedding, ``LN_1`` and attention: the true model's derivative).
        ``u = W_U[:, t]`` gives the gradient of ``logit_t`` (its bias is a constant).
        """
        rows = self.rows(tokens)
        B, T = rows.shape
        if len(self.blocks) == 1:
            return self._one_layer_score_gradient(rows, u)
        with torch.enable_grad():
            leaf = self.resid0.index_select(0, rows.reshape(-1)).view(B, T, self.d).requires_grad_(True)
            x = self.ln_f(self._final_residual(rows, leaf))
            s = x @ u.to(x.dtype)
            (G,) = torch.autograd.grad(s, leaf, grad_outputs=torch.ones_like(s))
        return x.detach(), G.detach()

    def _one_layer_score_gradient(self, rows: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One layer: ``(x, G)`` with the attention/``LN_1`` backward written out (see :meth:`_one_layer`).

        Forward as in :meth:`_one_layer` with ``h_t = gamma xhat_t + beta`` (``xhat``, ``rstd``
        tabulated). Autograd runs only on the last-position tail ``(m, resid_last) -> x . u``,
        giving ``gm (B, H, d)`` and ``g_r (B, d)``. Then, with ``w`` the attention weights and
        ``c = 1 / sqrt(d_h)``:

            gw_{ht} = gm_h . h_t,   gs_{ht} = c w_{ht} (gw_{ht} - sum_s w_{hs} gw_{hs}),
            gh_t = sum_h w_{ht} gm_h + gs_{ht} (W_K^h q^h),   g(W_K^h q^h) = sum_t gs_{ht} h_t,
            gq^h = W_K^{hT} g(W_K^h q^h) + b_K^h sum_t gs_{ht},   gh_{T-1} += gq W_Q^T,
            G_t = rstd_t (g'_t - mean(g'_t) - xhat_t mean(g'_t xhat_t)),  g' = gh gamma,
            G_{T-1} += g_r.

        The same derivative as autograd through the full model, in 3 batched matmuls.
        """
        B, T = rows.shape
        d, H = self.d, self.H
        dh = d // H
        c = dh**-0.5
        blk = self.blocks[0]
        W, bias = blk.attn.c_attn.weight, blk.attn.c_attn.bias
        Wk, Wv = W[:, d : 2 * d].reshape(d, H, dh), W[:, 2 * d :].reshape(d, H, dh)
        bk = bias[d : 2 * d].reshape(H, dh)
        gamma, beta = blk.ln_1.weight, blk.ln_1.bias
        flat, last = rows.reshape(-1), rows[:, -1]
        with torch.no_grad():
            xh = self.xhat0.index_select(0, flat).view(B, T, d)
            h = torch.addcmul(beta, xh, gamma)  # (B, T, d)
            q = self.qkv0.index_select(0, last)[:, :d].reshape(B, H, dh)
            qk = torch.einsum("dhe,bhe->bhd", Wk, q)  # (B, H, d)
            const = (bk * q).sum(-1)  # (B, H)
            w = torch.softmax((torch.bmm(qk, h.transpose(1, 2)) + const.unsqueeze(-1)) * c, dim=-1)  # (B, H, T)
            m = torch.bmm(w, h)  # (B, H, d)
        with torch.enable_grad():
            m_leaf = m.requires_grad_(True)
            r_leaf = self.resid0.index_select(0, last).requires_grad_(True)
            a = torch.einsum("bhd,dhe->bhe", m_leaf, Wv).reshape(B, d) + bias[2 * d :]
            x = self.ln_f(self._mlp(blk, r_leaf + blk.attn.c_proj(a)))
            s = x @ u.to(x.dtype)
            gm, gr = torch.autograd.grad(s, [m_leaf, r_leaf], grad_outputs=torch.ones_like(s))
        with torch.no_grad():
            gw = torch.bmm(gm, h.transpose(1, 2))  # (B, H, T)
            gs = w * (gw - (w * gw).sum(-1, keepdim=True)) * c
            gh = torch.bmm(torch.cat([w, gs], dim=1).transpose(1, 2), torch.cat([gm, qk], dim=1))  # (B, T, d)
            gqk = torch.bmm(gs, h)  # (B, H, d)
            gq = torch.einsum("dhe,bhd->bhe", Wk, gqk) + bk * gs.sum(-1).unsqueeze(-1)  # (B, H, dh)
            gh[:, -1] += gq.reshape(B, d) @ W[:, :d].T
            gg = gh.mul_(gamma)  # in place: (B, T, d) passes dominate here
            m2 = torch.linalg.vecdot(gg, xh).unsqueeze(-1) / d
            G = gg.sub_(gg.mean(-1, keepdim=True)).sub_(xh * m2)
            G.mul_(self.rstd0.index_select(0, flat).view(B, T, 1))
            G[:, -1] += gr
        return x.detach(), G

    def macs_per_sample(self) -> dict[str, int]:
        """:func:`tabulated_macs_per_sample` for this model and spec."""
        d_mlp = int(self.blocks[0].mlp.c_fc.weight.shape[1])
        return tabulated_macs_per_sample(self.d, self.length, self.vocab_size, len(self.blocks), n_heads=self.H,
                                         d_mlp=d_mlp, score_table=self.scores is not None)
