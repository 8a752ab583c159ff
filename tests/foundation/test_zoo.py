"""The zoo's real tokenizers and tiny models: round trips, loadability, determinism."""

import pytest

STRINGS = [
    "Hello, world!",
    "inner  double   and trailing spaces  ",
    "naïve café — déjà vu, Ελληνικά, 東京, 🐍🚀",
    "digits 0123456789 and 3.14159e-10, -42",
    "def f(x):\n    return {'k': [x ** 2 for _ in range(3)]}  # code\n\ttabbed",
    "antidisestablishmentarianism supercalifragilisticexpialidocious",
    "\n\nnew\r\nlines\n",
]


@pytest.mark.parametrize("name", ["llama-sp", "qwen-tekken", "llama-sp-v3"])
def test_real_tokenizers_round_trip(zoo_path, name):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(zoo_path(name))
    assert len(tok) >= 32000
    for s in STRINGS:
        ids = tok.encode(s, add_special_tokens=False)
        assert tok.decode(ids) == s, (name, s)


def test_leading_whitespace_is_where_sentencepiece_is_not_a_bijection(zoo_path):
    """Known trap, kept visible: SentencePiece's decoder strips the first space (the dummy
    prefix), so text that *starts* with a space loses one; byte-level tekken keeps it. Code that
    compares texts across tokenizers must decode in context (see methods/hetero_spec/vocab.py)."""
    from transformers import AutoTokenizer

    sp = AutoTokenizer.from_pretrained(zoo_path("llama-sp"))
    tk = AutoTokenizer.from_pretrained(zoo_path("qwen-tekken"))
    s = "  two leading spaces"
    assert sp.decode(sp.encode(s, add_special_tokens=False)) == s[1:]
    assert tk.decode(tk.encode(s, add_special_tokens=False)) == s


def test_tokenizer_families_differ_where_it_matters(zoo_path):
    from transformers import AutoTokenizer

    sp = AutoTokenizer.from_pretrained(zoo_path("llama-sp"))
    tk = AutoTokenizer.from_pretrained(zoo_path("qwen-tekken"))
    assert len(sp) == 32000 and len(tk) == 131072
    assert "▁the" in sp.get_vocab() and "Ġthe" in tk.get_vocab()
    assert (sp.bos_token_id, sp.eos_token_id) == (1, 2)
    assert (tk.bos_token_id, tk.eos_token_id, tk.pad_token_id) == (1, 2, 11)


@pytest.mark.parametrize(
    "name, cls",
    [
        ("llama-sp", "LlamaForCausalLM"),
        ("qwen-tekken", "Qwen2ForCausalLM"),
        ("mamba-sp", "MambaForCausalLM"),
        ("mamba2-sp", "Mamba2ForCausalLM"),
    ],
)
def test_zoo_models_load_offline_with_auto_classes(zoo_path, name, cls):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = zoo_path(name)
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == cls
    assert model.config.vocab_size == len(tok)
    ids = tok("def add(a, b):", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tok))
    assert torch.isfinite(logits).all()


def test_zoo_build_is_deterministic(tmp_path):
    import torch
    from safetensors.torch import load_file

    from effeval import zoo

    a = zoo.get("llama-sp", root=tmp_path / "a")
    b = zoo.get("llama-sp", root=tmp_path / "b")
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_unknown_zoo_model_lists_the_valid_names():
    from effeval import zoo
    from effeval.errors import ConfigError

    with pytest.raises(ConfigError, match="llama-sp"):
        zoo.get("gpt-17")


def test_trainer_lowers_the_loss_deterministically():
    import torch
    import transformers as tf

    from effeval.zoo.trainer import train_causal_lm

    def run():
        torch.manual_seed(0)
        cfg = tf.LlamaConfig(
            vocab_size=50,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
        model = tf.LlamaForCausalLM(cfg)
        gen = torch.Generator().manual_seed(1)
        # a learnable pattern: each row counts upward modulo 50
        start = torch.randint(0, 50, (64, 1), generator=gen)
        blocks = (start + torch.arange(16)) % 50
        return train_causal_lm(model, blocks, steps=60, batch_size=8, lr=1e-2, seed=3, desc="t")

    first, second = run(), run()
    assert first == second
    assert sum(first[-5:]) / 5 < 0.5 * sum(first[:5]) / 5
