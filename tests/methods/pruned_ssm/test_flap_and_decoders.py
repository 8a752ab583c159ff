"""FLAP (fluctuation metrics + bias compensation) and unstructured pruning of decoder-only
transformers (Llama family: every block linear), on tiny models built in-process."""

import copy
import math

import numpy as np
import pytest
import torch

from effeval.errors import ConfigError
from effeval.methods.pruned_ssm.api import PruneSpec, prune_model
from effeval.methods.pruned_ssm.flap import FluctuationStats, channel_scores, compensation_bias


def tiny_llama(seed: int = 0, layers: int = 2):
    import transformers as tf

    torch.manual_seed(seed)
    cfg = tf.LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=4,
        max_position_embeddings=64,
    )
    return tf.LlamaForCausalLM(cfg).eval()


@pytest.fixture
def ids():
    return torch.randint(0, 64, (4, 12), generator=torch.Generator().manual_seed(1))


def test_flap_metrics_on_hand_computed_numbers():
    """Inputs X = [[1, 2], [3, 2]] (2 tokens x 2 channels), W = [[1, 1], [2, 0]]:
    mean (2, 2); fluctuation (sample variance, N-1) (2, 0); sum_i W_ij^2 = (5, 1); |X_j| = (sqrt 10,
    sqrt 8); mean_i |W_ij| = (1.5, 0.5). So IFV = (2, 0), WIFV = (10, 0), WIFN = (1.5 sqrt 10,
    0.5 sqrt 8), and removing channel 1 adds W[:, 1] * 2 = (2, 0) to the bias.
    A population variance (N in the denominator) would give WIFV (5, 0) and fail here."""
    stats = FluctuationStats()
    stats.add(torch.tensor([[1.0, 2.0]]))
    stats.add(torch.tensor([[3.0, 2.0]]))  # two calls: the running sums must combine
    w = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    assert channel_scores("ifv", stats, w).tolist() == [2.0, 0.0]
    assert channel_scores("wifv", stats, w).tolist() == [10.0, 0.0]
    wifn = channel_scores("wifn", stats, w).tolist()
    assert wifn == pytest.approx([1.5 * math.sqrt(10), 0.5 * math.sqrt(8)])
    assert compensation_bias(w, stats.mean, torch.tensor([1])).tolist() == [2.0, 0.0]


def _hand_flap(model, ids, ratio=0.5):
    """FLAP (WIFV) recomputed with numpy from inputs captured by this test's own hooks."""
    captured = {}
    hooks = []
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
    out = []
    for i, layer in enumerate(model.model.layers):
        res = {}
        for name, mod, group in (("o", layer.self_attn.o_proj, 8), ("d", layer.mlp.down_proj, 1)):
            x = np.concatenate(captured[(i, name)])
            w = mod.weight.detach().double().numpy()
            score = x.var(axis=0, ddof=1) * (w**2).sum(axis=0)
            if group > 1:  # KV group = 2 query heads x head_dim 4 channels; score = sum of squares
                score = (score**2).reshape(-1, group).sum(1)
            keep = np.sort(np.argsort(-score)[: int(len(score) * (1 - ratio))])
            removed_units = sorted(set(range(len(score))) - set(keep.tolist()))
            removed = np.array([c for u in removed_units for c in range(u * group, (u + 1) * group)])
            res[name] = (keep, w[:, removed] @ x.mean(axis=0)[removed])
        out.append(res)
    return out


def test_flap_decoder_matches_hand_computation(ids):
    """Kept KV groups / MLP channels and the compensation biases of prune_model(method=flap)
    equal a numpy recomputation from independently captured activations (a wrong metric, a
    missing square in the head aggregation or a bias from the kept channels would differ)."""
    model = tiny_llama()
    hand = _hand_flap(copy.deepcopy(model), ids)
    res = prune_model(
        copy.deepcopy(model), spec=PruneSpec("flap", 0.5, shrink=False), input_ids=ids, progress=False
    )
    masked = res.model
    for i, (layer, want) in enumerate(zip(masked.model.layers, hand)):
        assert res.report["kept"][i]["heads"] == want["o"][0].tolist()
        assert res.report["kept"][i]["channels"] == want["d"][0].tolist()
        np.testing.assert_allclose(
            layer.self_attn.o_proj.bias.detach().double().numpy(), want["o"][1], atol=1e-6
        )
        np.testing.assert_allclose(
            layer.mlp.down_proj.bias.detach().double().numpy(), want["d"][1], atol=1e-6
        )
        gone = sorted(set(range(32)) - set(want["d"][0].tolist()))
        assert torch.all(layer.mlp.up_proj.weight[gone] == 0) and torch.all(
            layer.mlp.down_proj.weight[:, gone] == 0
        )


def _tiny_mamba2():
    import transformers as tf

    torch.manual_seed(0)
    # eps ~ 0: the shrunk gated norm averages over fewer channels (see structured.py), so the
    # masked and shrunk models agree to float tolerance only up to the norm's epsilon
    cfg = tf.Mamba2Config(
        vocab_size=64,
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
        layer_norm_epsilon=1e-12,
    )
    return tf.Mamba2ForCausalLM(cfg).eval()


def _tiny_mamba():
    import transformers as tf

    torch.manual_seed(0)
    cfg = tf.MambaConfig(
        vocab_size=64, hidden_size=16, state_size=8, num_hidden_layers=2, expand=2, time_step_rank=4
    )
    return tf.MambaForCausalLM(cfg).eval()


@pytest.mark.parametrize(
    "build,units",
    [
        (tiny_llama, "all"),
        (tiny_llama, "channels"),
        (_tiny_mamba2, "heads"),
        (_tiny_mamba2, "channels"),
        (_tiny_mamba, "all"),
    ],
)
def test_flap_shrunk_checkpoint_equals_masked_and_reloads(build, units, ids, tmp_path):
    """The smaller checkpoint (compensation biases included) gives the masked model's logits,
    and stock from_pretrained reloads it with the same logits. Dropping the compensation bias from
    either side, or slicing a wrong row, breaks the equality (the pruned model is far from dense)."""
    from transformers import AutoModelForCausalLM

    dense = build()
    masked = prune_model(
        copy.deepcopy(dense),
        spec=PruneSpec("flap", 0.5, flap_units=units, shrink=False),
        input_ids=ids,
        progress=False,
    ).model
    res = prune_model(
        copy.deepcopy(dense), spec=PruneSpec("flap", 0.5, flap_units=units), input_ids=ids, progress=False
    )
    small = res.model
    assert res.report["params_after"] < res.report["params_before"]
    res.model.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        want = masked(input_ids=ids).logits
        got = small(input_ids=ids).logits
        again = reloaded(input_ids=ids).logits
        base = dense(input_ids=ids).logits
    assert (want - base).abs().max() > 1e-3  # pruning changed the model
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(again, got, atol=0, rtol=0)


def test_flap_ratio_the_config_cannot_express(ids):
    """2 KV heads cannot lose 25%; Mamba2 with expand=2 cannot shrink its heads by 25% (inner width
    would not be an integer multiple of hidden_size). Both are one-line errors naming the fix."""
    with pytest.raises(
        ConfigError, match=r"num_key_value_heads cannot express.*Fix: use a ratio in \{0.5\}"
    ) as e:
        prune_model(tiny_llama(), spec=PruneSpec("flap", 0.25), input_ids=ids, progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="integer expand.*Fix") as e:
        prune_model(
            _tiny_mamba2(), spec=PruneSpec("flap", 0.25, flap_units="heads"), input_ids=ids, progress=False
        )
    assert "\n" not in str(e.value)


def test_decoder_targets_matching_no_layer(ids):
    with pytest.raises(
        ConfigError, match="'in_proj' matches no linear layer.*Fix: use 'all' or names among"
    ) as e:
        prune_model(
            tiny_llama(), spec=PruneSpec("wanda", 0.5, targets="in_proj"), input_ids=ids, progress=False
        )
    assert "\n" not in str(e.value)


def test_calibration_text_shorter_than_one_window():
    from effeval.methods.pruned_ssm.calibration import token_windows

    class Tok:  # 1 token per word
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [1] * len(text.split())}

    with pytest.raises(ConfigError, match="has 3 tokens, fewer than one window of seqlen=16.*Fix") as e:
        token_windows(Tok(), ["one two three"], nsamples=2, seqlen=16)
    assert "\n" not in str(e.value)
    assert token_windows(Tok(), ["w " * 40], nsamples=2, seqlen=16).shape == (2, 16)


@pytest.mark.parametrize("method", ["wanda", "sparsegpt", "magnitude"])
def test_decoder_unstructured_prunes_every_block_linear_exactly(method, ids):
    """Every linear of every block (7 per Llama block) loses exactly half its weights; WANDA's
    layer-0 q_proj mask equals |W| * ||x|| computed here from a hook on the dense model (its input
    is the same before and after pruning), lowest half per output row."""
    dense = tiny_llama()
    res = prune_model(copy.deepcopy(dense), spec=PruneSpec(method, 0.5), input_ids=ids, progress=False)
    assert len(res.report["module_sparsity"]) == 2 * 7
    assert all(v == 0.5 for v in res.report["module_sparsity"].values())
    if method == "wanda":
        xs = []
        h = dense.model.layers[0].self_attn.q_proj.register_forward_hook(
            lambda m, a, o: xs.append(a[0].reshape(-1, 16))
        )
        with torch.no_grad():
            dense(input_ids=ids, use_cache=False)
        h.remove()
        norm = torch.cat(xs).double().pow(2).sum(0).sqrt()
        score = dense.model.layers[0].self_attn.q_proj.weight.detach().double().abs() * norm
        want = torch.zeros_like(score, dtype=torch.bool)
        want.scatter_(1, score.argsort(dim=1)[:, :8], True)
        got = res.model.model.layers[0].self_attn.q_proj.weight == 0
        assert torch.equal(got, want)
