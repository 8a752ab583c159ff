"""FLAP's adaptive structure search (AL-AM: per-layer standardised scores ranked globally, weighted
by parameters) beside the uniform one (UL-UM), on tiny Llama / Qwen2 models built in-process."""

import copy

import numpy as np
import pytest
import torch

from effeval.errors import ConfigError
from effeval.methods.pruned_ssm.api import PruneSpec, prune_model
from effeval.methods.pruned_ssm.flap import alam_select


def tiny_decoder(kind: str = "llama", seed: int = 0, layers: int = 2):
    import transformers as tf

    torch.manual_seed(seed)
    shape = dict(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=4,
        max_position_embeddings=64,
    )
    if kind == "qwen2":
        return tf.Qwen2ForCausalLM(tf.Qwen2Config(**shape, tie_word_embeddings=True)).eval()
    return tf.LlamaForCausalLM(tf.LlamaConfig(**shape)).eval()


@pytest.fixture
def ids():
    return torch.randint(0, 64, (4, 12), generator=torch.Generator().manual_seed(1))


def test_alam_selection_by_hand():
    """Two layers; KV groups of 2 channels (weight 2 parameters), MLP channels (weight 1).
    Attention channel scores, squared, standardised per layer (unbiased std), then group means:
      layer 0: [1,1,2,2] -> [1,1,4,4], mean 2.5, std sqrt(3) -> groups [-0.866, +0.866]
      layer 1: [0,3,1,1] -> [0,9,1,1], mean 2.75, std 4.193 -> [-0.656,1.491,-0.417,-0.417]
               -> groups [+0.417, -0.417]
    MLP channel scores standardised per layer:
      layer 0: [1,2,3] -> [-1, 0, 1];  layer 1: [10,20,60] -> mean 30, std 26.46 -> [-0.756,-0.378,1.134]
    Global descending order (weights): M1c2 1.134 (1), M0c2 1 (1), H0g1 0.866 (2), H1g0 0.417 (2),
    M0c1 0 (1), ... Cumulative kept parameters 1, 2, 4, 6, 7, ... of 14; ratio 0.5 -> target 7 is
    reached at M0c1, which (as in the reference, scores strictly above the threshold) is removed.
    Kept: layer 0 group 1 and channel 2; layer 1 group 0 and channel 2.
    Unstandardised sums instead (groups [2,4] / [3,2], channels as given) would rank layer 1's
    channels 60, 20, 10 first and keep a different set."""
    heads, channels, head_units, channel_units = alam_select(
        [torch.tensor([1.0, 1, 2, 2]), torch.tensor([0.0, 3, 1, 1])],
        [torch.tensor([1.0, 2, 3]), torch.tensor([10.0, 20, 60])],
        group=2,
        head_params=2,
        channel_params=1,
        ratio=0.5,
    )
    assert [h.tolist() for h in heads] == [[1], [0]]
    assert [c.tolist() for c in channels] == [[2], [2]]
    assert head_units[0].tolist() == pytest.approx([-0.8660, 0.8660], abs=1e-4)
    assert head_units[1].tolist() == pytest.approx([0.4173, -0.4173], abs=1e-4)
    assert channel_units[1].tolist() == pytest.approx([-0.7559, -0.3780, 1.1339], abs=1e-4)


def _captured_inputs(model, ids):
    """Inputs to every layer's o_proj and down_proj, captured by this test's own hooks."""
    captured, hooks = {}, []
    for i, layer in enumerate(model.model.layers):
        for name, mod in (("o", layer.self_attn.o_proj), ("d", layer.mlp.down_proj)):
            hooks.append(
                mod.register_forward_hook(
                    lambda m, a, o, key=(i, name): captured.setdefault(key, []).append(
                        a[0].reshape(-1, a[0].shape[-1]).double().numpy()
                    )
                )
            )
    with torch.no_grad():
        model(input_ids=ids, use_cache=False)
    for h in hooks:
        h.remove()
    return {k: np.concatenate(v) for k, v in captured.items()}


def _hand_alam(model, ids, ratio, mutated=False):
    """AL-AM recomputed in numpy: WIFV scores; attention squared, standardised per layer, mean per
    KV group (2 query heads x head_dim 4 = 8 channels); MLP standardised per layer; global ranking
    weighted by parameters (KV group 6*4*16 = 384, MLP channel 3*16 = 48). ``mutated``: the wrong
    aggregation (plain sum per group, no squares, no standardisation)."""
    x = _captured_inputs(copy.deepcopy(model), ids)
    units = []  # (score, weight, kind, layer, index)
    for i, layer in enumerate(model.model.layers):
        for name, mod, kind in (("o", layer.self_attn.o_proj, "h"), ("d", layer.mlp.down_proj, "c")):
            w = mod.weight.detach().double().numpy()
            s = x[(i, name)].var(axis=0, ddof=1) * (w**2).sum(axis=0)
            if kind == "h":
                s = s.reshape(-1, 8).sum(1) if mutated else ((s**2 - (s**2).mean()) / (s**2).std(ddof=1))
                s = s if mutated else s.reshape(-1, 8).mean(1)
            elif not mutated:
                s = (s - s.mean()) / s.std(ddof=1)
            units += [(v, 384 if kind == "h" else 48, kind, i, j) for j, v in enumerate(s)]
    order = sorted(units, key=lambda u: -u[0])
    cum = np.cumsum([u[1] for u in order])
    cut = int(np.argmin(np.abs(cum - cum[-1] * (1 - ratio))))
    kept = {(u[2], u[3], u[4]) for u in order[:cut]}
    layers = len(model.model.layers)
    return [
        {
            "heads": sorted(j for k, i2, j in kept if k == "h" and i2 == i),
            "channels": sorted(j for k, i2, j in kept if k == "c" and i2 == i),
        }
        for i in range(layers)
    ]


def test_alam_matches_numpy_recomputation_on_a_tiny_model(ids):
    model = tiny_decoder(layers=3)
    want = _hand_alam(model, ids, 0.5)
    res = prune_model(
        copy.deepcopy(model),
        spec=PruneSpec("flap", 0.5, flap_structure="al-am", shrink=False),
        input_ids=ids,
        progress=False,
    )
    assert res.report["kept"] == want
    assert res.report["flap_structure"] == "al-am"


def _unbalanced(model):
    """Layer 1's o_proj and down_proj scaled by 10: its WIFV scores grow 100x, which the per-layer
    standardisation removes but an unstandardised global ranking does not."""
    with torch.no_grad():
        model.model.layers[1].self_attn.o_proj.weight.mul_(10)
        model.model.layers[1].mlp.down_proj.weight.mul_(10)
    return model


def test_alam_head_aggregation_mutation_changes_the_kept_set(ids):
    """On a model built so that it matters (one layer's scores 100x the other's), the mutated
    aggregation (sum instead of sum of squares, no standardisation) keeps a different set than
    AL-AM, and prune_model keeps AL-AM's set: an implementation with the mutation fails here."""
    model = _unbalanced(tiny_decoder())
    want = _hand_alam(model, ids, 0.5)
    mutated = _hand_alam(model, ids, 0.5, mutated=True)
    assert want != mutated  # the model is built for the mutation to show
    assert not mutated[0]["channels"]  # unstandardised: layer 0 loses every MLP channel
    res = prune_model(
        copy.deepcopy(model),
        spec=PruneSpec("flap", 0.5, flap_structure="al-am", shrink=False),
        input_ids=ids,
        progress=False,
    )
    assert res.report["kept"] == want


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
@pytest.mark.parametrize("structure", ["al-am", "ul-um"])
def test_flap_shrunk_checkpoint_equals_masked_and_reloads(kind, structure, ids, tmp_path):
    """The shrunk checkpoint (AL-AM: narrower layers padded with zeroed structures to the widest
    layer's width; Qwen2: written as a Llama with attention/MLP biases for the compensation) gives
    the masked model's logits and reloads with stock AutoModelForCausalLM.from_pretrained with the
    same logits; the per-layer-width in-memory model gives them too."""
    from transformers import AutoModelForCausalLM

    from effeval.methods.pruned_ssm.flap import per_layer_shrunk

    dense = _unbalanced(tiny_decoder(kind, layers=3))
    spec = dict(flap_structure=structure)
    masked_res = prune_model(
        copy.deepcopy(dense), spec=PruneSpec("flap", 0.5, shrink=False, **spec), input_ids=ids, progress=False
    )
    res = prune_model(
        copy.deepcopy(dense), spec=PruneSpec("flap", 0.5, **spec), input_ids=ids, progress=False
    )
    widths = [k["channels"] for k in res.report["kept_per_layer"]]
    if structure == "al-am":
        assert len(set(widths)) > 1  # per-layer widths differ: the padding is exercised
    assert res.report["params_after"] < res.report["params_before"]
    res.model.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    from effeval.methods.pruned_ssm.flap import collect_stats, plan_decoder

    stats = collect_stats(dense, "decoder", ids, progress=False)
    plan = plan_decoder(dense, stats, 0.5, "wifv", "all", structure)
    exact = per_layer_shrunk(dense, plan)
    with torch.no_grad():
        want = masked_res.model(input_ids=ids).logits
        got = res.model(input_ids=ids).logits
        again = reloaded(input_ids=ids).logits
        per_layer = exact(input_ids=ids).logits
        base = dense(input_ids=ids).logits
    assert (want - base).abs().max() > 1e-3  # pruning changed the model
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(again, got, atol=0, rtol=0)
    torch.testing.assert_close(per_layer, want, atol=1e-5, rtol=1e-4)
    if structure == "al-am":
        assert sum(p.numel() for p in exact.parameters()) < res.report["params_after"]


def test_unknown_flap_structure_is_one_line():
    with pytest.raises(
        ConfigError, match=r"^flap_structure: unknown 'ALAM-x'\. Fix: use one of ul-um, al-am"
    ) as e:
        PruneSpec("flap", 0.5, flap_structure="ALAM-x").validated()
    assert "\n" not in str(e.value)
    assert PruneSpec("flap", 0.5, flap_structure="AL_AM").validated().flap_structure == "al-am"
