"""Self-distillation: convert a causal LM into a SpeLLM, the base model being its own teacher.

Targets. At every position the teacher gives a next-token distribution ``p(t)``. Each token
has a padded symbol row (its first k bytes, END-padded; EOS -> the EOS row). Head ``j``'s target
is the marginal of symbol j under the teacher sharpened to ``target_temperature`` T:
``q_j(c) = sum_t p_T(t) [row(t)_j = c]`` (one sparse ``(k|C| x V) @ (V x N)`` product).
T = 0 gives the one-hot of the teacher's argmax token (hard labels, as
when training on the base model's own greedy output); T = 1 is the KL-optimal product of
marginals (the product of the teacher's marginals minimises ``KL(teacher rows || prod_j p_j)``),
whose argmax string often is not the teacher's argmax token when the teacher is uncertain. The
default T = 0.5 is the value measured to beat the most-frequent-token baseline by more than 2x on
both models tried (docs/spellm.md). Special tokens other than EOS (BOS, pad,
control) have no string; their teacher mass is dropped and ``p`` renormalised.

Training. By default the backbone is frozen and shared with the teacher (one body forward gives
both the teacher's logits and the heads' input); ``tune="lora"`` adds LoRA adapters (PEFT) to a
copy of the body and trains them (merged into the saved backbone), ``tune="full"`` trains a
copy of the whole body (the teacher stays frozen either way). AdamW, linear warm-up + cosine decay, batches drawn with a seeded
``torch.Generator``. Every ``eval_every`` steps: top-1 agreement (the SpeLLM's best string equals
the teacher's argmax token's row), the heads' KL to the teacher marginals, and the token-level
KL(teacher || SpeLLM renormalised over the vocabulary), on held-out text. Checkpoints every
``save_every`` steps hold heads (and body when tuned), optimiser, scheduler and generator state,
so an interrupted run resumes where it stopped and reaches the same result.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from effeval.config_fields import setting
from effeval.errors import ConfigError
from effeval.lr_schedule import warmup_cosine
from effeval.methods.spellm.alphabet import NUM_SYMBOLS, check_k
from effeval.methods.spellm.heads import MODES, best_rows, string_mode
from effeval.methods.spellm.model import SpeLLMForCausalLM, base_body, load_causal_lm
from effeval.task_data import iter_jsonl, read_text_file
from effeval.token_blocks import pack_token_blocks

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
# Upper bounds of settings whose memory grows with them (DistillConfig._check_memory_bounds): each
# is 8-64x the default, and keeps the largest tensor near 4 GB on a 262k vocabulary.
MAX_SEQLEN = 8192
MAX_STEP_TOKENS = 4096  # the teacher's [positions x vocabulary] logits (default 8 x 64 = 512 per step)
MAX_POOL_HEADS = 4_194_304  # pool positions x k, each 258 floats (default 4096 x 16)
MAX_TEXT_TOKENS = 100_000_000  # packed training text, int64 (default 2000 x 64)
MAX_LORA_RANK = 1024
TUNES = ("heads", "lora", "full")


@dataclass
class DistillConfig:
    base: str = setting(help="base causal-LM directory (the teacher)")
    out: str = setting(help="SpeLLM directory to write (also holds checkpoints)")
    k: int = setting(16, help="character heads = longest string per step")
    steps: int = setting(300, help="optimiser steps")
    batch_size: int = setting(8, help="sequences per step")
    seqlen: int = setting(64, help="tokens per sequence")
    lr: float = setting(1e-2, help="heads learning rate")
    tune: str = setting(
        "heads",
        choices=("heads", "lora", "full"),
        help="heads: backbone frozen (default); lora: also train LoRA adapters on a copy of the backbone "
        "(PEFT, merged on save); full: also tune a copy of the whole backbone",
    )
    body_lr: float = setting(3e-4, help="backbone (or LoRA) learning rate with --tune lora|full")
    lora_rank: int = setting(8, help="LoRA rank")
    lora_alpha: float = setting(16.0, help="LoRA alpha")
    data: str = setting(
        "python",
        help="python | python-prose | python-code | real-prose (pydoc topics + the story of Verne's 'In "
        "the Year 2889', its last 20% held out) | comma-separated .txt/.jsonl files or folders (default: Python's own text)",
    )
    eval_every: int = setting(50, help="steps between evaluations")
    eval_positions: int = setting(256, help="held-out positions per evaluation")
    save_every: int = setting(100, help="checkpoint interval (steps)")
    seed: int = setting(0, help="seed of data order and head initialisation")
    scoring: str = setting("padded", choices=("padded", "terminated"), help="string scoring mode")
    resume: bool = setting(True, help="continue from a checkpoint in --out (--no-resume: start over)")
    max_blocks: int = setting(2000, help="training sequences kept from --data")
    # 0 = the teacher's argmax token as a hard label; 1 = its whole distribution (the KL-optimal
    # product of marginals). 0.5 is the default: the one value measured to beat the
    # most-frequent-token baseline by more than 2x on both mamba2-sp and SmolLM2-135M (T=1 falls
    # below it on mamba2-sp; T=0 is the lowest of the three on SmolLM2 and wrecks its perplexity).
    target_temperature: float = setting(
        0.5,
        help="teacher temperature for the head targets: 0.5 (default; the best agreement across the "
        "models measured), 0 = its argmax token (hard labels: confident heads, poor perplexity), 1 = its "
        "whole distribution (KL-optimal product of marginals: best calibrated, low agreement on some models)",
    )
    pool: int = setting(
        4096, help="frozen backbone: positions whose teacher targets are computed once (0: fresh every step)"
    )
    progress: bool = setting(True, help="show a progress bar (--no-progress: none)")
    stop_after: int | None = setting(
        None, help="stop with a checkpoint after this many steps (time-boxing); the same command resumes"
    )

    def validate(self) -> None:
        check_k(self.k)
        for name in (
            "steps",
            "batch_size",
            "seqlen",
            "eval_every",
            "eval_positions",
            "save_every",
            "max_blocks",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"--{name.replace('_', '-')}: {value!r} must be an integer >= 1. Fix: pass a positive integer"
                )
        if not isinstance(self.pool, int) or self.pool < 0:
            raise ConfigError(
                f"--pool: {self.pool!r} must be an integer >= 0. Fix: pass 0 (fresh targets every step) "
                "or a number of positions"
            )
        if (
            not isinstance(self.target_temperature, (int, float))
            or not 0 <= self.target_temperature < math.inf
        ):
            raise ConfigError(
                f"--target-temperature: {self.target_temperature!r} must be >= 0. Fix: pass 1 (the "
                "teacher's distribution), a value in (0, 1) to sharpen it, or 0 for its argmax token"
            )
        for name in ("lr", "body_lr"):  # inf passed a plain `> 0` check and trained NaN heads
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ConfigError(
                    f"--{name.replace('_', '-')}: {value!r} is not a finite learning rate > 0. "
                    "Fix: pass a positive number, e.g. 1e-2"
                )
        self._check_memory_bounds()
        if self.tune not in TUNES:
            raise ConfigError(
                f"--tune: {self.tune!r} is unknown. Fix: use heads (backbone frozen), lora or full"
            )
        if (
            not isinstance(self.lora_rank, int)
            or not 1 <= self.lora_rank <= MAX_LORA_RANK
            or not 0 < self.lora_alpha < math.inf
        ):
            raise ConfigError(
                f"--lora-rank/--lora-alpha: {self.lora_rank!r}/{self.lora_alpha!r} must be an integer in "
                f"[1, {MAX_LORA_RANK}] and a finite number > 0. Fix: e.g. --lora-rank 8 --lora-alpha 16"
            )
        if self.scoring not in MODES:
            raise ConfigError(f"--scoring: {self.scoring!r} is unknown. Fix: use one of {', '.join(MODES)}")

    def _check_memory_bounds(self) -> None:
        """Settings whose tensors grow with their product are bounded before the teacher loads,
        rather than growing until the kernel kills the run: the teacher's logits of a step and of an
        evaluation (positions x vocabulary floats), the pooled targets (positions x k x 258 floats)
        and the packed training text."""
        limits = (
            ("--seqlen", self.seqlen, MAX_SEQLEN, "tokens per sequence"),
            ("--batch-size x --seqlen", self.batch_size * self.seqlen, MAX_STEP_TOKENS, "tokens per step"),
            ("--eval-positions", self.eval_positions, MAX_STEP_TOKENS, "held-out positions"),
            ("--pool x --k", self.pool * self.k, MAX_POOL_HEADS, "pooled head targets"),
            ("--max-blocks x --seqlen", self.max_blocks * self.seqlen, MAX_TEXT_TOKENS, "training tokens"),
        )
        for flag, value, limit, what in limits:
            if value > limit:
                raise ConfigError(
                    f"{flag}: {value:,} {what} is more than the {limit:,} this command holds in memory. "
                    f"Fix: lower {flag.split(' x ')[0]}"
                )


# --------------------------------------------------------------------------- data


def load_texts(data: str) -> list[str]:
    """Training texts from ``data``: comma-separated .txt/.jsonl files or folders of them.

    Named corpora (``python``, real prose, ...) are resolved by the caller, which passes texts in."""
    texts = []
    for part in data.split(","):
        path = Path(os.path.expanduser(part.strip()))
        files = sorted(path.rglob("*.txt")) + sorted(path.rglob("*.jsonl")) if path.is_dir() else [path]
        if not path.exists() or not files:
            raise ConfigError(
                f"--data: {part!r} is neither a named corpus nor an existing .txt/.jsonl file or "
                "folder. Fix: pass --data python or a path to text"
            )
        for f in files:
            if f.suffix == ".jsonl":
                for _, row in iter_jsonl(f):
                    if "text" not in row:
                        raise ConfigError(
                            f"--data: {f} has a line without a 'text' field. Fix: one "
                            '{"text": ...} object per line'
                        )
                    texts.append(str(row["text"]))
            else:
                texts.append(read_text_file(f, "--data"))
    if not any(t.strip() for t in texts):
        raise ConfigError(f"--data: {data!r} holds no text. Fix: pass files with text in them")
    return texts


def make_blocks(tok, cfg: DistillConfig, texts: list[str] | None = None, held: list[str] | None = None):
    """Training and evaluation token blocks (evaluation: held-out text, else the last 10%)."""
    if texts is None:
        texts = load_texts(cfg.data)
    n_tokens = sum(len(tok.encode(t, add_special_tokens=False)) for t in texts)
    if n_tokens == 0:
        raise ConfigError(
            f"--data: {len(texts)} text(s) give no tokens after tokenisation. Fix: pass files with "
            "text in them (--data real-prose, --data python, or .txt/.jsonl paths)"
        )
    try:
        blocks = pack_token_blocks(tok, texts, cfg.seqlen, max_blocks=cfg.max_blocks)
    except ValueError:
        raise ConfigError(
            f"--data: too little text for one block of --seqlen {cfg.seqlen} tokens. "
            "Fix: give more text or a smaller --seqlen"
        ) from None
    need_eval = max(1, math.ceil(cfg.eval_positions / cfg.seqlen))
    if held:
        eval_blocks = pack_token_blocks(tok, held, cfg.seqlen, max_blocks=need_eval)
    else:
        n_eval = min(need_eval, max(1, blocks.shape[0] // 10))
        if blocks.shape[0] - n_eval < 1:
            raise ConfigError("--data: too little text to hold out an evaluation block. Fix: give more text")
        blocks, eval_blocks = blocks[:-n_eval], blocks[-n_eval:]
    return blocks, eval_blocks


# --------------------------------------------------------------------------- targets


class MarginalTargets:
    """Teacher next-token distribution -> per-head symbol marginals (one sparse matmul)."""

    def __init__(self, codec, vocab_size: int, temperature: float = 1.0):
        self.temperature = float(temperature)
        rows = codec.rows()
        if rows.shape[0] < vocab_size:  # the model may have padded its embedding matrix
            pad = torch.full((vocab_size - rows.shape[0], codec.k), 0, dtype=torch.long)
            rows = torch.cat([rows, pad])
        rows = rows[:vocab_size]
        self.rows = rows  # [V, k]
        self.k = codec.k
        keep = torch.zeros(vocab_size, dtype=torch.bool)
        n = min(vocab_size, codec.vocab_size)
        keep[:n] = torch.tensor([b is not None for b in codec.token_bytes[:n]], dtype=torch.bool)
        if codec.eos_token_id is not None and codec.eos_token_id < vocab_size:
            keep[codec.eos_token_id] = True
        self.keep = keep  # tokens with a string (or EOS)
        v = torch.arange(vocab_size).repeat_interleave(self.k)
        j = torch.arange(self.k).repeat(vocab_size)
        r = j * NUM_SYMBOLS + rows.reshape(-1)
        with warnings.catch_warnings():  # torch flags sparse CSR as beta; the product below is plain
            warnings.simplefilter("ignore", UserWarning)
            self.matrix = (
                torch.sparse_coo_tensor(
                    torch.stack([r, v]), torch.ones(r.numel()), (self.k * NUM_SYMBOLS, vocab_size)
                )
                .coalesce()
                .to_sparse_csr()
            )

    def teacher_probs(self, logits, temperature: float = 1.0):
        """Teacher softmax with string-less specials removed (renormalised), float32 [N, V];
        ``temperature`` 0 gives the one-hot argmax."""
        logits = logits.float().masked_fill(~self.keep.to(logits.device), float("-inf"))
        if temperature == 0:
            return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
        return torch.softmax(logits / temperature, dim=-1)

    def target_probs(self, logits):
        """The distribution whose marginals the heads are trained on."""
        return self.teacher_probs(logits, self.temperature)

    def marginals(self, probs):
        """[N, V] -> [N, k, |C|]."""
        q = torch.sparse.mm(self.matrix, probs.t().contiguous()).t()
        return q.reshape(probs.shape[0], self.k, NUM_SYMBOLS)


def neg_entropy(targets):
    """sum_j sum_c q log q per position [N] (the constant part of the KL)."""
    return torch.where(
        targets > 0, targets * torch.log(targets.clamp_min(1e-30)), torch.zeros_like(targets)
    ).sum((-1, -2))


def heads_kl(targets, student_lp, target_neg_entropy=None):
    """sum_j KL(q_j || p_j), per position [N]."""
    if target_neg_entropy is None:
        target_neg_entropy = neg_entropy(targets)
    return target_neg_entropy - (targets * student_lp).sum(dim=(-1, -2))


@torch.no_grad()
def build_pool(t_body, lm_head, targets: MarginalTargets, blocks, n_positions: int, gen, chunk: int = 512):
    """Frozen backbone: hidden states and teacher marginals for ``n_positions`` random positions,
    computed once. Training steps then draw minibatches from this pool, which costs the teacher's
    V-sized projection once per position instead of once per position per epoch."""
    from tqdm.auto import tqdm

    per_block = blocks.shape[1]
    n_blocks = min(blocks.shape[0], max(1, math.ceil(n_positions / per_block)))
    chosen = torch.randperm(blocks.shape[0], generator=gen)[:n_blocks]
    hiddens, qs, negs = [], [], []
    for start in tqdm(
        range(0, n_blocks, max(1, chunk // per_block)), desc="spellm teacher targets", leave=False
    ):
        ids = blocks[chosen[start : start + max(1, chunk // per_block)]]
        h = t_body(input_ids=ids, use_cache=False).last_hidden_state.reshape(-1, lm_head.weight.shape[1])
        q = targets.marginals(targets.target_probs(lm_head(h)))
        hiddens.append(h)
        qs.append(q)
        negs.append(neg_entropy(q))
    return torch.cat(hiddens)[:n_positions], torch.cat(qs)[:n_positions], torch.cat(negs)[:n_positions]


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(student, teacher, targets: MarginalTargets, eval_blocks, n_positions: int, mode: str) -> dict:
    """Agreement with the teacher's top-1 token, heads KL and vocabulary KL on held-out text."""
    body = student.backbone
    t_body = base_body(teacher)
    lm_head = teacher.get_output_embeddings()
    ids = eval_blocks
    t_hidden = t_body(input_ids=ids, use_cache=False).last_hidden_state
    s_hidden = t_hidden if body is t_body else body(input_ids=ids, use_cache=False).last_hidden_state
    t_hidden = t_hidden.reshape(-1, t_hidden.shape[-1])[:n_positions]
    s_hidden = s_hidden.reshape(-1, s_hidden.shape[-1])[:n_positions]
    probs = targets.teacher_probs(lm_head(t_hidden))
    lp = student.heads(s_hidden)  # [N, k, C]
    top1 = probs.argmax(-1)
    want = targets.rows[top1]  # [N, k]
    got, _ = best_rows(lp, string_mode(mode))
    agree = (got == want).all(-1).float().mean().item()
    # token-level: the SpeLLM's score of every vocabulary token, renormalised over the vocabulary
    rows = targets.rows  # [V, k]
    scores = torch.zeros(lp.shape[0], rows.shape[0])
    for j in range(rows.shape[1]):
        scores += lp[:, j, :].index_select(1, rows[:, j])
    scores = scores.masked_fill(~targets.keep, float("-inf"))
    s_log = torch.log_softmax(scores, -1)
    p_log = torch.log(probs.clamp_min(1e-30))
    vocab_kl = (probs * (p_log - s_log)).masked_fill(probs == 0, 0).sum(-1).mean().item()
    counts = torch.bincount(top1, minlength=probs.shape[1]).float()
    return {
        "top1_agreement": agree,
        "heads_kl": heads_kl(targets.marginals(probs), lp).mean().item(),
        "vocab_kl": vocab_kl,
        "majority_baseline": (counts.max() / counts.sum()).item(),
        "positions": int(lp.shape[0]),
    }


# --------------------------------------------------------------------------- training


@dataclass
class DistillState:
    step: int = 0
    losses: list = field(default_factory=list)
    evals: list = field(default_factory=list)


def _save_checkpoint(path: Path, student, opt, sched, gen, state: DistillState, cfg: DistillConfig) -> None:
    path.mkdir(parents=True, exist_ok=True)
    blob = {
        "heads": student.heads.state_dict(),
        "body": student.backbone.state_dict() if cfg.tune != "heads" else None,
        "opt": opt.state_dict(),
        "sched": sched.state_dict(),
        "generator": gen.get_state(),
        "state": asdict(state),
        "config": _identity(cfg),
    }
    from effeval.atomic import atomic_path

    with atomic_path(path / "state.pt") as tmp:  # Ctrl-C or a kill mid-save leaves the old checkpoint
        torch.save(blob, tmp)


def _load_checkpoint(path: Path) -> dict:
    """Tensors and plain containers only (``weights_only=True``): a checkpoint is data, and a
    crafted pickle under --out must not run code."""
    try:
        blob = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # UnpicklingError for forbidden globals, RuntimeError/EOFError for junk
        raise ConfigError(
            f"--out: {path} is not a checkpoint this version wrote ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160]}). Fix: delete {path.parent} or pass --no-resume to start over"
        ) from None
    if not isinstance(blob, dict) or not {"config", "heads", "state"} <= set(blob):
        raise ConfigError(
            f"--out: {path} is not a SpeLLM distillation checkpoint. Fix: delete {path.parent} "
            "or pass --no-resume to start over"
        )
    return blob


def _identity(cfg: DistillConfig) -> dict:
    """What must match for a checkpoint to be resumed (everything that changes the result)."""
    keys = (
        "base",
        "k",
        "steps",
        "batch_size",
        "seqlen",
        "lr",
        "tune",
        "body_lr",
        "data",
        "seed",
        "scoring",
        "max_blocks",
        "pool",
        "target_temperature",
        "lora_rank",
        "lora_alpha",
    )
    return {key: getattr(cfg, key) for key in keys}


def lora_body(body, rank: int, alpha: float, seed: int):
    """The backbone with LoRA adapters (PEFT) on every linear layer; only the adapters train."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ConfigError(
            "--tune lora: the peft package is not installed. Fix: pip install 'effeval[lora]' (or peft)"
        ) from None
    torch.manual_seed(seed)  # LoRA's A matrices are drawn from torch's global generator
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules="all-linear")
    return get_peft_model(body, config)


def distill(cfg: DistillConfig, texts: list[str] | None = None, heldout: list[str] | None = None) -> dict:
    """Run self-distillation; write the SpeLLM directory to ``cfg.out``; return the summary.

    ``texts``/``heldout``: training and evaluation text; by default ``cfg.data`` names files."""
    from tqdm.auto import tqdm

    cfg.validate()
    import time

    wall_start, cpu_start = time.perf_counter(), time.process_time()
    torch.manual_seed(cfg.seed)  # dropout-free models; only for any library-internal randomness
    teacher, tok = load_causal_lm(cfg.base, argument="--base")
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = SpeLLMForCausalLM.from_base(teacher, cfg.k, tokenizer=tok, seed=cfg.seed, scoring=cfg.scoring)
    student.spellm_config["base_model"] = str(cfg.base)
    if cfg.tune == "full":
        student.backbone = copy.deepcopy(student.backbone)
        for p in student.backbone.parameters():
            p.requires_grad_(True)
    elif cfg.tune == "lora":
        student.backbone = lora_body(copy.deepcopy(student.backbone), cfg.lora_rank, cfg.lora_alpha, cfg.seed)
    lm_head = teacher.get_output_embeddings()
    t_body = base_body(teacher)
    targets = MarginalTargets(student.codec, int(lm_head.weight.shape[0]), cfg.target_temperature)
    blocks, eval_blocks = make_blocks(tok, cfg, texts, heldout)
    logger.info(
        "spellm distill: %d training blocks x %d tokens, %d eval blocks; coverage %s",
        blocks.shape[0],
        cfg.seqlen,
        eval_blocks.shape[0],
        student.codec.coverage(),
    )

    groups = [{"params": list(student.heads.parameters()), "lr": cfg.lr}]
    if cfg.tune != "heads":
        trainable = [p for p in student.backbone.parameters() if p.requires_grad]
        groups.append({"params": trainable, "lr": cfg.body_lr})
    opt = torch.optim.AdamW(groups, weight_decay=0.0, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(cfg.steps))
    gen = torch.Generator().manual_seed(cfg.seed)
    state = DistillState()
    out = Path(cfg.out)
    ckpt = out / CHECKPOINT_DIR
    if cfg.resume and (ckpt / "state.pt").exists():
        blob = _load_checkpoint(ckpt / "state.pt")
        if blob["config"] != _identity(cfg):
            raise ConfigError(
                f"--out: {cfg.out} holds a checkpoint from a different run ({blob['config']}). Fix: pass the same "
                "settings, another --out, or --no-resume to start over"
            )
        student.heads.load_state_dict(blob["heads"])
        if blob["body"] is not None:
            student.backbone.load_state_dict(blob["body"])
        opt.load_state_dict(blob["opt"])
        sched.load_state_dict(blob["sched"])
        gen.set_state(blob["generator"])
        state = DistillState(**blob["state"])
        logger.info("spellm distill: resumed from %s at step %d", ckpt, state.step)

    def run_eval(step: int) -> None:
        student.eval()
        result = {
            "step": step,
            **evaluate(student, teacher, targets, eval_blocks, cfg.eval_positions, cfg.scoring),
        }
        state.evals.append(result)
        logger.info(
            "spellm eval step %d: top-1 agreement %.3f (majority baseline %.3f), heads KL %.3f, "
            "vocab KL %.3f",
            step,
            result["top1_agreement"],
            result["majority_baseline"],
            result["heads_kl"],
            result["vocab_kl"],
        )

    pool = None
    if cfg.tune == "heads" and cfg.pool > 0 and state.step < cfg.steps:
        # its own generator, so the pool is the same whether the run was resumed or not
        pool = build_pool(
            t_body, lm_head, targets, blocks, cfg.pool, torch.Generator().manual_seed(cfg.seed + 1)
        )
    if state.step == 0 and not state.evals:
        run_eval(0)
    bar = tqdm(
        range(state.step, cfg.steps),
        desc="spellm distill",
        initial=state.step,
        total=cfg.steps,
        disable=not cfg.progress,
        mininterval=1.0,
    )
    for step in bar:
        student.train()
        if pool is not None:
            idx = torch.randint(0, pool[0].shape[0], (cfg.batch_size * cfg.seqlen,), generator=gen)
            s_hidden, q, neg = pool[0][idx], pool[1][idx], pool[2][idx]
        else:
            idx = torch.randint(0, blocks.shape[0], (cfg.batch_size,), generator=gen)
            batch = blocks[idx]
            with torch.no_grad():
                t_hidden = t_body(input_ids=batch, use_cache=False).last_hidden_state
                q = targets.marginals(
                    targets.target_probs(lm_head(t_hidden).reshape(-1, lm_head.weight.shape[0]))
                )
                neg = neg_entropy(q)
            if cfg.tune != "heads":
                s_hidden = student.backbone(input_ids=batch, use_cache=False).last_hidden_state
            else:
                s_hidden = t_hidden
        lp = student.heads(s_hidden.reshape(-1, s_hidden.shape[-1]))
        loss = heads_kl(q, lp, neg).mean()  # = cross-entropy to the marginals minus their (constant) entropy
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        state.step = step + 1
        state.losses.append(round(loss.item(), 6))
        bar.set_postfix(kl=f"{state.losses[-1]:.3f}")
        if state.step % cfg.eval_every == 0 or state.step == cfg.steps:
            run_eval(state.step)
        if state.step % cfg.save_every == 0 and state.step < cfg.steps:
            _save_checkpoint(ckpt, student, opt, sched, gen, state, cfg)
        if cfg.stop_after is not None and state.step >= cfg.stop_after and state.step < cfg.steps:
            _save_checkpoint(ckpt, student, opt, sched, gen, state, cfg)
            logger.info(
                "spellm distill: stopped after step %d (checkpoint in %s); run again to resume",
                state.step,
                ckpt,
            )
            return {
                "config": asdict(cfg),
                "steps_done": state.step,
                "stopped_early": True,
                "losses": state.losses,
                "evals": state.evals,
            }
    student.eval()
    first, last = state.evals[0], state.evals[-1]
    summary = {
        "config": asdict(cfg),
        "steps_done": state.step,
        "initial": first,
        "final": last,
        "coverage": student.codec.coverage(),
        # this invocation only (a resumed run does not include the earlier part)
        "wall_s": round(time.perf_counter() - wall_start, 1),
        "cpu_s": round(time.process_time() - cpu_start, 1),
        "torch_threads": torch.get_num_threads(),
        "objective": (
            "sum_j cross-entropy of head j to symbol j of the teacher's argmax token (T=0)"
            if cfg.target_temperature == 0
            else "sum_j KL(teacher marginal of symbol j at temperature T || head j)"
        ),
    }
    student.spellm_config["distillation"] = summary
    if cfg.tune == "lora":  # fold the adapters in: the saved backbone is a plain AutoModel
        student.backbone = student.backbone.merge_and_unload()
    student.save_pretrained(out)
    from effeval.atomic import write_text_atomic

    write_text_atomic(
        out / "train_log.jsonl",
        "".join(
            json.dumps({"step": i + 1, "heads_kl": value}) + "\n" for i, value in enumerate(state.losses)
        ),
    )
    write_text_atomic(out / "eval_log.jsonl", "".join(json.dumps(row) + "\n" for row in state.evals))
    _save_checkpoint(ckpt, student, opt, sched, gen, state, cfg)
    summary["losses"] = state.losses
    summary["evals"] = state.evals
    return summary
