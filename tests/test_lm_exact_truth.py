"""Exact ground truth by enumeration: brute force, sampled counts, near-ties, bad input, resume, CLI.

Tiny random GPT-2s (``lm_fixtures``, vocab 16, d 16) keep every test to a few seconds; two tests
use the shipped d=128 models on specs of a few hundred inputs.
"""

from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest
import torch
from lm_fixtures import save_tiny, tiny_gpt2, tiny_neox

from lowprob.cli import main
from lowprob.errors import InputValueError
from lowprob.lm_bridge.adapters.hf import HFAdapter
from lowprob.lm_bridge.distributions import CategoricalPosition, ConstantPosition, TokenSpec
from lowprob.lm_bridge.exact_truth import (
    ExactTruth,
    default_state_path,
    exact_argmax,
    save_exact_targets,
    select_exact_targets,
)
from lowprob.lm_bridge.ground_truth import count_argmax
from lowprob.lm_bridge.ground_truth import exact_argmax as reexported

pytestmark = pytest.mark.lm

V = 16


def _spec(sizes=(5, 4, 6), seed: int = 0, const_mid: bool = True) -> TokenSpec:
    rng = np.random.default_rng(seed)
    pos = [ConstantPosition(0)]
    for i, k in enumerate(sizes):
        toks = rng.choice(np.arange(1, V), k, replace=False)
        pos.append(CategoricalPosition(toks, rng.dirichlet(np.ones(k))))
        if const_mid and i == 0:
            pos.append(ConstantPosition(3))
    return TokenSpec(pos)


def brute_force(adapter: HFAdapter, spec: TokenSpec, *, dtype=torch.float32) -> np.ndarray:
    """sum_x P(x) [argmax of the HF model's own forward = t] over the whole support (float64 sums)."""
    xs = torch.tensor(list(itertools.product(*[p.tokens for p in spec.positions])))
    model = adapter.model if dtype == torch.float32 else copy.deepcopy(adapter.model).to(dtype)
    with torch.no_grad():
        am = model(input_ids=xs).logits[:, -1, :].argmax(-1)
    w = spec.log_prob(xs).exp().numpy()
    return np.bincount(am.numpy(), weights=w, minlength=adapter.vocab_size)


def _check_against(r, bf: np.ndarray) -> None:
    assert r.complete and r.n_inputs == r.probs.size * 0 + r.n_inputs
    assert abs(r.probs.sum() - 1) < 1e-12
    assert np.all(r.probs_low <= r.probs + 1e-15) and np.all(r.probs <= r.probs_high + 1e-15)
    assert np.all(r.probs_low - 1e-14 <= bf) and np.all(bf <= r.probs_high + 1e-14)
    assert np.abs(r.probs - bf).max() <= r.tie_mass + 1e-14


@pytest.mark.parametrize("n_layer", [1, 2])
@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_enumeration_equals_brute_force(n_layer, chunk):
    ad = HFAdapter(tiny_gpt2(n_layer=n_layer, vocab=V, d=16))
    spec = _spec()
    bf = brute_force(ad, spec)
    r = exact_argmax(ad, spec, chunk=chunk, batch=5)
    assert r.n_inputs == 5 * 4 * 6 and r.diagnostics["kernel"] == "gpt2-tree"
    _check_against(r, bf)
    assert r.tie_mass == 0.0  # a random tiny model has no gaps below 1e-4 here, so the answers are equal
    np.testing.assert_allclose(r.probs, bf, rtol=0, atol=1e-15)
    plain = exact_argmax(ad, spec, chunk=chunk, fast=False, batch=7)
    assert plain.diagnostics["kernel"] == "adapter" and "note" in plain.diagnostics
    np.testing.assert_allclose(plain.probs, bf, rtol=0, atol=1e-15)


def test_non_gpt2_falls_back_with_a_note():
    ad = HFAdapter(tiny_neox(n_layer=2, vocab=V, d=16))
    spec = _spec((3, 4, 2))
    r = exact_argmax(ad, spec)
    assert r.diagnostics["kernel"] == "adapter" and "ModelAdapter.logits" in r.diagnostics["note"]
    _check_against(r, brute_force(ad, spec))


@pytest.mark.parametrize("model", ["gelu-1l", "gelu-2l"])
def test_shipped_models_equal_brute_force(model):
    from lowprob.lm_bridge.zoo import load_shipped

    ad = load_shipped(model)
    rng = np.random.default_rng(1)
    pos = [ConstantPosition(0)] + [
        CategoricalPosition(np.sort(rng.choice(np.arange(1, 4096), 6, replace=False)), rng.dirichlet(np.ones(6)))
        for _ in range(3)
    ] + [ConstantPosition(30)]
    spec = TokenSpec(pos)
    r = exact_argmax(ad, spec, chunk=50)
    _check_against(r, brute_force(ad, spec))


def test_agrees_with_sampled_counts():
    """|p_hat_t - p_t| <= 5 standard errors sqrt(p_t (1 - p_t) / N) for every token (fixed seed, N = 2^14)."""
    ad = HFAdapter(tiny_gpt2(n_layer=2, vocab=V, d=16, seed=1))
    spec = _spec((15, 15, 15, 15), seed=2, const_mid=False)
    r = exact_argmax(ad, spec, chunk=4096)
    assert r.n_inputs == 15**4
    N = 2**14
    gt = count_argmax(ad, spec, N, seed=0, batch_size=4096)
    se = np.sqrt(r.probs * (1 - r.probs) / N)
    assert np.all(np.abs(gt.probs - r.probs) <= 5 * se + 1e-12)
    assert int((r.probs > 0.01).sum()) >= 3  # the check is not vacuous: several tokens carry mass


def test_near_tie_interval_contains_float64_answer():
    """Token 15 := a copy of the commonest argmax token j (an exact tie); token 14 := j's row + 1e-7 noise.

    The float64 forward breaks the near-tie one way or the other; the float32 interval must contain it."""
    model = tiny_gpt2(n_layer=1, vocab=V, d=16, seed=3)
    spec = TokenSpec(  # support 1..12, so rows 14 and 15 change only the unembedding
[ConstantPosition(0)] + [
        CategoricalPosition(np.arange(1, 13), np.random.default_rng(i).dirichlet(np.ones(12))) for i in range(3)
    ])
    r0 = exact_argmax(HFAdapter(model), spec)
    j = int(np.argmax(r0.probs))
    with torch.no_grad():
        W = model.lm_head.weight  # tied to the input embedding
        W[15] = W[j]
        W[14] = W[j] + 1e-7 * torch.randn(W.shape[1], generator=torch.Generator().manual_seed(0))
    ad = HFAdapter(model)
    r = exact_argmax(ad, spec, tie_threshold=1e-4)
    bf64 = brute_force(ad, spec, dtype=torch.float64)
    assert r.tie_mass > 0.5 * r0.probs[j]  # every input won by j is now a near-tie
    assert np.all(r.probs_low - 1e-14 <= bf64) and np.all(bf64 <= r.probs_high + 1e-14)
    for t in (j, 14, 15):  # every input j used to win is a near-tie among j, 14, 15: counted for each of them
        assert r.probs_low[t] == 0.0 and r.probs_high[t] >= r0.probs[j] - 1e-12


def _write_spec(path, positions):
    path.write_text(json.dumps({"positions": positions}))
    return path


def _cli(tmp_path, spec_path, *extra):
    model_dir = tmp_path / "m"
    if not model_dir.exists():
        save_tiny(tiny_gpt2(n_layer=2, vocab=V, d=16), model_dir)
    out = tmp_path / "out" / "truth.json"
    argv = ["lm", "ground-truth", "--exact", "--model", str(model_dir), "--dist", str(spec_path), "--out", str(out),
            "--no-progress", *extra]
    return main(argv), out


@pytest.mark.parametrize(
    "positions, extra, words",
    [
        ([{"token": 0}] + [{"tokens": list(range(1, 16)), "probs": [1 / 15] * 15}] * 4, ["--max-inputs", "2**15"],
         ["50,625 inputs", "max_inputs=32,768", "take about"]),
        ([{"token": 0}, {"tokens": [1, 2, 3], "probs": [0.0, 0.5, 0.5]}], [], ["zero-probability", "[1]"]),
        ([{"token": 0}, {"tokens": [1, 2, 2], "probs": [0.2, 0.4, 0.4]}], [], ["distinct", "[2]"]),
        ([{"token": 0}, {"tokens": [1, 2], "probs": [0.5, 0.6]}], [], ["sum to 1", "1.1"]),
    ],
    ids=["over-limit", "zero-prob", "duplicated", "not-sum-1"],
)
def test_bad_specs_are_refused_and_nothing_written(tmp_path, capsys, positions, extra, words):
    spec_path = _write_spec(tmp_path / "spec.json", positions)
    rc, out = _cli(tmp_path, spec_path, *extra)
    err = capsys.readouterr().err
    assert rc == 2
    for w in words:
        assert w in err
    assert not out.exists() and not default_state_path(out).exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_over_limit_api_error_names_size_and_time():
    ad = HFAdapter(tiny_gpt2(n_layer=1, vocab=V, d=16))
    with pytest.raises(InputValueError, match=r"120 inputs .*max_inputs=100.*take about"):
        exact_argmax(ad, _spec(), max_inputs=100)


def test_corrupted_or_foreign_state_is_refused_and_untouched(tmp_path):
    ad = HFAdapter(tiny_gpt2(n_layer=2, vocab=V, d=16))
    state = tmp_path / "s.state"
    state.write_bytes(b'{"format": "lowprob.exact_state/1", "key": {')
    before = state.read_bytes()
    with pytest.raises(InputValueError, match="corrupted.*left untouched"):
        exact_argmax(ad, _spec(), state_path=state)
    assert state.read_bytes() == before
    other = tmp_path / "o.state"
    exact_argmax(ad, _spec(seed=5), state_path=other, chunk=7, max_chunks=1)
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    with pytest.raises(InputValueError, match="another run.*spec_hash.*left untouched"):
        exact_argmax(ad, _spec(), state_path=other, chunk=7)
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before
    part = next(other.iterdir())
    part.write_bytes(b"not an npz")
    with pytest.raises(InputValueError, match="corrupted.*left untouched"):
        exact_argmax(ad, _spec(seed=5), state_path=other, chunk=7)
    assert part.read_bytes() == b"not an npz"


def test_resume_is_bitwise_identical(tmp_path):
    ad = HFAdapter(tiny_gpt2(n_layer=2, vocab=V, d=16, seed=1))
    spec = _spec((15, 15, 15, 15), seed=2, const_mid=False)
    full = exact_argmax(ad, spec, chunk=3000)
    state = tmp_path / "r.state"
    part = exact_argmax(ad, spec, chunk=3000, state_path=state, max_chunks=7)
    assert not part.complete and part.chunks_done == 7 and state.is_dir()
    done = exact_argmax(ad, spec, chunk=3000, state_path=state, max_chunks=3)
    done = exact_argmax(ad, spec, chunk=3000, state_path=state)
    assert done.complete and done.n_chunks == full.n_chunks > 10
    for k in ("probs", "probs_low", "probs_high"):
        assert np.array_equal(getattr(done, k), getattr(full, k))
    assert done.tie_mass == full.tie_mass


def test_cli_contract(tmp_path, capsys):
    spec = _spec()
    spec_path = spec.save(tmp_path / "spec.json")
    rc, out = _cli(tmp_path, spec_path, "--targets", str(tmp_path / "t.json"), "--p-min", "0", "--p-max", "1",
                   "--tie-threshold", "1e-5", "--chunk", "2**4")
    assert rc == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    obj = json.loads(out.read_text())
    assert obj["n_inputs"] == summary["n_inputs"] == 120
    assert len(obj["probs"]) == V and all(isinstance(v, float) for v in obj["probs"])
    for k in ("probs_low", "probs_high", "tie_threshold", "tie_mass", "model_hash", "spec_hash", "seconds"):
        assert k in obj
    assert obj["tie_threshold"] == 1e-5 and obj["spec_hash"] == spec.spec_hash() and obj["model_hash"]
    assert not default_state_path(out).exists()
    ad = HFAdapter(tiny_gpt2(n_layer=2, vocab=V, d=16))
    np.testing.assert_allclose(obj["probs"], brute_force(ad, spec), rtol=0, atol=1e-15)
    truth = ExactTruth.load(out)
    t = json.loads((tmp_path / "t.json").read_text())
    assert t["format"] == "lowprob.targets/1" and t["targets"]
    for e in t["targets"]:
        assert e["p"] == truth.probs[e["token"]] and e["p_low"] <= e["p"] <= e["p_high"]
    # --samples and --exact together, or neither, are clear errors
    assert _cli(tmp_path, spec_path, "--samples", "10")[0] == 2
    assert main(["lm", "ground-truth", "--model", str(tmp_path / "m"), "--dist", str(spec_path),
                 "--out", str(tmp_path / "x.json")]) == 2
    assert "--samples" in capsys.readouterr().err


def test_reexport_and_targets(tmp_path):
    assert reexported is exact_argmax
    ad = HFAdapter(tiny_gpt2(n_layer=1, vocab=V, d=16))
    r = exact_argmax(ad, _spec((15, 15, 15), const_mid=False))
    sel = select_exact_targets(r, n_targets=3, p_min=1e-6, p_max=0.5, seed=0)
    assert sel == select_exact_targets(r, n_targets=3, p_min=1e-6, p_max=0.5, seed=0)
    assert all(1e-6 <= r.probs[t] <= 0.5 for t in sel) and len(sel) == 3
    path = save_exact_targets(tmp_path / "t.json", r, sel, family="x")
    assert [e["token"] for e in json.loads(path.read_text())["targets"]] == sel


@pytest.mark.parametrize("model", ["gelu-1l", "gelu-2l"])
def test_shipped_exact_suites_are_consistent(model):
    """Every shipped suite: hashes match the spec and model, probs sum to 1, targets are exact, in
    [1e-9, 1e-5] with narrow intervals, and ``lm bench``'s loader reads them."""
    from lowprob.lm_bridge.adapters.loading import model_hash
    from lowprob.lm_bridge.bench import load_cases
    from lowprob.lm_bridge.exact_truth import shipped_exact_dir
    from lowprob.lm_bridge.families import DEV_FAMILIES, HELDOUT_FAMILIES
    from lowprob.lm_bridge.zoo import shipped_model_dir

    d = shipped_exact_dir(model)
    mhash = model_hash(shipped_model_dir(model))
    files = sorted(d.glob("targets_*.json"))
    fams = {f.stem.removeprefix("targets_") for f in files}
    assert fams == set(DEV_FAMILIES + HELDOUT_FAMILIES)  # all 8 families are shipped
    n = 0
    for tpath in files:
        fam = tpath.stem.removeprefix("targets_")
        spec = TokenSpec.load(shipped_exact_dir() / "specs" / f"{fam}.json", vocab_size=4096)
        truth = ExactTruth.load(d / f"{fam}.json")
        assert truth.spec_hash == spec.spec_hash() and truth.model_hash == mhash
        assert truth.n_inputs == spec.support_size() >= 2**20
        assert abs(truth.probs.sum() - 1) < 1e-9 and truth.probs.size == 4096
        slack = 1e-12 * truth.probs  # low, probs and high are float64 sums in different orders
        assert np.all(truth.probs_low <= truth.probs + slack) and np.all(truth.probs <= truth.probs_high + slack)
        t = json.loads(tpath.read_text())
        assert t["spec_hash"] == spec.spec_hash() and t["model_hash"] == mhash and t["family"] == fam
        for e in t["targets"]:
            assert 1e-9 <= e["p"] <= 1e-5 and e["p"] == truth.probs[e["token"]]
            assert e["p_high"] - e["p_low"] <= 0.01 * e["p"]
        n += len(t["targets"])
    cases = load_cases(d, shipped_exact_dir() / "specs", model_hash=mhash)
    assert len(cases) == n > 0
