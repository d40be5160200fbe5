"""``lowprob sketch`` commands: output parses and matches the library."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from lowprob.errors import LowprobError
from lowprob.sketching import cli
from lowprob.sketching.funk_hecke import funk_hecke_eigenvalues, halfspace_product_profile


def main(argv: list[str]) -> int:
    """Run only the ``sketch`` commands (the full ``lowprob`` parser imports every subpackage)."""
    parser = argparse.ArgumentParser(prog="lowprob")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LowprobError as exc:
        print(f"lowprob: error: {exc}", file=sys.stderr)
        return 2


def test_cli_eigenvalues_json(capsys) -> None:
    assert main(["sketch", "eigenvalues", "--m", "3", "--L", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(out["eigenvalues"], funk_hecke_eigenvalues(halfspace_product_profile(3), 4, 5), rtol=1e-12)
    assert out["multiplicities"] == [1, 4, 9, 16, 25, 36]


def test_cli_error_and_bad_input(capsys) -> None:
    assert main(["sketch", "error", "--m", "2", "--K", "5", "--kind", "kernel", "--degree", "10", "--order", "12", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["K"] == 5 and out["lower"] <= out["error"] <= out["upper"]
    assert main(["sketch", "error", "--K", "0"]) == 2
    assert "K must be >= 1" in capsys.readouterr().err
