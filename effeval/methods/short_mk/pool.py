"""Pool analysis: every strategy and every m <= k from k complete chains per question.

Given k chains per question that ran to the end (e.g. the samples file of one
``strategy=majority`` run, whose per-chain log holds each chain's thinking length and answer),
this computes what each strategy would have produced and cost, without generating again (the
paper's analysis). For one question with thinking lengths ``L_1..L_k``:

- ``short-m@k``: the m finished chains with the fewest thinking tokens vote (shortest-chain tie
  rule, then seeded). Generation would have stopped at step ``T = L_(m)`` (the m-th smallest
  finished length), so thinking tokens = ``sum_i min(L_i, T)`` and simulated time = ``T`` decode
  steps (all chains advance in one batch). With fewer than m finished chains, all of them vote
  and every chain runs to its end.
- ``majority@j`` (j = 1..k): the FIRST j chains of the pool (pool order = sampling order) vote;
  thinking tokens = ``sum L_i``; time = ``max L_i``. ``majority@k`` is the usual maj@k.
- ``shortest``: the single shortest finished chain (the answer of short-1@k, same cost).
- ``longest``: the longest finished chain; it needs every chain to finish (cost of majority@k).
- ``random``: one chain, uniformly: the EXPECTED accuracy (mean over chains), mean thinking
  tokens and mean length as time (what one sample costs).
- ``length_rank`` (the paper's central observation, separately from the strategies): sort each
  question's k chains by thinking tokens (ties: lower chain index first; truncated chains take
  part, with their truncated length and usually no answer), and report for every rank r = 1..k
  the accuracy of the chain at rank r and its mean thinking tokens. Rank 1 is the shortest chain,
  rank k the longest.
- ``shorter_vs_longer`` (``length_observation``): the same question as paired per-question
  differences with standard errors (shorter half minus longer half of the chains, shortest minus
  longest, length of wrong minus right chains), over all chains and over finished chains only
  (a truncated chain is wrong and longest by construction, which would favour short by itself).

``strategy_outcome`` is the per-question derivation the table is built from; the benchmark uses
it to read maj@k, short-1@k and short-3@k (and their wall time, by the stop step) off one run.

Every accuracy comes with ``accuracy_stderr``: the standard error of the mean of the per-question
values (0/1, or the expectation for ``random``) over questions.

Accuracy is the mean over questions of "the selected chain's answer equals the target", judged by
``answers.is_correct`` (math-verify, with the normaliser of ``answers.py`` as the fallback). Thinking tokens and time are means over questions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effeval.errors import ConfigError
from effeval.methods.short_mk.answers import is_correct, make_extractor, make_normalizer
from effeval.methods.short_mk.voting import Chain, decide, first_m, make_generator, vote
from effeval.task_data import iter_jsonl

logger = logging.getLogger(__name__)

LOG_KEY = "effeval_short_mk"  # where the wrapper puts its per-chain log in the request's gen_kwargs


@dataclass
class PoolQuestion:
    qid: str
    target: str | None
    chains: list[Chain]


def _find_log(obj: Any) -> dict | None:
    if isinstance(obj, dict):
        if LOG_KEY in obj and isinstance(obj[LOG_KEY], dict):
            return obj[LOG_KEY]
        for value in obj.values():
            found = _find_log(value)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for value in obj:
            found = _find_log(value)
            if found is not None:
                return found
    return None


def _count(entry: dict, key: str, default: int | None = None) -> int:
    """A chain's token count or index: a JSON whole number >= 0. A string ("12"), a fraction or a
    negative count is refused, not cast: a negative one gave tables with negative ratios."""
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"pool: a chain's {key!r} is {value!r}, not a whole number >= 0. Fix: write {key} as a JSON "
            "integer (the samples of an effeval-short-mk run do)"
        )
    return value


def _chain_from(entry: Any, index: int, extractor, normalize) -> Chain:
    if not isinstance(entry, dict):
        raise ConfigError(
            f"pool: chain {index} is {type(entry).__name__} {entry!r:.60}, not an object. Fix: write every "
            'chain as {"think_tokens": N, "answer": ...}'
        )
    if "think_tokens" not in entry:
        raise ConfigError(
            "pool: a chain has no 'think_tokens'. Fix: give every chain think_tokens (int) and answer"
        )
    answer = entry.get("answer")
    if extractor is not None and entry.get("text") is not None:
        answer = extractor(entry["text"])
    status = entry.get("status") or ("finished" if entry.get("finished", True) else "truncated")
    if status == "aborted":
        raise ConfigError(
            "pool: a chain was aborted by an early stop, so its full length is unknown. "
            "Fix: analyse the samples of a strategy=majority run (all chains run to the end)"
        )
    return Chain(
        index=_count(entry, "index", index),
        think_tokens=_count(entry, "think_tokens"),
        answer_tokens=_count(entry, "answer_tokens", 0),
        status=status,
        answer=answer,
        vote_key=normalize(answer),
    )


def load_pool(path: str | Path, answer: str | None = None, normalize: str = "math") -> list[PoolQuestion]:
    """Read a pool: an lm-eval samples JSONL of an ``effeval-short-mk`` run, or native lines
    ``{"id", "target", "chains": [{"think_tokens", "answer", "status"?, "text"?}]}``.

    ``answer`` (an extractor spec) re-extracts answers from chain texts when the log has them."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"pool file {str(path)!r} does not exist. Fix: pass a samples_*.jsonl written with --log_samples"
        )
    extractor = make_extractor(answer) if answer else None
    norm = make_normalizer(normalize)
    out = []
    for lineno, row in iter_jsonl(path):
        if "chains" in row:
            entries, target, qid = (
                row["chains"],
                row.get("target"),
                row.get("id", row.get("doc_id", lineno)),
            )
        else:
            log = _find_log(row.get("arguments"))
            if log is None:
                raise ConfigError(
                    f"{path}:{lineno}: no per-chain log ({LOG_KEY!r}) in this sample. Fix: analyse the samples "
                    "of an effeval-short-mk run (--log_samples) or a native pool file with 'chains'"
                )
            entries, target, qid = log["chains"], row.get("target"), row.get("doc_id", lineno)
        if not isinstance(entries, list):
            raise ConfigError(
                f"{path}:{lineno}: 'chains' is {type(entries).__name__}, not a list. Fix: write the chains "
                "of a question as a JSON list"
            )
        try:
            chains = [_chain_from(e, i, extractor, norm) for i, e in enumerate(entries)]
        except ConfigError as exc:  # say which line
            raise ConfigError(f"{path}:{lineno}: {str(exc).removeprefix('pool: ')}") from None
        if not chains:
            raise ConfigError(
                f"{path}:{lineno}: a question with no chains. Fix: every question needs k >= 1 chains"
            )
        out.append(PoolQuestion(str(qid), None if target is None else str(target), chains))
    if not out:
        raise ConfigError(f"{path}: empty pool. Fix: pass a file with at least one question")
    return out


def _correct(key: str | None, answer: str | None, target: str | None, normalize: str) -> bool:
    """The vote's key is None (nothing voted): wrong. Otherwise the chosen chain's raw answer is
    judged by ``answers.is_correct``: math-verify, with the normaliser as the fallback."""
    if key is None or target is None:
        return False
    return is_correct(answer if answer is not None else key, target, normalize)


@dataclass
class Outcome:
    """What one strategy would have decided and cost on one question's pool of complete chains."""

    correct: bool
    answer: str | None  # the chosen chain's raw answer (None: nothing voted)
    chosen: int  # index of the returned chain
    thinking_tokens: int  # summed over all chains, each cut at the stop step
    stop_step: int  # decode steps (= forward passes) the generation would have run
    chosen_thinking_tokens: int


def strategy_outcome(
    strategy: str,
    chains: Sequence[Chain],
    target: str | None,
    m: int | None = None,
    normalize: str = "math",
    gen=None,
    seed: int = 1234,
) -> Outcome:
    """One question, one strategy, derived from k chains that all ran to the end (module docstring).

    ``strategy``: ``short`` (with ``m``), ``shortest``, ``majority`` (all chains), ``majority_first``
    (the first ``m`` chains), ``longest``. A chain's thinking tokens equal the decode step at which it
    left the batch (every chain starts at step 1 and gains one token per step), so the stop step of
    an early-stopping strategy is a length in the pool and the cost of stopping there is
    ``sum(min(L_i, stop))``: exactly what the sampler run with that strategy would have generated
    (answer_phase ``in_chain``: no tokens after the finish)."""
    gen = gen if gen is not None else make_generator(seed)
    chains = list(chains)
    everything = max(c.think_tokens for c in chains)
    if strategy in ("short", "shortest"):
        need = 1 if strategy == "shortest" else int(m or 1)
        voters = first_m(chains, need, gen)
        # fewer than m ever finish: the sampler never stops early and every chain runs to its end
        stop = max(c.think_tokens for c in voters) if len(voters) >= need else everything
        result = vote(voters or chains, gen)
        counted = chains
    elif strategy in ("majority", "majority_first"):
        counted = chains if strategy == "majority" else chains[: int(m or len(chains))]
        result = vote(counted, gen)
        stop = max(c.think_tokens for c in counted)
    elif strategy == "longest":
        _, result = decide("longest", chains, 1, gen)
        stop, counted = everything, chains
    else:
        raise ConfigError(
            f"strategy: {strategy!r} has no pool outcome. Fix: use short, shortest, majority, majority_first or longest"
        )
    chosen = next(c for c in chains if c.index == result.chosen)
    return Outcome(
        correct=_correct(result.answer, chosen.answer, target, normalize),
        answer=chosen.answer if result.answer is not None else None,
        chosen=chosen.index,
        thinking_tokens=sum(min(c.think_tokens, stop) for c in counted),
        stop_step=stop,
        chosen_thinking_tokens=chosen.think_tokens,
    )


def _stderr(values: Sequence[float]) -> float | None:
    """Standard error of the mean over questions (None with fewer than two)."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return (sum((v - mean) ** 2 for v in values) / (n - 1) / n) ** 0.5


def length_rank_table(questions: Sequence[PoolQuestion], k: int, normalize: str = "math") -> list[dict]:
    """Accuracy of the r-th shortest chain, r = 1..k (see module docstring; ties: lower index first)."""
    by_rank: list[list[float]] = [[] for _ in range(k)]
    lengths: list[list[float]] = [[] for _ in range(k)]
    for q in questions:
        ranked = sorted(q.chains[:k], key=lambda c: (c.think_tokens, c.index))
        for r, chain in enumerate(ranked):
            by_rank[r].append(float(_correct(chain.vote_key, chain.answer, q.target, normalize)))
            lengths[r].append(float(chain.think_tokens))
    return [
        {
            "rank": r + 1,
            "accuracy": sum(by_rank[r]) / len(by_rank[r]),
            "accuracy_stderr": _stderr(by_rank[r]),
            "mean_thinking_tokens": sum(lengths[r]) / len(lengths[r]),
            "questions": len(by_rank[r]),
        }
        for r in range(k)
    ]


def _mean_stderr(values: Sequence[float]) -> dict[str, Any]:
    return {
        "mean": sum(values) / len(values) if values else None,
        "stderr": _stderr(values),
        "questions": len(values),
    }


def length_observation(questions: Sequence[PoolQuestion], k: int, normalize: str = "math") -> dict:
    """The paper's central observation as paired per-question differences, each with its standard
    error over questions (positive = shorter chains are more often correct):

    - ``shortest_minus_longest``: correct(rank 1) - correct(rank k) (length order as in
      ``length_rank_table``);
    - ``short_half_minus_long_half``: accuracy of the k//2 shortest chains minus the k//2 longest;
    - ``wrong_minus_correct_thinking_tokens``: mean length of the wrong chains minus the right ones,
      over questions that have both.

    ``all_chains`` counts truncated chains (budget hit, usually no answer: wrong AND longest by
    construction, which favours "shorter is better" by itself); ``finished_chains`` keeps only
    chains that ended (EOS or a final answer) and questions with at least two of them, which removes
    that artefact."""
    out = {}
    for scope in ("all_chains", "finished_chains"):
        extreme, halves, gaps = [], [], []
        for q in questions:
            pool = [c for c in q.chains[:k] if scope == "all_chains" or c.finished]
            if len(pool) < 2:
                continue
            ranked = sorted(pool, key=lambda c: (c.think_tokens, c.index))
            right = [float(_correct(c.vote_key, c.answer, q.target, normalize)) for c in ranked]
            half = len(ranked) // 2
            extreme.append(right[0] - right[-1])
            halves.append(sum(right[:half]) / half - sum(right[-half:]) / half)
            good = [c.think_tokens for c, r in zip(ranked, right) if r]
            bad = [c.think_tokens for c, r in zip(ranked, right) if not r]
            if good and bad:
                gaps.append(sum(bad) / len(bad) - sum(good) / len(good))
        out[scope] = {
            "shortest_minus_longest": _mean_stderr(extreme),
            "short_half_minus_long_half": _mean_stderr(halves),
            "wrong_minus_correct_thinking_tokens": _mean_stderr(gaps),
        }
    return out


def observation_text(analysis: dict) -> str:
    """The paper's central observation in one sentence, with its standard errors, whatever the sign."""
    parts = []
    for scope, words in (("all_chains", "all chains"), ("finished_chains", "finished chains only")):
        obs = analysis["shorter_vs_longer"][scope]
        half, gap = obs["short_half_minus_long_half"], obs["wrong_minus_correct_thinking_tokens"]
        if half["mean"] is None:
            parts.append(f"{words}: no question has two chains")
            continue
        se = half["stderr"]
        text = (
            f"{words}: accuracy of the shorter half minus the longer half {half['mean']:+.3f}"
            f" +- {se:.3f} (stderr, {half['questions']} questions)"
            if se is not None
            else f"{words}: shorter half minus longer half {half['mean']:+.3f} (one question)"
        )
        if gap["mean"] is not None:
            gse = f" +- {gap['stderr']:.1f}" if gap["stderr"] is not None else ""
            text += (
                f"; wrong chains are {gap['mean']:+.1f}{gse} tokens longer than right ones"
                f" ({gap['questions']} questions with both)"
            )
        else:
            text += "; no question has both a right and a wrong chain"
        parts.append(text)
    return "Are shorter chains more often correct? " + ". ".join(parts) + "."


def _row(
    name: str,
    strategy: str,
    m: int | None,
    k: int,
    acc: list[float],
    think: list[float],
    time_: list[float],
    chosen_len: list[float],
) -> dict[str, Any]:
    n = len(acc)
    return {
        "name": name,
        "strategy": strategy,
        "m": m,
        "k": k,
        "accuracy": sum(acc) / n,
        "accuracy_stderr": _stderr(acc),
        "thinking_tokens": sum(think) / n,
        "time_steps": sum(time_) / n,
        "chosen_thinking_tokens": sum(chosen_len) / n,
        "questions": n,
    }


def check_k(questions: Sequence[PoolQuestion], expected_k: int | None = None) -> int:
    """Every question must have the same number of chains (and ``expected_k`` when given): a chain
    log appended from runs with different k would otherwise mix two experiments silently."""
    if not questions:
        raise ConfigError("pool: no questions. Fix: pass a pool with at least one question")
    k = expected_k if expected_k is not None else len(questions[0].chains)
    for q in questions:
        if len(q.chains) != k:
            source = f"--k {expected_k}" if expected_k is not None else f"question {questions[0].qid!r}"
            raise ConfigError(
                f"pool: question {q.qid!r} has {len(q.chains)} chains but {source} has {k} (a chain log from "
                "a different k). Fix: analyse the log of one run (one k), or pass its --k"
            )
    return k


def analyze_pool(
    questions: Sequence[PoolQuestion],
    normalize: str = "math",
    seed: int = 1234,
    expected_k: int | None = None,
) -> dict[str, Any]:
    """The table for every strategy and every m <= k, and accuracy by length rank (module docstring)."""
    k = check_k(questions, expected_k)
    gen = make_generator(seed)
    rows = []

    def collect(select) -> tuple[list, list, list, list]:
        acc, think, time_, chosen = [], [], [], []
        for q in questions:
            a, t, s, c = select(q.chains[:k], q.target)
            acc.append(a)
            think.append(t)
            time_.append(s)
            chosen.append(c)
        return acc, think, time_, chosen

    def select_with(strategy, m=None):
        def select(chains, target):
            out = strategy_outcome(strategy, chains, target, m=m, normalize=normalize, gen=gen)
            return (
                float(out.correct),
                float(out.thinking_tokens),
                float(out.stop_step),
                float(out.chosen_thinking_tokens),
            )

        return select

    def majority(j):
        return select_with("majority_first", j)

    for m in range(1, k + 1):
        rows.append(_row(f"short-{m}@{k}", "short", m, k, *collect(select_with("short", m))))
    for j in range(1, k + 1):
        rows.append(_row(f"majority@{j}", "majority", None, j, *collect(majority(j))))
    rows.append(_row(f"shortest@{k}", "shortest", 1, k, *collect(select_with("shortest"))))
    rows.append(_row(f"longest@{k}", "longest", None, k, *collect(select_with("longest"))))
    # random: exact expectation over the k chains, not one seeded draw.
    acc, think = [], []
    for q in questions:
        chains = q.chains[:k]
        acc.append(sum(_correct(c.vote_key, c.answer, q.target, normalize) for c in chains) / len(chains))
        think.append(sum(c.think_tokens for c in chains) / len(chains))
    rows.append(_row(f"random@{k}", "random", None, 1, acc, think, think, think))
    base = next(r for r in rows if r["name"] == f"majority@{k}")
    for r in rows:
        r["thinking_tokens_ratio_to_majority"] = (
            r["thinking_tokens"] / base["thinking_tokens"] if base["thinking_tokens"] else None
        )
        r["time_ratio_to_majority"] = r["time_steps"] / base["time_steps"] if base["time_steps"] else None
        r["accuracy_minus_majority"] = r["accuracy"] - base["accuracy"]
    return {
        "k": k,
        "questions": len(questions),
        "normalize": normalize,
        "seed": seed,
        "rows": rows,
        "length_rank": length_rank_table(questions, k, normalize),
        "shorter_vs_longer": length_observation(questions, k, normalize),
    }


def plot_pool(table: dict[str, Any], out_png: str | Path) -> Path:
    """Accuracy vs mean thinking tokens: the short-m@k curve, the majority@j curve, single points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table["rows"]
    fig, (ax, ax_rank) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    for strategy, style in (("short", "o-"), ("majority", "s--")):
        pts = [r for r in rows if r["strategy"] == strategy]
        ax.plot(
            [r["thinking_tokens"] for r in pts],
            [r["accuracy"] for r in pts],
            style,
            label="short-m@k (m=1..k)" if strategy == "short" else "majority@j (j=1..k)",
        )
        for r in pts:
            label = f"m={r['m']}" if strategy == "short" else f"j={r['k']}"
            ax.annotate(
                label,
                (r["thinking_tokens"], r["accuracy"]),
                fontsize=6,
                xytext=(2, 2),
                textcoords="offset points",
            )
    for strategy, marker in (("shortest", "v"), ("longest", "^"), ("random", "x")):
        for r in rows:
            if r["strategy"] == strategy:
                ax.plot([r["thinking_tokens"]], [r["accuracy"]], marker, markersize=8, label=r["name"])
    ax.set_xlabel("mean thinking tokens per question (all chains)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"short-m@k vs majority (k={table['k']}, {table['questions']} questions)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ranks = table.get("length_rank") or []
    if ranks:
        ax_rank.errorbar(
            [r["rank"] for r in ranks],
            [r["accuracy"] for r in ranks],
            yerr=[r["accuracy_stderr"] or 0.0 for r in ranks],
            fmt="o-",
            capsize=3,
            label="chain at length rank r",
        )
        rand = next((r for r in rows if r["strategy"] == "random"), None)
        if rand is not None:
            ax_rank.axhline(rand["accuracy"], color="grey", linestyle=":", label="random chain")
        ax_rank.set_xlabel("length rank (1 = shortest chain of the question)")
        ax_rank.set_ylabel("accuracy (+- 1 standard error)")
        ax_rank.set_title("accuracy by thinking-length rank")
        ax_rank.grid(alpha=0.3)
        ax_rank.legend(fontsize=7)
    fig.tight_layout()
    from effeval.atomic import atomic_path

    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:  # never a half-written plot
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out_png


def questions_from_results(results: Iterable[tuple[str, str | None, Sequence[Chain]]]) -> list[PoolQuestion]:
    """Build a pool in memory from (id, target, chains) triples (e.g. a benchmark's majority run)."""
    return [PoolQuestion(str(qid), target, list(chains)) for qid, target, chains in results]
