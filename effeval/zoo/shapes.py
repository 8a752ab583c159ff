"""Models trained on the shapes world (``effeval zoo build --shapes``), offline, one CPU thread.

| name | what | trained on |
|---|---|---|
| shapes-clip | open_clip CLIP (ViT 32 px, 2-layer text tower, real CLIP BPE tokenizer), contrastive | train-split scenes and their captions |
| shapes-sd | ``StableDiffusionPipeline``: shapes-clip's text tower as ``CLIPTextModel``, a small ``AutoencoderKL`` (32 px -> 4x8x8), a small ``UNet2DConditionModel`` with cross-attention, DDIM | the same scenes' captions, drawn in the caption's order (``generator_layout``) |
| shapes-judge | a cell reader (shape and pattern from the cell's silhouette, colour from its pixels); answers the benchmarks' yes/no questions | rendered ``train``-split scenes only: the held-out colour-shape combinations stay unseen, so its accuracy on them is a generalisation result |

Step counts are fixed (the build is reproducible from its seeds); the CPU time each stage took is
written to the model folder's ``effeval_zoo.json``. Nothing here is downloaded. Every entry is
registered with ``tier="trained"``: its cache folder says ``-trained`` (older caches named
``-random`` are not reused).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from pathlib import Path

from effeval.zoo import register

logger = logging.getLogger(__name__)

SEED = 15
CLIP_CFG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}
CLIP_STEPS, CLIP_BATCH = 500, 64
TRAIN_CONTEXT = 24  # captions are <= 20 tokens; the text tower is causal, so later positions never
# change earlier ones and training on the first 24 positions is exact for them
VAE_STEPS, VAE_BATCH = 400, 16
UNET_STEPS, UNET_BATCH = 1500, 32
UNET_LR = 1e-3  # after 100 warm-up steps, cosine to a tenth
MIN_SNR_GAMMA = 5.0
JUDGE_STEPS, JUDGE_BATCH = 450, 32
POOL = 8000
SD_POOL = 3000  # the first 3000 of the CLIP pool (same draws): rendering costs CPU too
# CPU-time bounds (one thread), safety stops only: the step counts above take ~115 and ~800
# CPU-s (0.29 and 0.53 CPU-s a step); the machine these were built on gave a build ~1/3 of a core
VAE_CPU_S = 240.0
UNET_CPU_S = 1100.0
PAD_TOKEN = "!"  # id 0: open_clip pads with 0, so the HF tokenizer pads with the same id


def _threads() -> None:
    import torch

    torch.set_num_threads(1)


def _scenes(rng: random.Random, n: int, split: str = "train"):
    from effeval.image.shapes.world import random_scene

    return [random_scene(rng, split=split) for _ in range(n)]


class _Pool:
    """A fixed pool of rendered train-split scenes, drawn from by batch (rendering is the slow part)."""

    def __init__(self, n: int, seed: int, split: str = "train", layout=None):
        """``layout``: scene -> the scene drawn for its caption (default: the scene itself)."""
        from effeval.image.shapes.judge import images_tensor
        from effeval.image.shapes.world import caption, render

        rng = random.Random(seed)
        self.scenes = _scenes(rng, n, split)
        if layout is not None:
            self.scenes = [layout(s) for s in self.scenes]
        self.captions = [caption(s) for s in self.scenes]
        self.pixels = images_tensor([render(s) for s in self.scenes])
        self.rng = random.Random(seed + 1)

    @staticmethod
    def captions_only(n: int, seed: int, split: str = "train") -> list[str]:
        """The captions of ``_Pool(n, seed, split)`` without rendering (same random draws)."""
        from effeval.image.shapes.world import caption

        return [caption(s) for s in _scenes(random.Random(seed), n, split)]

    def batch(self, n: int):
        idx = [self.rng.randrange(len(self.scenes)) for _ in range(n)]
        return idx, self.pixels[idx], [self.captions[i] for i in idx]


# --- CLIP ------------------------------------------------------------------------------------


def train_clip(out: Path, pool: _Pool, steps: int = CLIP_STEPS) -> dict:
    import open_clip
    import torch
    from tqdm.auto import tqdm

    from effeval.zoo.image_scorers import save_open_clip

    _threads()
    torch.manual_seed(SEED)
    model = open_clip.CLIP(**CLIP_CFG)
    tok = open_clip.get_tokenizer("ViT-B-32")  # the CLIP BPE tokenizer that ships with open_clip
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps, pct_start=0.1)
    start = time.process_time()
    losses = []
    for _ in tqdm(range(steps), desc="shapes-clip", unit="step"):
        _, px, caps = pool.batch(CLIP_BATCH)
        # identical captions in a batch are positives for each other
        same = torch.tensor([[a == b for b in caps] for a in caps], dtype=torch.float32)
        img = torch.nn.functional.normalize(model.encode_image(px * 0.5 + 0.5), dim=-1)
        txt = torch.nn.functional.normalize(encode_text_prefix(model, tok(caps)[:, :TRAIN_CONTEXT]), dim=-1)
        logits = model.logit_scale.exp() * img @ txt.T
        target = same / same.sum(1, keepdim=True)
        loss = (
            torch.sum(-target * logits.log_softmax(1), 1).mean()
            + torch.sum(-target * logits.T.log_softmax(1), 1).mean()
        ) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    # pixel_values = image / 255: the world's images are fed unnormalised
    save_open_clip(model, out, CLIP_CFG, mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0])
    return {
        "steps": steps,
        "batch": CLIP_BATCH,
        "cpu_s": round(time.process_time() - start, 1),
        "final_loss": sum(losses[-50:]) / len(losses[-50:]),
    }


def encode_text_prefix(model, ids):
    """open_clip's ``encode_text`` on the first ``ids.shape[1]`` positions only (causal mask)."""
    n = ids.shape[1]
    x = model.token_embedding(ids) + model.positional_embedding[:n]
    x = model.transformer(x, attn_mask=model.attn_mask[:n, :n])
    x = model.ln_final(x)
    pooled = x[torch_arange(ids.shape[0]), ids.argmax(dim=-1)]
    return pooled @ model.text_projection


def torch_arange(n: int):
    import torch

    return torch.arange(n)


def load_open_clip(path: Path):
    import open_clip
    from safetensors.torch import load_file

    cfg = json.loads((Path(path) / "open_clip_config.json").read_text())
    model = open_clip.CLIP(**cfg["model_cfg"])
    model.load_state_dict(load_file(str(Path(path) / "open_clip_model.safetensors")))
    return model.eval()


def open_clip_text_to_hf(model, tokenizer):
    """open_clip's text tower as a transformers ``CLIPTextModel`` with the same last hidden state
    (after ``ln_final``): same causal attention, exact GELU, LayerNorm eps 1e-5."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    width = model.token_embedding.weight.shape[1]
    blocks = model.transformer.resblocks
    cfg = CLIPTextConfig(
        vocab_size=model.token_embedding.weight.shape[0],
        hidden_size=width,
        intermediate_size=blocks[0].mlp.c_fc.weight.shape[0],
        num_hidden_layers=len(blocks),
        num_attention_heads=blocks[0].attn.num_heads,
        max_position_embeddings=model.positional_embedding.shape[0],
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        projection_dim=model.text_projection.shape[1],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    hf = CLIPTextModel(cfg).eval()
    sd = {
        "text_model.embeddings.token_embedding.weight": model.token_embedding.weight,
        "text_model.embeddings.position_embedding.weight": model.positional_embedding,
        "text_model.final_layer_norm.weight": model.ln_final.weight,
        "text_model.final_layer_norm.bias": model.ln_final.bias,
    }
    for i, b in enumerate(blocks):
        p = f"text_model.encoder.layers.{i}."
        q, k, v = b.attn.in_proj_weight.chunk(3)
        qb, kb, vb = b.attn.in_proj_bias.chunk(3)
        sd.update(
            {
                p + "self_attn.q_proj.weight": q,
                p + "self_attn.q_proj.bias": qb,
                p + "self_attn.k_proj.weight": k,
                p + "self_attn.k_proj.bias": kb,
                p + "self_attn.v_proj.weight": v,
                p + "self_attn.v_proj.bias": vb,
                p + "self_attn.out_proj.weight": b.attn.out_proj.weight,
                p + "self_attn.out_proj.bias": b.attn.out_proj.bias,
                p + "layer_norm1.weight": b.ln_1.weight,
                p + "layer_norm1.bias": b.ln_1.bias,
                p + "layer_norm2.weight": b.ln_2.weight,
                p + "layer_norm2.bias": b.ln_2.bias,
                p + "mlp.fc1.weight": b.mlp.c_fc.weight,
                p + "mlp.fc1.bias": b.mlp.c_fc.bias,
                p + "mlp.fc2.weight": b.mlp.c_proj.weight,
                p + "mlp.fc2.bias": b.mlp.c_proj.bias,
            }
        )
    with torch.no_grad():
        own = set(hf.state_dict())
        # transformers versions differ on whether the keys carry the "text_model." prefix
        sd = {k if k in own else k.removeprefix("text_model."): v.detach().clone() for k, v in sd.items()}
        missing, unexpected = hf.load_state_dict(sd, strict=False)
    assert not unexpected and all("position_ids" in m for m in missing), (missing, unexpected)
    return hf


# --- the generator ---------------------------------------------------------------------------


def generator_layout(scene):
    """The scene the generator is trained to draw for its caption: the same objects, in the
    caption's order, in cells 0, 1, 2 (row-major), centred, size 12.

    Captions do not say where objects are; trained on random cells, sizes and offsets, a small
    UNet with a few thousand CPU steps spends them on layout and draws mixtures (faithfulness
    0.49, chance). With the layout fixed by the caption, what remains to learn is what the
    experiment is about: each object's shape, colour and pattern from the text encoder. The
    judge reads every cell, so a faithful image in this layout answers every question as the
    caption says."""
    from effeval.image.shapes import world as W

    groups: dict[tuple[str, str, str], list] = {}
    for o in scene.objects:  # caption order: identical objects grouped, in order of first appearance
        groups.setdefault(o.kind(), []).append(o)
    objs = [o for g in groups.values() for o in g]
    slack = (W.CELL - 12) // 2
    return W.Scene(
        tuple(W.Obj(o.shape, o.colour, o.pattern, k, 12, slack, slack) for k, o in enumerate(objs))
    )


def make_vae():
    from effeval.zoo.image_pipelines import small_vae

    # 32x32 images -> 4x8x8 latents (each grid cell is 4x4 latents); no mid-block attention
    return small_vae((16, 32, 32), 8, 32, mid_block_add_attention=False)


def make_unet(cross_dim: int):
    from effeval.zoo.image_pipelines import sd_unet

    return sd_unet(
        8,
        cross_dim,
        ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=8,
    )


def _bounded(step: int, start: float, limit_s: float | None, what: str) -> bool:
    """True when ``what`` has used its CPU-time bound (logged once)."""
    if limit_s is None or time.process_time() - start <= limit_s:
        return False
    logger.warning("%s: stopped at step %d by the %.0f s CPU-time bound", what, step, limit_s)
    return True


def train_vae(pool: _Pool, steps: int = VAE_STEPS, time_limit_s: float | None = VAE_CPU_S):
    import torch
    from tqdm.auto import tqdm

    _threads()
    torch.manual_seed(SEED + 1)
    vae = make_vae().train()
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    start = time.process_time()
    losses = []
    for step in tqdm(range(steps), desc="shapes-vae", unit="step"):
        _, px, _ = pool.batch(VAE_BATCH)
        post = vae.encode(px).latent_dist
        rec = vae.decode(post.sample()).sample
        kl = post.kl().mean() / (3 * 32 * 32)
        mse = torch.nn.functional.mse_loss(rec, px)
        loss = mse + 1e-4 * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(mse.item())
        if _bounded(step + 1, start, time_limit_s, "shapes-vae"):
            break
    vae.eval()
    with torch.no_grad():
        lat = torch.cat(
            [
                vae.encode(pool.pixels[i : i + 256]).latent_dist.mean
                for i in range(0, min(1024, len(pool.scenes)), 256)
            ]
        )
    vae.register_to_config(scaling_factor=float(1.0 / lat.std()))
    return vae, {
        "steps": len(losses),
        "batch": VAE_BATCH,
        "cpu_s": round(time.process_time() - start, 1),
        "final_mse": sum(losses[-50:]) / len(losses[-50:]),
    }


def train_unet(
    vae, text_encoder, tokenizer, pool: _Pool, steps: int = UNET_STEPS, time_limit_s: float | None = None
):
    """Noise prediction with min-SNR-5 loss weights (Hang et al. 2023: the low-noise steps, easy
    and many, stop dominating the gradient); AdamW 1e-3 after 100 warm-up steps, cosine to 1e-4."""
    import torch
    from diffusers import DDPMScheduler
    from tqdm.auto import tqdm

    _threads()
    torch.manual_seed(SEED + 2)
    unet = make_unet(text_encoder.config.hidden_size).train()
    noise_sched = DDPMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000
    )
    alphas = noise_sched.alphas_cumprod
    opt = torch.optim.AdamW(unet.parameters(), lr=UNET_LR, weight_decay=1e-2)

    def lr_factor(step: int) -> float:
        if step < 100:
            return (step + 1) / 100
        return 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, (step - 100) / max(1, steps - 100))))

    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    # latents and caption embeddings of the whole pool, once (both models are frozen)
    with torch.no_grad():
        lat = torch.cat(
            [vae.encode(pool.pixels[i : i + 256]).latent_dist.mean for i in range(0, len(pool.scenes), 256)]
        )
        lat = lat * vae.config.scaling_factor
        uniq = sorted(set(pool.captions) | {""})
        emb = {}
        for i in range(0, len(uniq), 256):
            chunk = uniq[i : i + 256]
            ids = tokenizer(
                chunk, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
            ).input_ids
            hs = text_encoder(ids)[0]
            emb.update({c: h for c, h in zip(chunk, hs)})
    start = time.process_time()
    losses, done = [], 0
    gen = torch.Generator().manual_seed(SEED + 3)
    for step in tqdm(range(steps), desc="shapes-unet", unit="step"):
        idx, _, caps = pool.batch(UNET_BATCH)
        x0 = lat[idx]
        # 10% empty captions: classifier-free guidance at sampling time
        caps = ["" if pool.rng.random() < 0.1 else c for c in caps]
        cond = torch.stack([emb[c] for c in caps])
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, 1000, (x0.shape[0],), generator=gen)
        xt = noise_sched.add_noise(x0, noise, t)
        pred = unet(xt, t, encoder_hidden_states=cond).sample
        per_sample = ((pred - noise) ** 2).mean(dim=(1, 2, 3))
        snr = alphas[t] / (1 - alphas[t])
        weight = torch.clamp(snr, max=MIN_SNR_GAMMA) / snr
        loss = (per_sample * weight / weight.mean()).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        warmup.step()
        losses.append(per_sample.mean().item())
        done = step + 1
        if _bounded(done, start, time_limit_s, "shapes-unet"):
            break
    return unet.eval(), {
        "steps": done,
        "batch": UNET_BATCH,
        "cpu_s": round(time.process_time() - start, 1),
        "final_mse": sum(losses[-100:]) / min(100, len(losses)),
    }


def build_shapes_sd(
    out: Path,
    clip_dir: Path,
    pool_size: int = SD_POOL,
    unet_steps: int = UNET_STEPS,
    time_limit_s: float | None = UNET_CPU_S,
    vae_steps: int = VAE_STEPS,
) -> dict:
    import torch
    from transformers import CLIPTokenizer

    from effeval.zoo.image_pipelines import save_sd_pipeline, write_clip_tokenizer

    write_clip_tokenizer(out / "tokenizer", pad_token=PAD_TOKEN)
    tokenizer = CLIPTokenizer.from_pretrained(str(out / "tokenizer"))
    text_encoder = open_clip_text_to_hf(load_open_clip(clip_dir), tokenizer)
    wall = time.perf_counter()
    pool = _Pool(pool_size, SEED + 10, layout=generator_layout)
    vae, vae_info = train_vae(pool, vae_steps)
    with torch.no_grad():
        for p in list(vae.parameters()) + list(text_encoder.parameters()):
            p.requires_grad_(False)
    unet, unet_info = train_unet(vae, text_encoder, tokenizer, pool, unet_steps, time_limit_s)
    info = {
        "image_size": 32,
        "steps": 20,
        "guidance_scale": 4.0,
        "seed": SEED,
        "pool": pool_size,
        "layout": "caption order in cells 0,1,2, centred, size 12 (generator_layout)",
        "vae": vae_info,
        "unet": unet_info,
        "wall_s": round(time.perf_counter() - wall, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    save_sd_pipeline(out, vae, text_encoder, tokenizer, unet, info)
    return info


# --- the judge -------------------------------------------------------------------------------


def train_judge(out: Path, steps: int = JUDGE_STEPS) -> dict:
    import torch
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    from effeval.image.shapes.judge import cell_labels, cells_of, make_judge

    _threads()
    # train split only: the held-out (colour, shape) combinations are never shown to the judge,
    # so its accuracy on them measures generalisation (an earlier build trained on split "any")
    pool = _Pool(3000, SEED + 20, split="train")
    labels = cell_labels(pool.scenes)
    torch.manual_seed(SEED + 21)
    judge = make_judge()
    opt = torch.optim.AdamW(judge.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(SEED + 22)
    ce = torch.nn.functional.cross_entropy
    start = time.process_time()
    for _ in tqdm(range(steps), desc="shapes-judge", unit="step"):
        idx, px, _ = pool.batch(JUDGE_BATCH)
        # noise and a brightness shift: generated images are not clean renders
        px = px + 0.15 * torch.rand(px.shape[0], 1, 1, 1, generator=gen) * torch.randn(
            px.shape, generator=gen
        )
        px = px + 0.1 * (torch.rand(px.shape[0], 1, 1, 1, generator=gen) - 0.5)
        cell_idx = torch.tensor([i * 4 + k for i in idx for k in range(4)])
        s, c, p = judge(cells_of(px))
        loss = ce(s, labels[0][cell_idx]) + ce(c, labels[1][cell_idx]) + ce(p, labels[2][cell_idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_file({k: v.contiguous() for k, v in judge.state_dict().items()}, str(out / "judge.safetensors"))
    return {
        "steps": steps,
        "batch": JUDGE_BATCH,
        "cpu_s": round(time.process_time() - start, 1),
        "pool": len(pool.scenes),
        "final_loss": loss.item(),
    }


# --- zoo entries -----------------------------------------------------------------------------


def _write_info(out: Path, info: dict) -> None:
    (out / "effeval_zoo.json").write_text(json.dumps(info, indent=2) + "\n")


@register(
    "shapes-clip",
    "open_clip CLIP trained contrastively on the shapes world (500 steps, ~95 CPU-s)",
    default=False,
    tier="trained",
)
def _shapes_clip(out: Path, trained: bool) -> None:
    info = train_clip(out, _Pool(POOL, SEED + 10))
    _write_info(out, {"clip": info, "seed": SEED})


@register(
    "shapes-sd",
    "StableDiffusionPipeline trained on the shapes world (text encoder = shapes-clip's; VAE 400 + UNet 1500 steps, ~950 CPU-s)",
    default=False,
    depends=("shapes-clip",),
    tier="trained",
    version=2,  # v2: caption-ordered layout, longer training (v1 drew at chance)
)
def _shapes_sd(out: Path, trained: bool) -> None:
    from effeval import zoo

    build_shapes_sd(out, zoo.get("shapes-clip", trained=trained))


@register(
    "shapes-judge",
    "judge of the shapes world's yes/no questions, trained on train-split renders (450 steps, ~50 CPU-s)",
    default=False,
    tier="trained",
    version=2,  # v2: factorised reader (shape from the silhouette, colour per pixel), trained
    # without the held-out combinations (v1: one CNN trained on every split)
)
def _shapes_judge(out: Path, trained: bool) -> None:
    _write_info(out, {"judge": train_judge(out), "seed": SEED})


SHAPES_MODELS = ("shapes-clip", "shapes-judge", "shapes-sd")
