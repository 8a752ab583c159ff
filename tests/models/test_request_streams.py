"""Per-request random streams (issue 17): every sampled request of an lm-eval run draws from its
own stream, derived from the run seed and the request's place in the run (task, doc id, repeat).

Many documents with ONE prompt are the sharpest check: their draws must be independent samples
of the method's law. The wrappers run on a real tiny model; what is sampled is scripted so the
law is known exactly. Each test also runs the old behaviour (one stream per prompt, emulated by
giving every request the same key) and shows the same statistic rejects it.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
from scipy.stats import chisquare

import effeval.models.base as base

LAW = {1: 0.5, 2: 0.3, 3: 0.2}  # the scripted reasoner's law of one chain's answer
ALPHA = 1e-3


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def instances(n_docs: int, context: str, gen_kwargs: dict, repeats: int = 1):
    """What lm-eval hands a model: one Instance per document, cloned ``repeats`` times in a row."""
    from lm_eval.api.instance import Instance

    out = []
    for doc_id in range(n_docs):
        inst = Instance(
            "generate_until", {}, (context, dict(gen_kwargs)), 0, ("same_prompt", doc_id, repeats)
        )
        out.extend([inst] * repeats)
    return out


def same_key_for_all(requests):
    """The old behaviour: every request with this prompt drew from the same stream."""
    return [base.RequestKey("", 0, 0, 0) for _ in requests]


# --------------------------------------------------------------------------- short-m@k


class ThreeAnswerReasoner:
    """A step backend over the real tokenizer: a chain's first token is the answer d with
    probability LAW[d], then it writes ``</think>`` and EOS (the answer is the number before it). Chains are independent
    draws, so the law of each chain's answer is LAW exactly."""

    def __init__(self, tok, vocab_size: int):
        import torch

        self.torch = torch
        self.vocab = vocab_size
        self.first = {tok.encode(str(d), add_special_tokens=False)[-1]: d for d in LAW}
        self.script = {d: tok.encode("</think>", add_special_tokens=False) + [tok.eos_token_id] for d in LAW}
        self.rows: list[list] = []  # per batch row: [answer or None, position in its script]

    def _logits(self):
        out = self.torch.full((len(self.rows), self.vocab), -1e9)
        for r, (answer, pos) in enumerate(self.rows):
            if answer is None:
                for token, d in self.first.items():
                    out[r, token] = math.log(LAW[d])
            else:
                script = self.script[answer]
                out[r, script[min(pos, len(script) - 1)]] = 0.0
        return out

    def prefill(self, prompt_ids, n):
        self.rows = [[None, 0] for _ in range(n)]
        return self._logits()

    def decode(self, tokens, keep):
        self.rows = [self.rows[p] for p in keep]
        for row, token in zip(self.rows, tokens.tolist()):
            if row[0] is None:
                row[0] = self.first[token]
            else:
                row[1] += 1
        return self._logits()


@pytest.fixture(scope="module")
def short_mk_lm(zoo_path):
    from effeval.models.short_mk import ShortMKLM

    lm = ShortMKLM(
        pretrained=zoo_path("reasoner-sp"),
        device="cpu",
        k=4,
        m=4,
        strategy="majority",
        answer="number",
        seed=11,
    )
    lm._step_backend = lambda: ThreeAnswerReasoner(lm.tokenizer, lm.model.config.vocab_size)
    return lm


SAMPLED = {"until": [], "do_sample": True, "temperature": 1.0, "top_p": 1.0, "max_gen_toks": 24}


def chain_answers(lm, requests) -> list[list[int]]:
    lm.generate_until(requests, disable_tqdm=True)
    seen, out = set(), []
    for req in requests:
        if id(req) in seen:
            continue
        seen.add(id(req))
        out.append([int(c["answer"]) for c in req.args[1]["effeval_short_mk"]["chains"]])
    return out


def short_mk_p_values(per_doc: list[list[int]]) -> tuple[float, float]:
    """(pooled chain answers vs LAW, per-document count of answer 1 vs Binomial(k, LAW[1]))."""
    pooled = Counter(a for doc in per_doc for a in doc)
    n = sum(pooled.values())
    p_pooled = chisquare([pooled[d] for d in LAW], [n * LAW[d] for d in LAW]).pvalue
    k = len(per_doc[0])
    ones = Counter(doc.count(1) for doc in per_doc)
    binom = [math.comb(k, j) * LAW[1] ** j * (1 - LAW[1]) ** (k - j) for j in range(k + 1)]
    p_ones = chisquare([ones[j] for j in range(k + 1)], [len(per_doc) * b for b in binom]).pvalue
    return p_pooled, p_ones


def test_short_mk_chains_are_independent_across_documents_with_one_prompt(short_mk_lm, monkeypatch):
    """200 documents, one prompt, k=4 sampled chains each: the 800 chain answers follow the
    chain law and each document's count of answer 1 is Binomial(4, 0.5). Able to fail: with the
    old one-stream-per-prompt behaviour every document repeats the same four chains and both
    chi-square tests reject (checked below)."""
    per_doc = chain_answers(short_mk_lm, instances(200, "Q: 1 + 1 = ?\nA: <think>", SAMPLED))
    p_pooled, p_ones = short_mk_p_values(per_doc)
    assert p_pooled > ALPHA and p_ones > ALPHA, (p_pooled, p_ones)

    import effeval.models.short_mk as wrapper

    monkeypatch.setattr(wrapper, "request_keys", same_key_for_all)
    old = chain_answers(short_mk_lm, instances(40, "Q: 1 + 1 = ?\nA: <think>", SAMPLED))
    assert len({tuple(doc) for doc in old}) == 1
    assert min(short_mk_p_values(old)) < ALPHA  # the test above would fail


def test_short_mk_streams_follow_the_request_not_the_batch(short_mk_lm):
    """A document's chains are the same whether it runs in one batch with the others or alone in
    another order (as on another data-parallel rank); lm-eval's repeats of one document get
    their own streams. Able to fail: a stream drawn from the run's position (request counter)
    or shared by the repeats gives other chains when the batch changes."""
    lm = short_mk_lm
    prompt = "Q: 1 + 1 = ?\nA: <think>"

    def answers(log):
        return tuple(int(c["answer"]) for c in log["chains"])

    requests = instances(8, prompt, SAMPLED, repeats=2)
    lm.generate_until(requests, disable_tqdm=True)
    together = [answers(log) for log in lm.chain_logs[-16:]]
    alone: list = [None] * 16
    for doc in reversed(range(8)):
        lm.generate_until(instances(8, prompt, SAMPLED, repeats=2)[2 * doc : 2 * doc + 2], disable_tqdm=True)
        alone[2 * doc : 2 * doc + 2] = [answers(log) for log in lm.chain_logs[-2:]]
    assert together == alone
    assert any(together[2 * d] != together[2 * d + 1] for d in range(8))  # repeats are new draws
    keys = base.request_keys(requests)
    assert [k.repeat for k in keys] == [0, 1] * 8 and len({k.seed(11) for k in keys}) == 16


# --------------------------------------------------------------------------- hetero-spec


@pytest.fixture(scope="module")
def hetero_spec_lm(zoo_path):
    from effeval.models.hetero_spec import HeteroSpecLM

    return HeteroSpecLM(
        pretrained=zoo_path("llama-sp"),
        drafter=zoo_path("qwen-tekken"),
        algorithm="slem",
        device="cpu",
        seed=5,
    )


BINS = 4


def first_token_law(lm, context: str):
    """The target's exact law of the first generated token (SLEM is lossless), binned by id % BINS."""
    import torch

    ids = torch.tensor([lm.tok_encode(context)])
    with torch.no_grad():
        probs = torch.softmax(lm.model(ids).logits[0, -1].double(), dim=-1)
    return [float(probs[b::BINS].sum()) for b in range(BINS)]


def test_hetero_spec_samples_are_independent_across_documents_with_one_prompt(hetero_spec_lm, monkeypatch):
    """200 documents, one prompt, T=1, one new token each: the sampled token (binned by id mod 4)
    follows the target's exact law. Able to fail: the old one-stream-per-prompt behaviour gives
    one token for every document and the chi-square test rejects (checked below)."""
    import effeval.models.hetero_spec as wrapper

    lm = hetero_spec_lm
    context = "def add(a, b):\n    return"
    law = first_token_law(lm, context)
    gen = {"until": [], "do_sample": True, "temperature": 1.0, "max_gen_toks": 1}
    sampled: list[int] = []
    real_run = wrapper.HeteroSpecLM._run

    def recording_run(self, generate, ids, config, key):
        result = real_run(self, generate, ids, config, key)
        sampled.append(result.token_ids[0])
        return result

    monkeypatch.setattr(wrapper.HeteroSpecLM, "_run", recording_run)
    lm.generate_until(instances(200, context, gen), disable_tqdm=True)
    counts = Counter(t % BINS for t in sampled)
    p = chisquare([counts[b] for b in range(BINS)], [200 * q for q in law]).pvalue
    assert p > ALPHA, (p, counts, law)

    sampled.clear()
    monkeypatch.setattr(wrapper, "request_keys", same_key_for_all)
    lm.generate_until(instances(40, context, gen), disable_tqdm=True)
    assert len(set(sampled)) == 1
    counts = Counter(t % BINS for t in sampled)
    assert chisquare([counts[b] for b in range(BINS)], [40 * q for q in law]).pvalue < ALPHA
