"""Fast QLD (sorting, O(n log n) counting) equals brute-force n^2 pair counting exactly.

Hypothesis draws the sizes, scales, the target and a seed for random activations and
unembeddings (non-Gaussian mixtures included); the fast count must equal the brute-force
count of all pairs, and also the count obtained by recomputing every recombined sample's
full logits and taking the argmax.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from lowprob.lm_bridge.methods.qld import (
    _direction,
    constraints_in_whitened,
    qld_from_activations,
    qld_pair_count,
    qld_pair_count_bruteforce,
    whiten,
)


def _argmax_pair_count(x_z, d, m, A, W, b, target):
    """Recompose every pair in activation space and check ``argmax logits == target``."""
    a = x_z @ d
    total = 0
    for zi in x_z:
        bi = zi - (zi @ d) * d
        zz = bi[None, :] + a[:, None] * d[None, :]
        logits = (zz @ A.T + m) @ W + b
        top2 = logits.topk(2, dim=1).values
        win = (logits.argmax(1) == target) & (top2[:, 0] > top2[:, 1])
        total += int(win.sum())
    return total


@given(
    n=st.integers(5, 60),
    dim=st.integers(1, 6),
    V=st.integers(2, 12),
    seed=st.integers(0, 2**31 - 1),
    shift=st.floats(-3, 3),
    heavy=st.booleans(),
)
def test_fast_count_equals_bruteforce(n, dim, V, seed, shift, heavy):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)) @ rng.standard_normal((dim, dim)) + shift
    if heavy:
        x = x * rng.exponential(1.0, (n, 1)) ** 2  # heavy-tailed, non-Gaussian
    x = torch.as_tensor(x)
    W = torch.as_tensor(rng.standard_normal((dim, V)))
    b = torch.as_tensor(rng.standard_normal(V))
    target = int(rng.integers(V))
    z, m, A = whiten(x)
    P, c = constraints_in_whitened(A, m, W, b, target)
    d, status = _direction(P, c)
    if d is None:
        assert qld_from_activations(x, W, b, target).count == 0
        return
    fast = qld_pair_count(z, d, P, c, batch_size=7)
    assert fast == qld_pair_count_bruteforce(z, d, P, c)
    assert fast == _argmax_pair_count(z, d, m, A, W.double(), b.double(), target)
    res = qld_from_activations(x, W, b, target)
    assert res.count == fast
    assert (res.log_p == -math.inf) if fast == 0 else math.isclose(res.log_p, math.log(fast / n**2))


def test_whitening_is_of_centred_samples():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.standard_normal((2000, 4)) @ rng.standard_normal((4, 4)) + 7.0)
    z, m, A = whiten(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(z.T @ z / 2000, torch.eye(4, dtype=torch.float64), atol=1e-8, rtol=0)
    torch.testing.assert_close(z @ A.T + m, x, atol=1e-9, rtol=0)


def test_shortest_accepting_vector_is_optimal():
    """KKT check: the QP solution is feasible and no feasible point in a random sample is shorter."""
    from lowprob.lm_bridge.methods.qld import shortest_accepting_vector

    rng = np.random.default_rng(4)
    P = torch.as_tensor(rng.standard_normal((30, 5)))
    u0 = rng.standard_normal(5) * 2
    c = torch.as_tensor(-(P.numpy() @ u0) + rng.exponential(1.0, 30))  # u0 is feasible, 0 is not
    u, status = shortest_accepting_vector(P, c)
    assert status == "optimal" and np.linalg.norm(u) <= np.linalg.norm(u0) + 1e-7
    assert np.all(P.numpy() @ u + c.numpy() >= -1e-7)
    cand = rng.standard_normal((200000, 5)) * 3
    feas = np.all(cand @ P.numpy().T + c.numpy() >= 0, axis=1)
    if feas.any():
        assert np.linalg.norm(u) <= np.linalg.norm(cand[feas], axis=1).min() + 1e-6


def test_cutting_planes_match_the_full_qp():
    """The working-set QP returns the optimum of the QP over all constraints at once."""
    import cvxpy as cp

    from lowprob.lm_bridge.methods.qld import shortest_accepting_vector

    rng = np.random.default_rng(7)
    P = rng.standard_normal((600, 6))
    u0 = rng.standard_normal(6) * 3
    c = -(P @ u0) + rng.exponential(2.0, 600)
    u, status = shortest_accepting_vector(torch.as_tensor(P), torch.as_tensor(c))
    full = cp.Variable(6)
    cp.Problem(cp.Minimize(cp.sum_squares(full)), [P @ full + c >= 0]).solve(solver=cp.CLARABEL)
    assert status == "optimal"
    np.testing.assert_allclose(u, full.value, atol=1e-6)
