"""Interventions on contextual prompt embeddings (Kaplan et al., arXiv 2504.01137).

Spec grammar (one ``--intervention`` each)::

    none
    drop:TARGET[|TARGET...][@pad|@mask]     replace/remove these positions
    keep:TARGET[|TARGET...][@pad|@mask]     replace/remove every other position
    patch:ITEM[|ITEM...]                    the item's positions <- the item encoded alone
    isolate:ITEM[|ITEM...]                  the items' positions <- each item encoded alone, every
                                            other position but BOS <- the pad prompt's (no
                                            position then carries one item into another)
    drop-redundant[@pad|@mask]              drop the expression tokens the redundancy analysis
                                            found unnecessary (see ``redundancy``)
    ...@pooled=pad                          SDXL: also replace the pooled embedding by the pad
                                            prompt's (default: keep the full prompt's)

A TARGET is a word or expression of the prompt (every occurrence, case-insensitive), ``#N`` for
an absolute token position (0 is BOS), or ``{field}`` for the value(s) of a benchmark record's
field (a string or a list of strings), e.g. ``patch:{leak.target}``. An empty list is a
record with none of those words: the intervention changes nothing for it (``changed_positions``
is empty); a missing field is an error.

Modes:

- ``pad`` (the paper's; default): a "removed" position takes the contextual embedding, at the
  same position, of a prompt made only of padding (``""`` -> BOS, EOS, padding). The sequence
  keeps its length; nothing is masked.
- ``mask``: the positions are physically removed (a shorter ``prompt_embeds``; the stock
  StableDiffusionPipeline passes no encoder attention mask to the UNet, and a shorter sequence
  is exactly equivalent to masking those keys in every cross-attention). BOS is always kept.
  ``negative_prompt_embeds`` get the same length (diffusers' own "" negative at that length).

``keep`` replaces every position outside the kept set -- including EOS and the padding
positions, which carry the whole prompt because CLIP's text encoder is causal. ``drop`` touches
only the chosen positions, so later positions still carry the dropped word (that is the point
of comparing the two).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from effeval.errors import config_error
from effeval.image.encoders import EncodedPrompt, PromptEncoder, find_expression, positions_for_span

NAMES = ("none", "keep", "drop", "patch", "isolate", "drop-redundant")
MODES = ("pad", "mask")
PLACEHOLDER_RE = re.compile(r"^\{([A-Za-z_][\w.]*)\}$")


@dataclass(frozen=True)
class InterventionSpec:
    name: str
    targets: tuple[str, ...] = ()
    mode: str = "pad"
    pooled: str = "full"

    @property
    def label(self) -> str:
        """The spec as written canonically; also the column name in reports."""
        text = self.name
        if self.targets:
            text += ":" + "|".join(self.targets)
        if self.name in ("keep", "drop", "drop-redundant") and self.mode != "pad":
            text += f"@{self.mode}"
        if self.pooled != "full":
            text += f"@pooled={self.pooled}"
        return text

    @property
    def slug(self) -> str:
        """Filesystem-safe, unique per label (used for image file names)."""
        import hashlib

        base = re.sub(r"[^A-Za-z0-9]+", "-", self.label).strip("-")[:40] or "x"
        return f"{base}-{hashlib.sha1(self.label.encode()).hexdigest()[:6]}" if base != self.label else base


def parse_intervention(spec: str) -> InterventionSpec:
    """``drop:red ball|#3@mask`` -> InterventionSpec; a ConfigError names the problem and the fix."""
    text = str(spec).strip()
    head, *options = text.split("@")
    name, _, target_text = head.partition(":")
    name = name.strip()
    if name not in NAMES:
        raise config_error(
            "--intervention",
            f"{spec!r}: unknown intervention {name!r}",
            f"use one of {', '.join(NAMES)} (e.g. 'drop:red', 'keep:gate@mask', 'patch:{{leak.target}}')",
        )
    targets = tuple(t.strip() for t in target_text.split("|") if t.strip()) if target_text else ()
    mode, pooled = "pad", "full"
    for opt in options:
        opt = opt.strip()
        if opt in MODES:
            mode = opt
        elif opt.startswith("pooled="):
            pooled = opt.split("=", 1)[1]
            if pooled not in ("full", "pad"):
                raise config_error(
                    "--intervention", f"{spec!r}: pooled={pooled!r}", "use @pooled=full or @pooled=pad"
                )
        else:
            raise config_error(
                "--intervention", f"{spec!r}: unknown option @{opt}", "use @pad, @mask or @pooled=pad"
            )
    if name in ("keep", "drop", "patch", "isolate") and not targets:
        raise config_error(
            "--intervention",
            f"{spec!r}: {name} needs targets",
            f"write {name}:WORD or {name}:WORD|OTHER WORD or {name}:{{record_field}}",
        )
    if name in ("none", "drop-redundant") and targets:
        raise config_error("--intervention", f"{spec!r}: {name} takes no targets", f"write just {name}")
    if name in ("patch", "isolate") and mode != "pad":
        raise config_error("--intervention", f"{spec!r}: {name} has no mask mode", f"write {name}:ITEM")
    return InterventionSpec(name, targets, mode, pooled)


@dataclass
class Conditioning:
    """Keyword arguments for the stock pipeline call, plus what was done (for the report)."""

    prompt_embeds: Any
    negative_prompt_embeds: Any
    pooled_prompt_embeds: Any = None
    negative_pooled_prompt_embeds: Any = None
    info: dict = field(default_factory=dict)

    def pipeline_kwargs(self) -> dict:
        kw = {"prompt_embeds": self.prompt_embeds}
        if self.negative_prompt_embeds is not None:  # FLUX takes none
            kw["negative_prompt_embeds"] = self.negative_prompt_embeds
        if self.pooled_prompt_embeds is not None:
            kw["pooled_prompt_embeds"] = self.pooled_prompt_embeds
            if self.negative_pooled_prompt_embeds is not None:
                kw["negative_pooled_prompt_embeds"] = self.negative_pooled_prompt_embeds
        return kw


def resolve_targets(spec: InterventionSpec, record: dict | None) -> list[str]:
    """Expand ``{field}`` placeholders from the benchmark record."""
    out: list[str] = []
    for target in spec.targets:
        m = PLACEHOLDER_RE.match(target)
        if not m:
            out.append(target)
            continue
        value: Any = record or {}
        for key in m.group(1).split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is None or value == "":  # [] is a record without such words: nothing to change
            rid = (record or {}).get("id", "?")
            raise config_error(
                "--intervention",
                f"{spec.label!r}: record {rid!r} has no field {m.group(1)!r}",
                "use a field that every record of the benchmark has, or a literal word",
            )
        out.extend([value] if isinstance(value, str) else [str(v) for v in value])
    return out


def target_positions(
    encoder: PromptEncoder, enc: EncodedPrompt, targets: list[str], argument: str
) -> list[int]:
    positions: set[int] = set()
    for target in targets:
        positions.update(encoder.positions(enc, target, argument=argument))
    return sorted(positions)


def _base(encoder: PromptEncoder, enc: EncodedPrompt, spec: InterventionSpec) -> Conditioning:
    neg, neg_pooled = encoder.negative(enc.length)
    pooled = enc.pooled
    if pooled is not None and spec.pooled == "pad":
        pooled = encoder.pad_prompt().pooled
    return Conditioning(
        enc.embeds.clone(),
        neg,
        None if pooled is None else pooled.clone(),
        neg_pooled,
        info={"intervention": spec.label, "length": enc.length},
    )


def replace_positions(
    encoder: PromptEncoder, enc: EncodedPrompt, positions: list[int], spec: InterventionSpec
) -> Conditioning:
    """Mode pad: ``positions`` <- the pad prompt's embeddings at the same positions."""
    cond = _base(encoder, enc, spec)
    pad = encoder.pad_prompt()
    if positions:
        cond.prompt_embeds[:, positions] = pad.embeds[:, positions]
    cond.info.update(changed_positions=list(positions))
    return cond


def remove_positions(
    encoder: PromptEncoder, enc: EncodedPrompt, positions: list[int], spec: InterventionSpec
) -> Conditioning:
    """Mode mask: a shorter sequence without ``positions`` (BOS always stays)."""
    removed = sorted(set(positions) - set(enc.fixed))
    keep_idx = [p for p in range(enc.length) if p not in set(removed)]
    cond = _base(encoder, enc, spec)
    cond.prompt_embeds = enc.embeds[:, keep_idx].clone()
    cond.negative_prompt_embeds, cond.negative_pooled_prompt_embeds = encoder.negative(len(keep_idx))
    cond.info.update(removed_positions=removed, length=len(keep_idx))
    return cond


def _apply_positions(encoder, enc, positions, spec) -> Conditioning:
    if spec.mode == "mask":
        return remove_positions(encoder, enc, positions, spec)
    return replace_positions(encoder, enc, positions, spec)


def _alone_rows(
    encoder: PromptEncoder, enc: EncodedPrompt, item: str, argument: str
) -> list[tuple[int, EncodedPrompt, int]]:
    """(position in the prompt, the item encoded alone, its position there) for every token of
    every occurrence of ``item``: what patching writes."""
    alone = encoder.encode(item)
    alone_pos = alone.content_positions
    item_ids = [alone.input_ids[p] for p in alone_pos]
    spans = find_expression(enc.prompt, item)
    if not spans:
        words = ", ".join(repr(w["word"]) for w in encoder.words(enc))
        raise config_error(
            argument,
            f"item {item!r} is not in the prompt {enc.prompt!r}",
            f"patch an item that occurs in the prompt (its words: {words})",
        )
    rows = []
    for start, end in spans:
        pos = positions_for_span(enc, start, end)
        if [enc.input_ids[p] for p in pos] != item_ids:
            raise config_error(
                argument,
                f"item {item!r} tokenizes differently inside {enc.prompt!r} than alone",
                "patch a whole word or expression (not part of a word)",
            )
        rows += [(p, alone, alone_pos[k]) for k, p in enumerate(pos)]
    return rows


def patch_items(
    encoder: PromptEncoder,
    enc: EncodedPrompt,
    items: list[str],
    spec: InterventionSpec,
    argument: str = "--intervention patch",
) -> Conditioning:
    """Each occurrence of each item: its positions <- the item encoded alone (uncontextualised)."""
    cond = _base(encoder, enc, spec)
    changed: list[int] = []
    for item in items:
        for p, alone, q in _alone_rows(encoder, enc, item, argument):
            cond.prompt_embeds[:, p] = alone.embeds[:, q]
            changed.append(p)
    cond.info.update(changed_positions=sorted(set(changed)), items=list(items))
    return cond


def isolate_items(
    encoder: PromptEncoder,
    enc: EncodedPrompt,
    items: list[str],
    spec: InterventionSpec,
    argument: str = "--intervention isolate",
) -> Conditioning:
    """The items' positions <- each item encoded alone; every other position but BOS (function
    words, EOS, padding: in a causal encoder these carry everything before them) <- the pad
    prompt's. No position then carries one item's information into another's: what the
    denoiser still mixes up here, it mixes up by itself."""
    rows = [r for item in items for r in _alone_rows(encoder, enc, item, argument)]
    items_at = {p for p, _, _ in rows}
    others = [p for p in range(enc.length) if p not in items_at and p not in enc.fixed]
    cond = replace_positions(encoder, enc, others, spec)
    for p, alone, q in rows:
        cond.prompt_embeds[:, p] = alone.embeds[:, q]
    cond.info.pop("changed_positions", None)  # all of them: not worth listing
    cond.info.update(item_positions=sorted(items_at), n_replaced=len(others), items=list(items))
    return cond


def apply_intervention(
    encoder: PromptEncoder,
    enc: EncodedPrompt,
    spec: InterventionSpec,
    record: dict | None = None,
    redundant_positions: list[int] | None = None,
) -> Conditioning:
    """The conditioning for ``spec`` on the encoded prompt (``record`` fills ``{field}`` targets)."""
    argument = f"--intervention {spec.label}"
    if spec.name == "none":
        cond = _base(encoder, enc, spec)
        cond.info.update(changed_positions=[])
        return cond
    if spec.name == "patch":
        return patch_items(encoder, enc, resolve_targets(spec, record), spec, argument)
    if spec.name == "isolate":
        return isolate_items(encoder, enc, resolve_targets(spec, record), spec, argument)
    if spec.name == "drop-redundant":
        if redundant_positions is None:
            raise config_error(
                argument,
                "needs a redundancy analysis of the prompt",
                "run it through `python -m effeval.image run` (which analyses each prompt first)",
            )
        return _apply_positions(encoder, enc, sorted(redundant_positions), spec)
    positions = target_positions(encoder, enc, resolve_targets(spec, record), argument)
    if spec.name == "drop":
        return _apply_positions(encoder, enc, positions, spec)
    # keep: everything but BOS and the kept positions goes (EOS and padding too: they carry the prompt).
    others = [p for p in range(enc.length) if p not in set(positions) and p not in enc.fixed]
    cond = _apply_positions(encoder, enc, others, spec)
    cond.info.pop("changed_positions", None)  # all but the kept ones: not worth listing
    cond.info.update(kept_positions=positions, n_replaced=len(others))
    return cond
