"""The WhestBench export: a single file importing only flopscope, whestbench and the stdlib,
generated from lowprob's own modules, predicting exactly what the in-package estimators do."""

import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("whestbench")

import flopscope as flops  # noqa: E402
import flopscope.numpy as fnp  # noqa: E402
from whestbench.generation import sample_mlp  # noqa: E402

from lowprob.errors import BudgetError, InputValueError  # noqa: E402
from lowprob.integrations import whestbench as adapter  # noqa: E402
from lowprob.integrations.whestbench_export import (  # noqa: E402
    export_estimator,
    exported_imports,
    render_estimator,
)

ROOT = Path(__file__).resolve().parents[1]


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the file executes
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    paths = {cls: export_estimator(tmp_path_factory.mktemp(cls), class_name=cls)
             for cls in ("DesignEstimator", "KpropEstimator", "AutoEstimator")}
    mods = {cls: _load(p, f"lowprob_exported_{cls}") for cls, p in paths.items()}
    return paths["DesignEstimator"], mods


def test_exported_file_imports_only_flopscope_whestbench_and_stdlib(exported):
    path, _ = exported
    mods = exported_imports(path.read_text())
    assert "flopscope" in mods and "whestbench" in mods
    assert not (mods - {"flopscope", "whestbench", "__future__"} - set(sys.stdlib_module_names)), mods
    assert not {"numpy", "scipy", "torch", "lowprob"} & mods


def test_export_is_generated_from_the_package_source():
    text = render_estimator()
    # the loop, the kernels and the estimators appear verbatim
    import inspect

    from lowprob.array_kernels import cumulant_steps, designs
    from lowprob.propagation import loop

    for fn in (loop.propagate, loop.deduce, cumulant_steps.linear_rule, designs._batch_sums):
        assert inspect.getsource(fn).strip() in text


@pytest.mark.parametrize("cls", ["DesignEstimator", "KpropEstimator", "AutoEstimator"])
def test_exported_predictions_equal_in_package_to_1e9(exported, cls):
    _, mods = exported
    mod = mods[cls]
    # exactly one estimator class per file (WhestBench's loader auto-detects it)
    from whestbench import BaseEstimator

    found = [v for v in vars(mod).values()
             if isinstance(v, type) and issubclass(v, BaseEstimator) and v is not BaseEstimator]
    assert [c.__name__ for c in found] == [cls]
    mlp = sample_mlp(32, 3, fnp.random.default_rng(7), seed=11)
    budget = 3 * 10**7  # DesignEstimator: 0.1 of it = a few designs; Kprop: kprop3-struct fits
    outs = []
    for est in (getattr(mod, cls)(), getattr(adapter, cls)()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with flops.BudgetContext(flop_budget=budget, quiet=True) as ctx:
                out = est.predict(mlp, budget)
        assert 0 < ctx.flops_used <= budget
        outs.append(np.asarray(out, dtype=np.float64))
    assert outs[0].shape == (3, 32)
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-9)


@pytest.mark.parametrize("cls", ["DesignEstimator", "KpropEstimator", "AutoEstimator"])
def test_tiny_budget_raises_in_package_and_gives_the_prior_in_the_export(exported, cls):
    """In-package: BudgetError before any work. Exported: the zero-work mean-field prior
    (``whest validate`` probes predict with 100 FLOPs and must get an answer)."""
    mod = exported[1][cls]
    mlp = sample_mlp(32, 3, fnp.random.default_rng(7), seed=11)
    with flops.BudgetContext(flop_budget=10**9, quiet=True) as ctx:
        with pytest.raises(BudgetError, match="too small"):
            getattr(adapter, cls)().predict(mlp, 1000)
    assert ctx.flops_used == 0
    with flops.BudgetContext(flop_budget=100, quiet=True) as ctx:
        out = getattr(mod, cls)().predict(mlp, 100)
    assert ctx.flops_used <= 100
    np.testing.assert_allclose(np.asarray(out), np.full((3, 32), 1 / np.sqrt(np.pi)), rtol=1e-6)
    with pytest.raises(mod.BudgetError):  # the bundled copy; cannot even write the answer
        getattr(mod, cls)().predict(mlp, 10)


def test_cli_writes_the_file_and_refuses_to_overwrite(tmp_path, capsys):
    import argparse

    from lowprob.integrations.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["whestbench", "export", "--out", str(tmp_path)])
    assert args.func(args) == 0
    assert (tmp_path / "estimator.py").read_text() == render_estimator()
    with pytest.raises(InputValueError, match="--force"):
        args.func(args)
    args = parser.parse_args(["whestbench", "export", "--out", str(tmp_path), "--force"])
    assert args.func(args) == 0
    assert "lowprob.integrations.cli" in (ROOT / "lowprob" / "cli.py").read_text()
    with pytest.raises(InputValueError, match="class_name"):
        render_estimator("NoSuchEstimator")


def test_adapter_import_is_light():
    """The adapter must not import scipy/torch (WhestBench's setup limit); checked in a fresh process."""
    code = ("import sys, lowprob.integrations.whestbench; "
            "print(sorted(m for m in ('scipy', 'torch', 'transformers') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_budget_error_is_lowprob_error_in_package():
    mlp = sample_mlp(16, 2, fnp.random.default_rng(1))
    with pytest.raises(BudgetError, match="antithetic pair"):
        adapter.DesignEstimator().predict(mlp, 10)
