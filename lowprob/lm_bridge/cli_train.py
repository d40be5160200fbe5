"""``lowprob lm train``: rebuild the shipped tokenizer, corpus counts and models from local text.

    lowprob lm train --work-dir /tmp/lowprob-train --out ~/lowprob-models [--name gelu-1l ...]

Steps (each cached in ``--work-dir`` and skipped when its output exists):
corpus text -> tokenizer.json -> token streams -> corpus token counts -> models.

``--out`` defaults to a user directory (``$LOWPROB_HOME`` or ``~/.local/share/lowprob``), never
the installed package: the shipped models are fixed (their hashes are checked at every load,
:data:`lowprob.lm_bridge.zoo.SHIPPED_MODEL_HASHES`), and a directory inside the package is
refused. Use a trained model with ``--model <out>/models/<name>``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

__all__ = ["default_train_dir", "register", "run_train"]


def default_train_dir() -> Path:
    """Where ``lowprob lm train`` writes by default: ``$LOWPROB_HOME`` or ``~/.local/share/lowprob``."""
    home = os.environ.get("LOWPROB_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share") / "lowprob"


def _check_out_dir(out: Path) -> Path:
    """Refuse an output directory inside the installed ``lowprob`` package (it would replace the
    shipped, hash-checked models) and one that cannot be written."""
    from lowprob._io import check_writable
    from lowprob.errors import InputValueError

    package = Path(__file__).resolve().parent.parent
    resolved = out.expanduser().resolve()
    if resolved == package or package in resolved.parents:
        raise InputValueError(
            f"--out {str(out)!r} is inside the installed lowprob package ({str(package)!r}); the shipped "
            f"models are fixed. Write to a user directory instead (default {str(default_train_dir())!r})."
        )
    check_writable(resolved / "x.json", what="--out")
    return resolved


def register(lm_subparsers: argparse._SubParsersAction) -> None:
    p = lm_subparsers.add_parser("train", help="train the shipped BPE tokenizer and small GELU transformers")
    p.add_argument("--work-dir", default="lowprob-train-work", help="cache for corpus text and token streams")
    p.add_argument("--out", default=None,
                   help="data directory to write (default $LOWPROB_HOME or ~/.local/share/lowprob; "
                        "never the installed package)")
    p.add_argument("--name", action="append", choices=["gelu-1l", "gelu-2l"], help="model(s) to train (default both)")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--steps", type=int, default=None, help="override the recipe's step count")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--skip-models", action="store_true", help="only corpus, tokenizer and counts")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from lowprob._io import atomic_write_json
    from lowprob._validation import check_int
    from lowprob.lm_bridge.corpus import build_corpus, token_counts
    from lowprob.lm_bridge.training import (
        SHIPPED_RECIPES,
        encode_corpus,
        train_model,
        train_tokenizer,
        write_model_card,
    )

    check_int("--threads", args.threads, minimum=1)
    check_int("--vocab-size", args.vocab_size, minimum=256)
    if args.steps is not None:
        check_int("--steps", args.steps, minimum=1)
    out = _check_out_dir(Path(args.out) if args.out else default_train_dir())
    torch.set_num_threads(args.threads)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    kinds = ("code", "english", "spanish")
    if not (work / "manifest.json").is_file():
        print("building corpus ...", flush=True)
        build_corpus(work)
    manifest = json.loads((work / "manifest.json").read_text())
    tok_path = out / "tokenizer.json"
    if not tok_path.is_file():
        print("training tokenizer ...", flush=True)
        train_tokenizer([work / f"{k}.txt" for k in kinds], args.vocab_size, tok_path)
    from tokenizers import Tokenizer

    from lowprob.lm_bridge.adapters.loading import file_hash

    tok = Tokenizer.from_file(str(tok_path))
    V = tok.get_vocab_size()
    counts_path = out / "corpus_counts.npz"
    if not counts_path.is_file():
        print("counting tokens ...", flush=True)
        counts = {k: token_counts(tok, work / f"{k}.txt", V) for k in kinds}
        np.savez_compressed(counts_path, **counts)
        atomic_write_json(out / "corpus_manifest.json", manifest, indent=1)
    if args.skip_models:
        return 0
    streams_path = work / "streams.npz"
    if not streams_path.is_file():
        print("encoding corpus ...", flush=True)
        np.savez(streams_path, **{k: encode_corpus(tok, work / f"{k}.txt") for k in kinds})
    streams = dict(np.load(streams_path))
    for name in args.name or list(SHIPPED_RECIPES):
        recipe = SHIPPED_RECIPES[name]
        if args.steps is not None:
            recipe = replace(recipe, steps=args.steps)
        mdir = out / "models" / name
        record = train_model(recipe, streams, V, mdir)
        shutil.copyfile(tok_path, mdir / "tokenizer.json")
        write_model_card(mdir, record, manifest, {"vocab_size": V, "sha256": file_hash(tok_path)})
        print(f"wrote {mdir}", flush=True)
    return 0
