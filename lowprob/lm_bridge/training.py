"""Train the shipped byte-level BPE tokenizer and the small GELU GPT-2-format transformers.

Recipe (``lowprob lm train`` runs it; defaults reproduce the shipped files given the same
local text, see :mod:`lowprob.lm_bridge.corpus`):

1. Build the corpus (code / English / Spanish text found locally).
2. Train a byte-level BPE tokenizer (HF ``tokenizers``) of ``vocab_size`` entries on all three,
   with ``<|endoftext|>`` as id 0 (used as BOS and document separator).
3. Train ``GPT2LMHeadModel`` (exact-erf GELU, no dropout, tied embeddings) with AdamW on
   sequences ``[BOS] + (n_ctx - 1)`` tokens cut at random offsets from a stream chosen with
   probabilities ``mix`` (code, English, Spanish); loss is next-token cross-entropy
   ``-mean_t log softmax(logits_t)[x_{t+1}]`` in nats. The last 2% of each stream is held out.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lowprob._validation import check_int
from lowprob.lm_bridge.corpus import EOT

__all__ = ["ModelRecipe", "SHIPPED_RECIPES", "encode_corpus", "train_model", "train_tokenizer", "write_model_card"]


@dataclass(frozen=True)
class ModelRecipe:
    """Architecture and optimisation settings of one shipped model."""

    name: str
    n_layer: int
    d_model: int = 128
    n_head: int = 4
    n_ctx: int = 48
    steps: int = 3000
    batch_size: int = 16
    lr: float = 3e-3
    warmup: int = 100
    weight_decay: float = 0.01
    mix: Mapping[str, float] = field(default_factory=lambda: {"code": 0.5, "english": 0.45, "spanish": 0.05})
    seed: int = 0


SHIPPED_RECIPES: dict[str, ModelRecipe] = {
    "gelu-1l": ModelRecipe(name="gelu-1l", n_layer=1),
    "gelu-2l": ModelRecipe(name="gelu-2l", n_layer=2, steps=1200),
}


def train_tokenizer(text_paths: list[Path], vocab_size: int = 4096, out_path: Path | None = None) -> Any:
    """Byte-level BPE (GPT-2 style pre-tokenisation) with ``<|endoftext|>`` as id 0."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    vocab_size = check_int("vocab_size", vocab_size, minimum=300)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train([str(p) for p in text_paths], trainer)
    if out_path is not None:
        tok.save(str(out_path))
    return tok


def encode_corpus(tokenizer: Any, text_path: Path) -> np.ndarray:
    """Token ids of a corpus file (``uint16``); documents separated by the EOT id."""
    text = Path(text_path).read_text(encoding="utf-8")
    eot = tokenizer.token_to_id(EOT)
    ids: list[int] = []
    docs = [d for d in text.split(EOT) if d.strip()]
    for i in range(0, len(docs), 256):
        for enc in tokenizer.encode_batch([d.strip("\n") for d in docs[i : i + 256]]):
            ids.extend(enc.ids)
            ids.append(eot)
    return np.asarray(ids, dtype=np.uint16)


def _batch(streams: dict[str, np.ndarray], names: list[str], probs: np.ndarray, rng: np.random.Generator,
           batch: int, n_ctx: int, bos: int) -> torch.Tensor:
    which = rng.choice(len(names), size=batch, p=probs)
    out = np.empty((batch, n_ctx), dtype=np.int64)
    out[:, 0] = bos
    for b, k in enumerate(which):
        s = streams[names[k]]
        o = int(rng.integers(0, len(s) - n_ctx))
        out[b, 1:] = s[o : o + n_ctx - 1]
    return torch.from_numpy(out)


def _eval_loss(model: Any, stream: np.ndarray, n_ctx: int, bos: int, max_windows: int = 64) -> float:
    n = min(max_windows, (len(stream) - 1) // (n_ctx - 1))
    x = np.full((n, n_ctx), bos, dtype=np.int64)
    for i in range(n):
        x[i, 1:] = stream[i * (n_ctx - 1) : (i + 1) * (n_ctx - 1)]
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(x), labels=torch.from_numpy(x))
    return float(out.loss)


def train_model(
    recipe: ModelRecipe,
    streams: Mapping[str, np.ndarray],
    vocab_size: int,
    out_dir: Path,
    *,
    bos: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one model per ``recipe`` and save it (safetensors) to ``out_dir``; returns the log."""
    from transformers import GPT2Config, GPT2LMHeadModel

    rng = np.random.default_rng(recipe.seed)
    cfg = GPT2Config(
        vocab_size=vocab_size,
        n_positions=recipe.n_ctx,
        n_embd=recipe.d_model,
        n_layer=recipe.n_layer,
        n_head=recipe.n_head,
        activation_function="gelu",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=bos,
        eos_token_id=bos,
        tie_word_embeddings=True,
    )
    # HF initialises from torch's global generator: seed it inside fork_rng, which restores the
    # caller's global RNG state afterwards (no global seeding leaks out; the weights are the same
    # as with a plain manual_seed, so the shipped models stay reproducible). Dropout is 0 and
    # batches come from ``rng``, so nothing else draws from torch's generator.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = GPT2LMHeadModel(cfg)
    train, held = {}, {}
    for k, s in streams.items():
        cut = int(len(s) * 0.98)
        train[k], held[k] = s[:cut], s[cut:]
    names = [k for k in recipe.mix if k in train]
    probs = np.array([recipe.mix[k] for k in names], dtype=np.float64)
    probs /= probs.sum()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr, betas=(0.9, 0.98),
    )

    def lr_at(step: int) -> float:
        if step < recipe.warmup:
            return recipe.lr * (step + 1) / recipe.warmup
        frac = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
        return recipe.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    history = []
    t0 = time.perf_counter()
    ema = None
    model.train()
    for step in range(recipe.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x = _batch(train, names, probs, rng, recipe.batch_size, recipe.n_ctx, bos)
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        lv = float(loss.detach())
        ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        if step % 100 == 0 or step == recipe.steps - 1:
            history.append({"step": step, "train_loss_ema": ema, "seconds": time.perf_counter() - t0})
            log(f"[{recipe.name}] step {step:5d}  loss(ema) {ema:.3f}  {time.perf_counter() - t0:.0f}s")
    model.eval()
    held_loss = {k: _eval_loss(model, s, recipe.n_ctx, bos) for k, s in held.items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    for extra in ("generation_config.json",):
        (out_dir / extra).unlink(missing_ok=True)
    record = {
        "recipe": {**asdict(recipe), "mix": dict(recipe.mix)},
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "tokens_seen": recipe.steps * recipe.batch_size * (recipe.n_ctx - 1),
        "train_seconds": time.perf_counter() - t0,
        "torch_threads": torch.get_num_threads(),
        "final_train_loss_ema": ema,
        "heldout_loss": held_loss,
        "history": history,
    }
    (out_dir / "training_log.json").write_text(json.dumps(record, indent=1))
    return record


def write_model_card(out_dir: Path, record: Mapping[str, Any], corpus_manifest: Mapping[str, Any],
                     tokenizer_info: Mapping[str, Any]) -> Path:
    """Write ``MODEL_CARD.md``: data, architecture, steps, losses and the command that made it."""
    r = record["recipe"]
    corpora = "\n".join(
        f"| {c['name']} | {c['n_bytes']:,} | {c['n_documents']:,} | {', '.join(f'{k}: {v}' for k, v in c['sources'].items())} | {c['sha256']} |"
        for c in corpus_manifest["corpora"]
    )
    held = ", ".join(f"{k} {v:.3f}" for k, v in record["heldout_loss"].items())
    text = f"""# {r['name']}: a {r['n_layer']}-layer GELU transformer (GPT-2 format)

Trained by `lowprob lm train --name {r['name']}` on CPU ({record['torch_threads']} thread) for the
low-probability-estimation benchmark (Wu & Hilton 2024, arXiv 2410.13211). It is a tiny research
model, not a useful language model.

## Architecture
`transformers.GPT2LMHeadModel`: {r['n_layer']} block(s), d_model {r['d_model']}, {r['n_head']} heads,
d_mlp {4 * r['d_model']}, exact (erf) GELU, learned absolute positions, context {r['n_ctx']},
pre-LayerNorm, tied embedding/unembedding, no unembedding bias, no dropout;
{record['n_parameters']:,} parameters, float32 safetensors.

## Tokenizer
Byte-level BPE (HF `tokenizers`, GPT-2 pre-tokenisation, no prefix space), {tokenizer_info['vocab_size']} entries,
`<|endoftext|>` = id 0 (BOS and document separator), trained on the three corpora below.
sha256[:16] of tokenizer.json: {tokenizer_info['sha256']}.

## Data (all found locally, nothing downloaded; see `lowprob.lm_bridge.corpus`)
| corpus | bytes | documents | sources (documents) | sha256[:16] |
|---|---|---|---|---|
{corpora}

*code* is the Python {corpus_manifest.get('stdlib', '')} standard library's `.py` sources; *english* is stdlib
docstrings, man pages (roff stripped, gcloud pages excluded), license/copyright texts and gettext
`msgid` strings, balanced by bytes; *spanish* is the Spanish gettext translations and Spanish man
pages (software-interface Spanish: an approximation of Spanish text).

## Training
AdamW (betas 0.9/0.98, weight decay {r['weight_decay']} on matrices), lr {r['lr']} with {r['warmup']} warm-up
steps then cosine to 10%, gradient clipping 1.0, {r['steps']} steps of {r['batch_size']} sequences
`[BOS] + {r['n_ctx'] - 1}` tokens cut at random offsets from a stream chosen with probabilities
{dict(r['mix'])}; {record['tokens_seen']:,} training tokens; seed {r['seed']}; {record['train_seconds']:.0f} s.

Final training loss (EMA): {record['final_train_loss_ema']:.3f} nats/token.
Held-out loss (last 2% of each stream): {held} nats/token.
(Uniform over the vocabulary would be {math.log(tokenizer_info['vocab_size']):.3f}.)

Full curve: `training_log.json`.
"""
    path = Path(out_dir) / "MODEL_CARD.md"
    path.write_text(text)
    return path
