"""Image scorers against direct computations with the zoo's tiny evaluators."""

import hashlib
from pathlib import Path

import pytest

from effeval.errors import ConfigError


def _noise_images(n, seed=0, size=48):
    import torch
    from PIL import Image

    gen = torch.Generator().manual_seed(seed)
    return [
        Image.fromarray(torch.randint(0, 256, (size, size, 3), generator=gen, dtype=torch.uint8).numpy())
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def clip_dir(zoo_path):
    return zoo_path("open-clip-tiny")


@pytest.fixture(scope="module")
def vqa_dir(zoo_path):
    return zoo_path("blip-vqa-tiny")


@pytest.fixture(scope="module")
def direct_clip(clip_dir):
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{clip_dir}")
    return model.eval(), preprocess, open_clip.get_tokenizer(f"local-dir:{clip_dir}")


def _direct_features(direct_clip, images, text=None):
    import torch

    model, preprocess, tokenizer = direct_clip
    with torch.no_grad():
        img = model.encode_image(torch.stack([preprocess(im.convert("RGB")) for im in images])).float()
        txt = model.encode_text(tokenizer([text])).float() if text is not None else None
    return img, txt


def test_clip_similarity_and_clipscore_match_direct_open_clip(clip_dir, direct_clip):
    import torch

    from effeval.image.scorers import build_scorers

    (scorer,) = build_scorers(["clip"], clip_model=clip_dir, device="cpu")
    images = _noise_images(3)
    for prompt in ("a red cup and a zebra on a table", "the Eiffel Tower at night"):
        got = scorer.score(images, {"id": "p", "prompt": prompt})
        img, txt = _direct_features(direct_clip, images, prompt)
        cos = torch.nn.functional.cosine_similarity(img, txt.expand_as(img), dim=-1)
        assert got["clip_similarity"] == pytest.approx(float(cos.mean()), abs=1e-5)
        expected_clipscore = float(torch.clamp(100 * cos, min=0).mean())
        assert got["clipscore"] == pytest.approx(expected_clipscore, abs=1e-3)
        assert expected_clipscore > 0  # else the clamp would hide a wrong cosine
    # CLIPScore went through torchmetrics (with the open_clip adapter), not the fallback
    assert scorer.metadata()["clipscore_impl"].startswith("torchmetrics")


def test_clipscore_weight_scales_score(clip_dir):
    from effeval.image.scorers import build_scorers

    images = _noise_images(2, seed=3)
    rec = {"id": "p", "prompt": "a red cup and a zebra on a table"}
    (plain,) = build_scorers(["clip"], clip_model=clip_dir, device="cpu")
    (hessel,) = build_scorers(["clip"], clip_model=clip_dir, clipscore_weight=2.5, device="cpu")
    assert hessel.score(images, rec)["clipscore"] == pytest.approx(
        2.5 * plain.score(images, rec)["clipscore"], rel=1e-5
    )


def test_clip_metadata_records_model_hash_and_template(clip_dir):
    from effeval.image.scorers import build_scorers

    (scorer,) = build_scorers(
        ["clip"], clip_model=clip_dir, clip_template="a photo of {prompt}", device="cpu"
    )
    meta = scorer.metadata()
    weights = Path(clip_dir) / "open_clip_model.safetensors"
    h = hashlib.sha256(b"open_clip_model.safetensors\0" + weights.read_bytes()).hexdigest()
    assert meta["weights_sha256"] == h
    assert meta["model_id"] == clip_dir and meta["path"] == str(Path(clip_dir).resolve())
    assert meta["text_template"] == "a photo of {prompt}"
    assert meta["tokenizer"] == "SimpleTokenizer" and "revision" in meta
    assert set(meta["definitions"]) == {"clip_similarity", "clipscore"}


@pytest.fixture(scope="module")
def direct_blip(vqa_dir):
    import transformers as tf

    return tf.AutoProcessor.from_pretrained(vqa_dir), tf.BlipForQuestionAnswering.from_pretrained(
        vqa_dir
    ).eval()


def _blip_direct_p_yes(direct_blip, image, question):
    """P(yes) from transformers' own BLIP generate(): raw logits of the first generated token."""
    import torch

    processor, model = direct_blip
    inputs = processor(images=image, text=question, return_tensors="pt")
    out = model.generate(
        **inputs, max_new_tokens=1, do_sample=False, output_logits=True, return_dict_in_generate=True
    )
    logits = out.logits[0][0]
    yes, no = processor.tokenizer.convert_tokens_to_ids(["yes", "no"])
    return float(torch.softmax(logits[[yes, no]], dim=-1)[0])


def test_vqa_p_yes_matches_blip_generate(vqa_dir, direct_blip):
    from effeval.image.scorers import build_scorers

    (scorer,) = build_scorers(["vqa"], vqa_model=vqa_dir, device="cpu")
    images = _noise_images(2, seed=1)
    questions = ["Is there a cup?", "Does the cup have black and white stripes on it?", "Is the car red?"]
    batched = scorer.p_yes(images, questions)  # questions of different lengths: padded batch
    assert batched.shape == (2, 3)
    for i, im in enumerate(images):
        for j, q in enumerate(questions):
            assert float(batched[i, j]) == pytest.approx(_blip_direct_p_yes(direct_blip, im, q), abs=1e-5)
    # the probabilities depend on the question (the tiny model is random, not constant)
    assert float(batched[0].max() - batched[0].min()) > 1e-4


def test_vqa_indicators_follow_their_definitions(vqa_dir):
    import torch

    from effeval.image.scorers import build_scorers

    (scorer,) = build_scorers(["vqa"], vqa_model=vqa_dir, device="cpu")
    # fixed P(yes) per (image, question): 2 images x 5 questions
    table = torch.tensor([[0.9, 0.2, 0.7, 0.6, 0.1], [0.8, 0.4, 0.3, 0.2, 0.3]])
    scorer.p_yes = lambda images, texts: table[: len(images), : len(texts)]
    record = {
        "id": "r",
        "prompt": "x",
        "questions": [
            {"id": "p1", "text": "a", "kind": "presence", "expected": "yes"},
            {"id": "p2", "text": "b", "kind": "presence", "expected": "yes"},
            {"id": "l1", "text": "c", "kind": "leak", "expected": "no"},
            {"id": "b1", "text": "d", "kind": "binding", "expected": "yes"},
            {"id": "b2", "text": "e", "kind": "binding", "expected": "no"},
        ],
    }
    got = scorer.score([None, None], record)
    # answered as expected (threshold 0.5): img0 [1,0,0,1,1], img1 [1,0,1,0,1]
    assert got["omission"] == pytest.approx(1 - (1 + 0 + 1 + 0) / 4)
    assert got["leakage"] == pytest.approx(1 - (0 + 1) / 2)  # the leak is seen on img0 only
    assert got["binding"] == pytest.approx((1 + 1 + 0 + 1) / 4)
    assert got["vqa_accuracy"] == pytest.approx((3 / 5 + 3 / 5) / 2)
    p_expected = [(0.9 + 0.8) / 2, (0.2 + 0.4) / 2, (0.3 + 0.7) / 2, (0.6 + 0.2) / 2, (0.9 + 0.7) / 2]
    assert got["vqa_p_expected"] == pytest.approx(sum(p_expected) / 5)
    assert got["q.l1.p_yes"] == pytest.approx(0.5)
    assert "dsg_score" not in got
    # DSG dependencies: p2 depends on p1, b1 on p2 (fails on both images), b2 on p1
    dsg = {
        **record,
        "questions": [
            {"id": "p1", "text": "a", "kind": "presence", "expected": "yes", "depends_on": []},
            {"id": "p2", "text": "b", "kind": "presence", "expected": "yes", "depends_on": [1]},
            {"id": "p3", "text": "c", "kind": "other", "expected": "no", "depends_on": [2]},
            {"id": "p4", "text": "d", "kind": "binding", "expected": "yes", "depends_on": [1]},
            {"id": "p5", "text": "e", "kind": "binding", "expected": "no", "depends_on": [4]},
        ],
    }
    # passed: img0 [1,0,0,1,1] -> with parents [1,0,0,1,1]; img1 [1,0,1,0,1] -> [1,0,0,0,0]
    assert scorer.score([None, None], dsg)["dsg_score"] == pytest.approx((3 + 1) / 10)
    # a record without leak questions has no leakage key (not a zero)
    no_leak = {**record, "questions": record["questions"][:2]}
    assert "leakage" not in scorer.score([None, None], no_leak)


def test_vqa_metadata(vqa_dir):
    from effeval.image.scorers import build_scorers

    (scorer,) = build_scorers(["vqa"], vqa_model=vqa_dir, vqa_template="Question: {question}", device="cpu")
    meta = scorer.metadata()
    assert meta["backend"] == "blip-vqa" and meta["question_template"] == "Question: {question}"
    assert len(meta["weights_sha256"]) == 64 and meta["model_id"] == vqa_dir
    assert "first answer step" in meta["p_yes"] and meta["threshold"] == 0.5


def test_quality_fid_matches_direct_formula(clip_dir, direct_clip):
    import numpy as np
    import scipy.linalg

    from effeval.image.scorers import build_scorers

    (scorer,) = build_scorers(["quality"], clip_model=clip_dir, device="cpu", kid_subsets=20)
    base, imgs = _noise_images(6, seed=10), _noise_images(6, seed=11)
    got_cos = []
    for k in range(3):  # three prompts, two seeds each
        rec = {"id": f"r{k}", "prompt": "p", "baseline_images": base[2 * k : 2 * k + 2]}
        got_cos.append(scorer.score(imgs[2 * k : 2 * k + 2], rec)["baseline_clip_cosine"])
    fb, _ = _direct_features(direct_clip, base)
    fi, _ = _direct_features(direct_clip, imgs)
    cos = (
        np.sum(fb.numpy() * fi.numpy(), 1)
        / np.linalg.norm(fb.numpy(), axis=1)
        / np.linalg.norm(fi.numpy(), axis=1)
    )
    assert got_cos == pytest.approx([cos[0:2].mean(), cos[2:4].mean(), cos[4:6].mean()], abs=1e-5)

    final = scorer.finalize()
    a, b = fb.double().numpy(), fi.double().numpy()
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    fid = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
    assert final["fid"] == pytest.approx(fid, rel=1e-3, abs=1e-6)
    assert set(final) == {"fid", "kid_mean", "kid_std"}
    assert scorer.finalize()["kid_mean"] == final["kid_mean"]  # seeded subset draws
    # identical sets: FID ~ 0
    (same,) = build_scorers(["quality"], clip_model=clip_dir, device="cpu", kid_subsets=5)
    same.score(base[:3], {"id": "s", "prompt": "p", "baseline_images": base[:3]})
    assert abs(same.finalize()["fid"]) < 1e-3


def test_bad_scorer_inputs_are_clear_errors(tmp_path, clip_dir):
    from effeval.image.scorers import build_scorers

    with pytest.raises(
        ConfigError, match=r"--scorers: unknown scorer\(s\) nope.*Fix: use names from clip, vqa, quality"
    ):
        build_scorers(["clip", "nope"])
    with pytest.raises(ConfigError, match="--scorers: no scorer"):
        build_scorers("")
    with pytest.raises(ConfigError, match="unknown option.*clip_modle"):
        build_scorers(["clip"], clip_modle=clip_dir)
    with pytest.raises(ConfigError, match="clip_model: .*neither an existing directory nor a hub id"):
        build_scorers(["clip"], clip_model=str(tmp_path / "missing" / "dir"))
    with pytest.raises(ConfigError, match="clip_model: .*no open_clip_config.json"):
        build_scorers(["clip"], clip_model=str(tmp_path))
    with pytest.raises(ConfigError, match="vqa_model: .*no config.json"):
        build_scorers(["vqa"], vqa_model=str(tmp_path))
    with pytest.raises(ConfigError, match="clip_template: .*no \\{prompt\\}"):
        build_scorers(["clip"], clip_model=clip_dir, clip_template="a photo")
    with pytest.raises(ConfigError, match="vqa_model: could not get hub model 'nobody/no-such-vqa-model'"):
        build_scorers(["vqa"], vqa_model="nobody/no-such-vqa-model")


def test_vqa_generic_image_text_to_text_backend_matches_generate(zoo_path):
    """The pluggable backend on a different architecture (a tiny Llava): P(yes) equals the
    documented formula applied to the logits of transformers' own generate()."""
    import torch
    import transformers as tf

    from effeval.image.scorers import build_scorers

    path = zoo_path("llava-tiny")
    (scorer,) = build_scorers(["vqa"], vqa_model=path, device="cpu")
    assert scorer.metadata()["backend"] == "image-text-to-text"
    processor = tf.AutoProcessor.from_pretrained(path)
    model = tf.AutoModelForImageTextToText.from_pretrained(path).eval()
    tok = processor.tokenizer

    def first_ids(words):
        return sorted({tok(w, add_special_tokens=False)["input_ids"][0] for w in words})

    yes, no = first_ids(["yes", "Yes", " yes", " Yes"]), first_ids(["no", "No", " no", " No"])
    image = _noise_images(1, seed=5)[0]
    questions = ["Is there a cup?", "Is the car red?"]
    got = scorer.p_yes([image], questions)
    for j, q in enumerate(questions):
        messages = [
            {
                "role": "user",
                "content": [{"type": "image"}, {"type": "text", "text": f"{q} Answer yes or no."}],
            }
        ]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
        assert prompt.endswith(f"{q} Answer yes or no.\nASSISTANT:")
        inputs = processor(images=[image], text=prompt, return_tensors="pt")
        out = model.generate(
            **inputs, max_new_tokens=1, do_sample=False, output_logits=True, return_dict_in_generate=True
        )
        logits = out.logits[0][0]
        pair = torch.stack([torch.logsumexp(logits[yes], 0), torch.logsumexp(logits[no], 0)])
        assert float(got[0, j]) == pytest.approx(float(torch.softmax(pair, 0)[0]), abs=1e-5)
