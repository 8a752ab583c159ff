"""Mamba2 structured selection against its criterion, with hand-computed expected selections.

A tiny Mamba2 (hidden 8, 4 heads of head_dim 4 in 2 groups, d_state 4) has every mixer weight
zero except the ones each test plants, so the magnitude criterion (squared weights) of each
structure is known by hand and so is the kept set. The planted values are chosen so that the
wrong rule picks another set: a global top-k instead of per head (head-dim), per model instead of
per group (heads and d_state), or the least important structures instead of the most (checked:
replacing the per-group top-k with a global one fails all three).
"""

from __future__ import annotations

import pytest
import torch

from effeval.methods.pruned_ssm.structured import select, weight_scores

HIDDEN, HEADS, HEAD_DIM, GROUPS, STATE = 8, 4, 4, 2, 4
INNER = HEADS * HEAD_DIM  # 16


@pytest.fixture
def zeroed():
    from transformers import Mamba2Config, Mamba2ForCausalLM

    torch.manual_seed(0)
    config = Mamba2Config(
        vocab_size=16,
        hidden_size=HIDDEN,
        expand=2,
        num_heads=HEADS,
        head_dim=HEAD_DIM,
        n_groups=GROUPS,
        state_size=STATE,
        num_hidden_layers=1,
        conv_kernel=4,
    )
    model = Mamba2ForCausalLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".mixer." in name:
                p.zero_()
    return model, model.backbone.layers[0].mixer


def _plan(model, structure):
    (keep,) = select(model, "mamba2", structure, 0.5, "magnitude", weight_scores(model, "magnitude"))
    return keep


def test_heads_keep_the_heaviest_head_of_each_group(zeroed):
    model, mixer = zeroed
    # out_proj columns of head h all weigh w[h]: the head's score is 4 columns x 8 rows x w[h]^2.
    # Groups are heads {0, 1} and {2, 3}; half of each group is kept -> heads 0 and 3.
    # (a global top-2 would keep 2 and 3; the lightest per group would keep 1 and 2)
    weights = [3.0, 1.0, 4.0, 5.0]
    with torch.no_grad():
        for h, w in enumerate(weights):
            mixer.out_proj.weight[:, h * HEAD_DIM : (h + 1) * HEAD_DIM] = w
    keep = _plan(model, "heads")
    assert keep.heads.tolist() == [0, 3]
    assert keep.channels.tolist() == [0, 1, 2, 3, 12, 13, 14, 15]


def test_head_dim_keeps_the_heaviest_channels_within_each_head(zeroed):
    model, mixer = zeroed
    # channel weights per head; head 0 is much heavier, so a global top-8 would keep all of head 0
    per_head = [[10.0, 40.0, 20.0, 30.0], [4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 1.5, 0.5]]
    with torch.no_grad():
        for h, row in enumerate(per_head):
            for j, w in enumerate(row):
                mixer.out_proj.weight[:, h * HEAD_DIM + j] = w
    keep = _plan(model, "headdim")
    # head 0: 40, 30 -> 1, 3; head 1: 4, 3 -> 0, 1; head 2: 3, 4 -> 2, 3; head 3: 2, 1.5 -> 0, 2
    assert keep.channels.tolist() == [1, 3, 4, 5, 10, 11, 12, 14]
    assert keep.heads is None


def test_d_state_keeps_the_heaviest_states_of_each_group(zeroed):
    model, mixer = zeroed
    # in_proj rows [z (16) | x (16) | B (2 groups x 4) | C (2 x 4) | dt (4)]; B's row of state s
    # in group g weighs b[g][s]. Group 1 is heavier: a top-4 over both groups would keep only it.
    b = [[2.0, 0.5, 3.0, 1.0], [9.0, 7.0, 8.0, 6.0]]
    with torch.no_grad():
        for g in range(GROUPS):
            for s in range(STATE):
                mixer.in_proj.weight[2 * INNER + g * STATE + s, :] = b[g][s]
    keep = _plan(model, "dstate")
    # group 0: 3.0, 2.0 -> states 2, 0; group 1: 9.0, 8.0 -> states 0, 2 (flat 4, 6)
    assert keep.states.tolist() == [0, 2, 4, 6]
