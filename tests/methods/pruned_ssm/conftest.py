"""Tiny Mamba / Mamba2 models built in-process (seconds), shared by the pruning tests."""

import pytest


def build_tiny(kind: str, eps: float = 1e-5, seed: int = 0):
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    if kind == "mamba":
        cfg = tf.MambaConfig(
            vocab_size=128,
            hidden_size=32,
            state_size=8,
            num_hidden_layers=2,
            expand=2,
            conv_kernel=4,
            time_step_rank=8,
            layer_norm_epsilon=eps,
        )
        return tf.MambaForCausalLM(cfg).eval()
    cfg = tf.Mamba2Config(
        vocab_size=128,
        hidden_size=32,
        state_size=8,
        num_hidden_layers=2,
        expand=2,
        num_heads=8,
        head_dim=8,
        n_groups=2,
        conv_kernel=4,
        chunk_size=16,
        time_step_rank=8,
        layer_norm_epsilon=eps,
    )
    return tf.Mamba2ForCausalLM(cfg).eval()


@pytest.fixture
def tiny():
    return build_tiny


@pytest.fixture(scope="session")
def calib_ids():
    import torch

    return torch.randint(0, 128, (6, 24), generator=torch.Generator().manual_seed(7))
