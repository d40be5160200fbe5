"""Shared tiny models for the LM-bridge tests (randomly initialised, seeded, CPU)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

__all__ = ["local_torch_seed", "tiny_gpt2", "tiny_neox", "save_tiny"]


@contextmanager
def local_torch_seed(seed: int) -> Iterator[None]:
    """Seed torch's global generator *inside* the block only (``torch.random.fork_rng``).

    Model constructors (``GPT2LMHeadModel(cfg)``, ``HookedTransformer``) draw their initial
    weights from the global generator and take no ``Generator``; forking keeps the weights
    reproducible while every other test sees the global state unchanged (no global seeding).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def tiny_gpt2(*, vocab: int = 16, n_layer: int = 1, d: int = 16, n_ctx: int = 8, seed: int = 0):
    """A random GELU GPT-2 (``transformers.GPT2LMHeadModel``) in eval mode.

    Weights use std 0.3 (not GPT-2's 0.02) so the argmax actually varies with the input.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        vocab_size=vocab, n_positions=n_ctx, n_embd=d, n_layer=n_layer, n_head=2,
        activation_function="gelu", bos_token_id=0, eos_token_id=0, initializer_range=0.3,
    )
    with local_torch_seed(seed):
        return GPT2LMHeadModel(cfg).eval()


def tiny_neox(*, vocab: int = 16, n_layer: int = 2, d: int = 16, n_ctx: int = 8, seed: int = 0):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    cfg = GPTNeoXConfig(
        vocab_size=vocab, max_position_embeddings=n_ctx, hidden_size=d, num_hidden_layers=n_layer,
        num_attention_heads=2, intermediate_size=4 * d, bos_token_id=0, eos_token_id=0, initializer_range=0.3,
    )
    with local_torch_seed(seed):
        return GPTNeoXForCausalLM(cfg).eval()


def save_tiny(model, directory: Path) -> Path:
    """Save as a local HF directory (config.json + model.safetensors)."""
    model.save_pretrained(directory)
    return Path(directory)
