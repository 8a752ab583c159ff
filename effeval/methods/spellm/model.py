"""``SpeLLMForCausalLM``: any HF causal-LM backbone (without its output projection) + k heads.

One directory holds everything (``save_pretrained`` / ``from_pretrained``):

    effeval_spellm.json        format, k, alphabet, scoring mode, sizes, provenance, distillation log
    spellm_heads.safetensors   the heads (one Linear(hidden, k * 258))
    backbone/                  the base model's transformer body (AutoModel: no lm_head is loaded)
    tokenizer files            the base model's tokenizer (input vocabulary)

The backbone weights are always copied, so the directory is self-contained (the base model's
path is recorded as provenance only). At inference only ``AutoModel`` (the body) runs: the
vocabulary projection is neither loaded nor computed.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from effeval.errors import ConfigError, loading
from effeval.methods.spellm.alphabet import NUM_SYMBOLS, CharCodec, Step, check_k
from effeval.methods.spellm.heads import (
    MODES,
    best_rows,
    make_heads,
    sample_rows,
    string_logprob,
    string_mode,
    vocab_logprob,
    vocab_scores,
)

logger = logging.getLogger(__name__)

FORMAT = "effeval-spellm/v1"
CONFIG_NAME = "effeval_spellm.json"
HEADS_NAME = "spellm_heads.safetensors"
BACKBONE_DIR = "backbone"
NO_CACHE_TYPES = ("mamba", "mamba2")  # their cache API differs; they recompute (tiny zoo models)


def base_body(causal_lm):
    """The transformer body of an HF causal LM (``model.model`` for Llama, ``backbone`` for Mamba)."""
    body = getattr(causal_lm, "base_model", None)
    if body is None or body is causal_lm:
        raise ConfigError(
            f"base: {type(causal_lm).__name__} exposes no base model body. Fix: use an AutoModelForCausalLM "
            "checkpoint (Llama, Qwen2, Mistral, Mamba, ...)"
        )
    return body


def load_causal_lm(path: str, argument: str = "base", dtype=torch.float32, device: str = "cpu"):
    """(AutoModelForCausalLM, tokenizer) from a local directory, with clear errors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(os.path.expanduser(str(path)))
    if not p.is_dir() or not (p / "config.json").exists():
        raise ConfigError(
            f"{argument}: {str(path)!r} is not a model directory (no config.json). Fix: pass a folder written "
            "by save_pretrained, e.g. `effeval zoo path llama-sp --trained`"
        )
    if (p / CONFIG_NAME).exists():
        raise ConfigError(
            f"{argument}: {str(path)!r} is already a SpeLLM directory. Fix: pass its base model"
        )
    with loading(argument, path):
        model = AutoModelForCausalLM.from_pretrained(str(p), dtype=dtype).to(device).eval()
        tok = AutoTokenizer.from_pretrained(str(p))
    return model, tok


@dataclass
class ScoreItem:
    """A teacher-forced scoring request: context tokens, then the steps to score."""

    context: list[int]
    steps: list[Step]


class SpeLLMForCausalLM(torch.nn.Module):
    def __init__(self, backbone, heads, tokenizer, config: dict):
        super().__init__()
        self.backbone = backbone
        self.heads = heads
        self.tokenizer = tokenizer
        self.spellm_config = dict(config)
        self.k = int(config["k"])
        self.codec = CharCodec(tokenizer, self.k)
        model_type = getattr(getattr(backbone, "config", None), "model_type", "")
        self.use_cache = model_type not in NO_CACHE_TYPES

    # ------------------------------------------------------------------ build / save / load

    @classmethod
    def from_base(cls, base, k: int, tokenizer=None, seed: int = 0, scoring: str = "padded"):
        """Wrap a causal LM (directory or model object) with freshly initialised heads."""
        check_k(k)
        if scoring not in MODES:
            raise ConfigError(f"scoring: {scoring!r} is unknown. Fix: use one of {', '.join(MODES)}")
        source = None
        if isinstance(base, (str, os.PathLike)):
            source = str(base)
            base, tokenizer = load_causal_lm(source)
        if tokenizer is None:
            raise ConfigError(
                "tokenizer: none given for the base model. Fix: pass the base model's tokenizer"
            )
        CharCodec(tokenizer, k, argument="base tokenizer")  # fail early on a tokenizer with no strings
        body = base_body(base)
        cfg = base.config
        hidden = int(cfg.hidden_size)
        heads = make_heads(hidden, k)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            heads.proj.weight.normal_(0.0, hidden**-0.5 * 0.1, generator=gen)
            heads.proj.bias.zero_()
        heads.to(next(body.parameters()).dtype)
        out_emb = base.get_output_embeddings()
        vocab = int(out_emb.weight.shape[0]) if out_emb is not None else int(cfg.vocab_size)
        proj_bias = getattr(out_emb, "bias", None) if out_emb is not None else None
        config = {
            "format": FORMAT,
            "k": k,
            "alphabet": "bytes+END+EOS",
            "num_symbols": NUM_SYMBOLS,
            "scoring": scoring,
            "hidden_size": hidden,
            "vocab_size": vocab,
            "backbone": BACKBONE_DIR,
            "backbone_class": type(body).__name__,
            "base_model": source,
            "base_model_class": type(base).__name__,
            "projection_params": vocab * hidden + (vocab if proj_bias is not None else 0),
            "head_params": sum(p.numel() for p in heads.parameters()),
        }
        return cls(body, heads, tokenizer, config)

    def save_pretrained(self, out_dir) -> Path:
        from safetensors.torch import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        # the config marks a complete directory: an earlier one goes first, so a save stopped
        # half-way (Ctrl-C) leaves a folder that says it is incomplete, not old files mixed with new
        (out / CONFIG_NAME).unlink(missing_ok=True)
        self.backbone.save_pretrained(str(out / BACKBONE_DIR))
        self.tokenizer.save_pretrained(str(out))
        save_file(
            {n: p.detach().contiguous() for n, p in self.heads.state_dict().items()}, str(out / HEADS_NAME)
        )
        from effeval.model_files import honour_umask

        honour_umask(out)  # safetensors leaves its weights at 0600
        from effeval.atomic import write_text_atomic

        # written last: its presence marks a complete directory
        write_text_atomic(out / CONFIG_NAME, json.dumps(self.spellm_config, indent=2) + "\n")
        return out

    @classmethod
    def from_pretrained(cls, path, device: str = "cpu", dtype=None, argument: str = "pretrained"):
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        p = Path(os.path.expanduser(str(path)))
        if not p.is_dir():
            raise ConfigError(
                f"{argument}: no directory at {str(path)!r}. Fix: pass a folder made by "
                "`effeval spellm distill --base DIR --out DIR`"
            )
        if not (p / CONFIG_NAME).exists():
            raise ConfigError(
                f"{argument}: {str(path)!r} is not a SpeLLM directory (no {CONFIG_NAME}). Fix: convert the model "
                f"first with `effeval spellm distill --base {path} --out SPELLM_DIR` and pass SPELLM_DIR"
            )
        config = json.loads((p / CONFIG_NAME).read_text())
        if config.get("format") != FORMAT:
            raise ConfigError(
                f"{argument}: {CONFIG_NAME} has format {config.get('format')!r}, expected {FORMAT!r}. "
                "Fix: re-run `effeval spellm distill` with this effeval version"
            )
        k = check_k(config.get("k"))
        kwargs = {"dtype": dtype} if dtype is not None else {}
        body = AutoModel.from_pretrained(str(p / config.get("backbone", BACKBONE_DIR)), **kwargs)
        tok = AutoTokenizer.from_pretrained(str(p))
        heads = make_heads(int(config["hidden_size"]), k, int(config.get("num_symbols", NUM_SYMBOLS)))
        heads.load_state_dict(load_file(str(p / HEADS_NAME)))
        heads.to(next(body.parameters()).dtype)
        model = cls(body, heads, tok, config).to(device).eval()
        return model

    # ------------------------------------------------------------------ facts

    @property
    def device(self):
        return next(self.heads.parameters()).device

    @property
    def scoring(self) -> str:
        return self.spellm_config.get("scoring", "padded")

    def output_layer_facts(self) -> dict:
        """Head vs projection size and per-token FLOPs (multiply-add = 2 FLOPs)."""
        d, k, v = int(self.spellm_config["hidden_size"]), self.k, int(self.spellm_config["vocab_size"])
        head_params = sum(p.numel() for p in self.heads.parameters())
        proj_params = int(self.spellm_config["projection_params"])
        return {
            "k": k,
            "num_symbols": NUM_SYMBOLS,
            "hidden_size": d,
            "input_vocab_size": v,
            "head_params": head_params,
            "projection_params": proj_params,
            "head_vs_projection_params": head_params / proj_params,
            "output_flops_per_token": 2 * d * k * NUM_SYMBOLS,
            "projection_flops_per_token": 2 * d * v,
            "head_vs_projection_flops": (k * NUM_SYMBOLS) / v,
            "backbone_params": sum(p.numel() for p in self.backbone.parameters()),
        }

    # ------------------------------------------------------------------ forward

    def forward(self, input_ids, attention_mask=None, cache=None, use_cache: bool = False):
        """-> (head log-probs [B, T, k, |C|], cache). No vocabulary projection runs."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if use_cache and self.use_cache:
            kwargs.update(cache=cache, use_cache=True)
        else:
            kwargs["use_cache"] = False
        out = self.backbone(**kwargs)
        return self.heads(out.last_hidden_state), getattr(out, "cache", None)

    # ------------------------------------------------------------------ scoring

    def steps_for(self, token_ids, mode: str | None = None) -> list[Step]:
        """Steps that produce the given input tokens (long tokens become k-byte chunks; in
        ``vocab`` mode every token is one event, scored by its first-chunk row)."""
        if (mode or self.scoring) == "vocab":
            return [Step(self.codec.token_row(int(t)), [int(t)]) for t in token_ids]
        steps: list[Step] = []
        for t in token_ids:
            steps.extend(self.codec.token_steps(int(t)))
        return steps

    @torch.no_grad()
    def score(
        self,
        items: list[ScoreItem],
        max_length: int = 2048,
        batch_size: int = 8,
        mode: str | None = None,
        progress: bool = False,
    ) -> list[tuple[float, bool]]:
        """Exact log p of each item's steps given its context, and whether every step is the
        greedy (argmax) string. Sequences longer than ``max_length`` are scored in consecutive
        windows (each window sees at most ``max_length`` tokens of history)."""
        from tqdm.auto import tqdm

        mode = mode or self.scoring
        # flatten every item into windows: (item index, tokens, [(position, row)])
        windows = []
        for idx, item in enumerate(items):
            seq = list(item.context)
            targets = []
            for step in item.steps:
                if not seq:
                    raise ConfigError("context: empty. Fix: give at least one context token (e.g. EOS)")
                targets.append((len(seq) - 1, step.row))
                seq.extend(step.tokens)
            start = 0
            while start < len(targets):
                first = targets[start][0]
                end_pos = first + max_length  # exclusive bound on predicting positions in this window
                stop = start
                while stop < len(targets) and targets[stop][0] < end_pos:
                    stop += 1
                last = targets[stop - 1][0]
                lo = max(0, last + 1 - max_length)
                windows.append((idx, seq[lo : last + 1], [(p - lo, r) for p, r in targets[start:stop]]))
                start = stop
        totals = [0.0] * len(items)
        greedy = [True] * len(items)
        order = sorted(range(len(windows)), key=lambda i: -len(windows[i][1]))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        for batch in tqdm(batches, desc="spellm score", disable=not progress, leave=False):
            width = max(len(windows[i][1]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for b, i in enumerate(batch):
                toks = windows[i][1]
                ids[b, : len(toks)] = torch.tensor(toks)
                mask[b, : len(toks)] = 1
            lp, _ = self(ids.to(self.device), attention_mask=mask.to(self.device))
            for b, i in enumerate(batch):
                item_idx, _, targets = windows[i]
                pos = torch.tensor([p for p, _ in targets], device=lp.device)
                rows = torch.tensor([r for _, r in targets], dtype=torch.long, device=lp.device)
                step_lp = lp[b, pos]  # [n, k, |C|]
                if mode == "vocab":
                    token_rows = self.codec.rows().to(step_lp.device)
                    totals[item_idx] += float(vocab_logprob(step_lp, rows, token_rows).double().sum())
                    best = token_rows[vocab_scores(step_lp, token_rows).argmax(-1)]
                else:
                    totals[item_idx] += float(string_logprob(step_lp, rows, mode).double().sum())
                    best, _ = best_rows(step_lp, mode)
                if not bool((best == rows).all()):
                    greedy[item_idx] = False
        return list(zip(totals, greedy))

    # ------------------------------------------------------------------ generation

    @torch.no_grad()
    def generate(
        self,
        context: list[int],
        max_new_tokens: int = 256,
        stop_strings=(),
        do_sample: bool = False,
        temperature: float = 1.0,
        generator=None,
        max_length: int = 2048,
        mode: str | None = None,
    ):
        """Greedy or sampled decoding. Each step: heads -> best/sampled valid string -> its input
        tokens appended. Stops at EOS, at a stop string (output cut before it), after
        ``max_new_tokens`` input tokens, or at ``max_length``. Returns (text, stats dict)."""
        mode = string_mode(mode or self.scoring)  # vocab is a scoring mode; it decodes as padded
        seq = list(context)[-max_length:]
        out = bytearray()
        n_tokens = steps = 0
        stopped = "length"
        past = None
        new = seq
        text = ""
        while n_tokens < max_new_tokens and len(seq) < max_length:
            ids = torch.tensor([new if self.use_cache else seq], dtype=torch.long, device=self.device)
            lp, past = self(ids, cache=past, use_cache=self.use_cache)
            last = lp[:, -1]
            if do_sample and temperature > 0:
                row = sample_rows(last, generator, mode, temperature)[0]
            else:
                row = best_rows(last, mode)[0][0]
            steps += 1
            string = self.codec.row_to_string(row.tolist())
            if string is None:
                stopped = "eos"
                break
            out.extend(string)
            new = self.codec.string_to_tokens(string)
            seq.extend(new)
            n_tokens += len(new)
            text = out.decode("utf-8", errors="replace")
            hits = [text.find(s) for s in stop_strings if s and s in text]
            if hits:
                text = text[: min(hits)]
                stopped = "stop_string"
                break
        else:
            text = out.decode("utf-8", errors="replace")
        return text, {
            "steps": steps,
            "generated_tokens": n_tokens,
            "generated_bytes": len(out),
            "stopped": stopped,
        }
