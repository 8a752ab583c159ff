"""Structured SSM pruning: a genuinely smaller model that stock transformers reloads, and whose
outputs equal the masked (same-shape) model's."""

import pytest
import torch

from effeval.errors import ConfigError
from effeval.methods.pruned_ssm.api import PruneSpec, prune_model
from effeval.methods.pruned_ssm.structured import structure_scores, weight_scores

CASES = [
    ("mamba", "dstate", {"state_size": 4}),
    ("mamba2", "dstate", {"state_size": 4}),
    ("mamba2", "headdim", {"head_dim": 4, "expand": 1}),
    ("mamba2", "heads", {"num_heads": 4, "expand": 1}),
]


# every structure once, every criterion once (the criterion only changes which indices are kept)
@pytest.mark.parametrize(
    "kind,method,smaller,criterion",
    [
        (*CASES[0], "magnitude"),
        (*CASES[1], "taylor-second"),
        (*CASES[2], "random"),
        (*CASES[3], "taylor-first"),
        (*CASES[3], "taylor-second"),
    ],
)
def test_shrunk_model_reloads_and_matches_masked(kind, method, smaller, criterion, tiny, calib_ids, tmp_path):
    from transformers import AutoModelForCausalLM

    # eps -> 0 isolates the one inexact term: the gated RMSNorm's epsilon over fewer channels
    dense = tiny(kind, eps=1e-12)
    masked = tiny(kind, eps=1e-12)
    masked.load_state_dict(dense.state_dict())
    spec = dict(method=method, sparsity=0.5, criterion=criterion, seed=1)
    shrunk = prune_model(dense, spec=PruneSpec(**spec), input_ids=calib_ids, progress=False)
    prune_model(masked, spec=PruneSpec(**spec, shrink=False), input_ids=calib_ids, progress=False)
    shrunk.model.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(reloaded) is type(dense)
    for field, value in smaller.items():
        assert getattr(reloaded.config, field) == value
    assert shrunk.report["params_after"] < shrunk.report["params_before"]
    assert sum(p.numel() for p in reloaded.parameters()) == shrunk.report["params_after"]
    with torch.no_grad():
        got = reloaded(input_ids=calib_ids, use_cache=False).logits
        want = masked(input_ids=calib_ids, use_cache=False).logits
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_default_epsilon_stays_within_float_tolerance(tiny, calib_ids):
    """At the usual eps=1e-5 the shrunk Mamba2 differs from the masked one only through eps."""
    dense, masked = tiny("mamba2"), tiny("mamba2")
    masked.load_state_dict(dense.state_dict())
    shrunk = prune_model(dense, spec=PruneSpec("heads", 0.5, criterion="magnitude"), progress=False).model
    prune_model(masked, spec=PruneSpec("heads", 0.5, criterion="magnitude", shrink=False), progress=False)
    with torch.no_grad():
        a = torch.log_softmax(shrunk(input_ids=calib_ids).logits, -1)
        b = torch.log_softmax(masked(input_ids=calib_ids).logits, -1)
    assert (a - b).abs().max() < 0.2  # random tiny weights: activations near eps, the worst case


def test_magnitude_keeps_the_heaviest_states(tiny):
    model = tiny("mamba")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    res = prune_model(model, spec=PruneSpec("dstate", 0.5, criterion="magnitude"), progress=False)
    N, rank = 8, 8
    for layer, keep in enumerate(res.report["kept"]):
        xp = before[f"backbone.layers.{layer}.mixer.x_proj.weight"]
        a = before[f"backbone.layers.{layer}.mixer.A_log"]
        energy = xp[rank : rank + N].pow(2).sum(1) + xp[rank + N :].pow(2).sum(1) + a.pow(2).sum(0)
        assert sorted(keep["states"]) == sorted(torch.topk(energy, 4).indices.tolist())


def test_taylor_scores_use_loss_gradients(tiny, calib_ids):
    model = tiny("mamba2")
    first = weight_scores(model, "taylor-first", calib_ids, progress=False)
    ids = calib_ids
    model.zero_grad()
    model(input_ids=ids, labels=ids).loss.backward()
    w = model.backbone.layers[0].mixer.in_proj.weight
    torch.testing.assert_close(
        first["backbone.layers.0.mixer.in_proj.weight"], (w.grad * w).abs().detach(), rtol=1e-4, atol=1e-7
    )
    assert structure_scores(model, "mamba2", 0, first)["heads"].shape == (8,)


def test_inexpressible_ratio_is_refused_but_mask_only_works(tiny):
    model = tiny("mamba2")
    with pytest.raises(ConfigError, match="expand"):
        prune_model(model, spec=PruneSpec("headdim", 0.25, criterion="magnitude"), progress=False)
    res = prune_model(
        model, spec=PruneSpec("headdim", 0.25, criterion="magnitude", shrink=False), progress=False
    )
    assert res.model is model and res.report["params_after"] == res.report["params_before"]
    assert res.report["nonzero_params"] < res.report["nonzero_params_before"]


def test_mamba_v1_has_no_heads(tiny):
    with pytest.raises(ConfigError, match="no heads"):
        prune_model(tiny("mamba"), spec=PruneSpec("heads", 0.5, criterion="magnitude"), progress=False)
