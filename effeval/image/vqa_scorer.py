"""Yes/no VQA scoring: BLIP-VQA or an image-text-to-text model answers each record's questions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from effeval.errors import config_error
from effeval.image.scorer_base import (
    DEFAULT_ITT_TEMPLATE,
    DEFAULT_VQA_MODEL,
    DEFAULT_VQA_TEMPLATE,
    Scorer,
    _load_images,
    _pick_device,
    rates_by_kind,
    resolve_model,
    weights_sha256,
)

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# VQA


class _BlipVqaBackend:
    """transformers BLIP-VQA (``BlipForQuestionAnswering``): question encoded against the image,
    then one step of the answer decoder from its start token ([DEC])."""

    kind = "blip-vqa"

    def __init__(self, path: str, device: str):
        import torch
        import transformers as tf

        self.torch = torch
        self.processor = tf.AutoProcessor.from_pretrained(path)
        self.processor.tokenizer.padding_side = "right"  # yes_no_logits slices off right padding
        self.model = tf.BlipForQuestionAnswering.from_pretrained(path).to(device).eval()
        self.device = device
        tok = self.processor.tokenizer
        self.yes_id, self.no_id = _single_token_id(tok, "yes"), _single_token_id(tok, "no")

    def yes_no_logits(self, image, questions: list[str]):
        """(n_questions, 2) logits of ("yes", "no") at the first answer step, for one image."""
        torch = self.torch
        enc = self.processor(
            images=[image] * len(questions), text=questions, return_tensors="pt", padding=True
        )
        enc = {k: v.to(self.device) for k, v in enc.items()}
        m = self.model
        with torch.no_grad():
            image_embeds = m.vision_model(pixel_values=enc["pixel_values"]).last_hidden_state
            image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
            question = m.text_encoder(
                input_ids=enc["input_ids"],
                attention_mask=enc["attention_mask"],
                encoder_hidden_states=image_embeds,
                encoder_attention_mask=image_mask,
            ).last_hidden_state
            # The answer decoder runs per question on the unpadded question states: in transformers
            # 5.24 BLIP's decoder does not mask padded encoder positions exactly (results move
            # with the padding length), while slicing reproduces BLIP's own generate().
            start = torch.full((1, 1), m.decoder_start_token_id, device=self.device)
            lengths = enc["attention_mask"].sum(dim=1).tolist()
            logits = torch.cat(
                [
                    m.text_decoder(
                        input_ids=start, encoder_hidden_states=question[k : k + 1, : int(n)]
                    ).logits[:, 0, :]
                    for k, n in enumerate(lengths)
                ]
            )
        return logits[:, [self.yes_id, self.no_id]].float()


class _ImageTextToTextBackend:
    """Any ``AutoModelForImageTextToText`` VLM: the question (in the processor's chat template
    when it has one) with one image; logits of the next token after the prompt. "yes" / "no"
    logits are the log-sum-exp over the first tokens of {yes, Yes, " yes", " Yes"} and likewise
    for no, so capitalisation and a leading space do not matter."""

    kind = "image-text-to-text"

    def __init__(self, path: str, device: str, template: str):
        import torch
        import transformers as tf

        self.torch = torch
        self.processor = tf.AutoProcessor.from_pretrained(path)
        self.model = tf.AutoModelForImageTextToText.from_pretrained(path).to(device).eval()
        self.device = device
        self.template = template
        tok = getattr(self.processor, "tokenizer", self.processor)
        self.yes_ids = _first_token_ids(tok, ["yes", "Yes", " yes", " Yes"])
        self.no_ids = _first_token_ids(tok, ["no", "No", " no", " No"])

    def _prompt(self, question: str) -> str:
        text = self.template.format(question=question)
        if getattr(self.processor, "chat_template", None):
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
            return self.processor.apply_chat_template(messages, add_generation_prompt=True)
        return text

    def yes_no_logits(self, image, questions: list[str]):
        torch = self.torch
        rows = []
        for q in questions:  # one at a time: no padding side to get wrong
            enc = self.processor(images=[image], text=self._prompt(q), return_tensors="pt").to(self.device)
            with torch.no_grad():
                last = self.model(**enc).logits[0, -1, :].float()
            rows.append(
                torch.stack([torch.logsumexp(last[self.yes_ids], 0), torch.logsumexp(last[self.no_ids], 0)])
            )
        return torch.stack(rows)


def _single_token_id(tok, word: str) -> int:
    ids = tok(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise config_error(
            "vqa_model",
            f"its tokenizer splits the answer {word!r} into {len(ids)} tokens",
            "use a VQA model whose vocabulary has 'yes' and 'no' as single tokens",
        )
    return ids[0]


def _first_token_ids(tok, words: list[str]) -> list[int]:
    ids = []
    for w in words:
        t = tok(w, add_special_tokens=False)["input_ids"]
        if t and t[0] not in ids:
            ids.append(t[0])
    if not ids:
        raise config_error(
            "vqa_model", f"its tokenizer encodes none of {words}", "use a model with a text tokenizer"
        )
    return ids


def _detect_vqa_backend(path: str) -> str:
    import json

    cfg_file = Path(path) / "config.json"
    if not cfg_file.is_file():
        raise config_error(
            "vqa_model",
            f"{path} has no config.json, so it is not a transformers model directory",
            "pass a BLIP-VQA-style or image-text-to-text model directory, e.g. zoo:blip-vqa-tiny",
        )
    cfg = json.loads(cfg_file.read_text())
    archs = cfg.get("architectures") or []
    return (
        "blip-vqa"
        if "BlipForQuestionAnswering" in archs or cfg.get("model_type") == "blip"
        else "image-text-to-text"
    )


class VqaScorer(Scorer):
    name = "vqa"

    def __init__(
        self,
        vqa_model: str = DEFAULT_VQA_MODEL,
        vqa_backend: str = "auto",
        vqa_template: str | None = None,
        threshold: float = 0.5,
        device: str | None = None,
    ):
        if not 0.0 < float(threshold) < 1.0:
            raise config_error("threshold", f"{threshold} is outside (0, 1)", "use a probability such as 0.5")
        self.info = resolve_model(vqa_model, "vqa_model")
        path = self.info["path"]
        backend = _detect_vqa_backend(path) if vqa_backend == "auto" else vqa_backend
        device = _pick_device(device)
        if backend == "blip-vqa":
            self.template = vqa_template or DEFAULT_VQA_TEMPLATE
            self.backend = _BlipVqaBackend(path, device)
        elif backend == "image-text-to-text":
            self.template = vqa_template or DEFAULT_ITT_TEMPLATE
            self.backend = _ImageTextToTextBackend(path, device, self.template)
        else:
            raise config_error(
                "vqa_backend", f"{vqa_backend!r} is unknown", "use auto, blip-vqa or image-text-to-text"
            )
        if "{question}" not in self.template:
            raise config_error(
                "vqa_template", f"{self.template!r} has no {{question}} field", "include {question}"
            )
        self.threshold = float(threshold)
        self.info["weights_sha256"] = weights_sha256(path)

    def metadata(self) -> dict[str, Any]:
        return {
            "scorer": self.name,
            **self.info,
            "library": "transformers",
            "backend": self.backend.kind,
            "question_template": self.template,
            "threshold": self.threshold,
            "p_yes": "softmax over the (yes, no) answer-token logits at the first answer step",
            "definitions": {
                "vqa_accuracy": "share of questions whose thresholded answer equals the expected answer",
                "vqa_p_expected": "mean probability of the expected answer",
                "leakage": "share of kind=leak questions answered against expectation (leak seen)",
                "omission": "share of kind=presence questions answered against expectation (object missing)",
                "binding": "share of kind=binding questions answered as expected",
                "dsg_score": "(records with depends_on, e.g. DSG) share of questions passed together with all their parents",
            },
        }

    def p_yes(self, images, questions: list[str]):
        """(n_images, n_questions) tensor of P(yes)."""
        import torch

        images = _load_images(images, "images")
        texts = [self.template.format(question=q) for q in questions]
        if self.backend.kind == "image-text-to-text":
            texts = list(questions)  # the backend applies its template itself
        rows = [torch.softmax(self.backend.yes_no_logits(im, texts), dim=-1)[:, 0] for im in images]
        return torch.stack(rows).cpu()

    def _dsg_score(self, p, questions: list[dict]) -> float:
        """DSG's rule: a question counts as passed only if it and all its parents (``depends_on``
        proposition ids -> question ids ``p<n>``) are passed; mean over questions and images."""
        index = {q["id"]: j for j, q in enumerate(questions)}
        passed = [
            [(float(p[i, j]) >= self.threshold) == (q["expected"] == "yes") for j, q in enumerate(questions)]
            for i in range(p.shape[0])
        ]

        def ok(i: int, j: int, seen: frozenset) -> bool:
            parents = [index[f"p{d}"] for d in questions[j].get("depends_on", []) if f"p{d}" in index]
            return passed[i][j] and all(k in seen or ok(i, k, seen | {j}) for k in parents)

        scores = [ok(i, j, frozenset()) for i in range(p.shape[0]) for j in range(len(questions))]
        return sum(scores) / len(scores)

    def score(self, images, record: dict) -> dict[str, float]:
        questions = record.get("questions") or []
        if not questions or not images:
            return {}
        p = self.p_yes(images, [q["text"] for q in questions])  # (images, questions)
        expected_yes = [q["expected"] == "yes" for q in questions]
        out: dict[str, float] = {}
        correct_by_kind: dict[str, list[float]] = {}
        p_expected = []
        for j, q in enumerate(questions):
            col = p[:, j]
            said_yes = col >= self.threshold
            correct = (said_yes == expected_yes[j]).float().mean().item()
            correct_by_kind.setdefault(q.get("kind", "other"), []).append(correct)
            p_expected.append((col if expected_yes[j] else 1 - col).mean().item())
            out[f"q.{q['id']}.p_yes"] = col.mean().item()
        if any(q.get("depends_on") for q in questions):
            out["dsg_score"] = self._dsg_score(p, questions)
        out.update(rates_by_kind(correct_by_kind))
        out["vqa_p_expected"] = sum(p_expected) / len(p_expected)
        return out
