"""Files a user keeps are never half-written, and paths taken from file contents stay in --out.

Every write goes to a temporary file in the destination's folder and is renamed over the
destination with ``os.replace`` (atomic on POSIX): a reader, or a run killed with SIGKILL, sees
the old file or the new one, never a truncated one. The temporary file gets the mode a plain
``open(path, "w")`` would (0666 minus the umask), not ``mkstemp``'s 0600. A temporary file left
by a killed writer is removed by the next write to the same destination (its name carries the
writer's pid, so a live writer's file is left alone).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from effeval.errors import ConfigError


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would race with other threads)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove_stale_temps(path: Path) -> None:
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[^.]+\.tmp$")
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return
    for sibling in siblings:
        m = pattern.match(sibling.name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            sibling.unlink(missing_ok=True)  # its writer is gone
        except OSError:
            pass  # alive (or not ours to signal): leave it


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it replaces
    ``path``. Use it for writers that take a file name (``savefig``, ``save_file``, ``torch.save``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
    return Path(path)


def first_nonfinite(obj: object, where: str = "") -> tuple[str, float] | None:
    """``(key path, value)`` of the first NaN or infinity inside ``obj`` (dicts and lists are
    searched), or None when every number is finite."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (where or "<root>", obj)
    if isinstance(obj, dict):
        items = ((f"{where}/{k}" if where else str(k), v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{where}/{i}" if where else str(i), v) for i, v in enumerate(obj))
    else:
        return None
    for path, value in items:
        found = first_nonfinite(value, path)
        if found is not None:
            return found
    return None


def write_json_atomic(path: str | os.PathLike, obj: object) -> Path:
    """``obj`` as indented JSON, written atomically. JSON has no NaN or Infinity (Python's json
    would write the non-standard tokens ``NaN`` / ``Infinity`` that strict readers reject), so
    such a value is a ConfigError naming where it sits, and nothing is written. Values JSON has no
    type for (paths, dtypes) are written as their ``str``."""
    bad = first_nonfinite(obj)
    if bad is not None:
        raise ConfigError(
            f"{path}: {bad[0]} is {bad[1]}, which JSON cannot hold, so nothing was written. Fix: write "
            "null for a value that is undefined (if effeval computed it, that is a bug to report)"
        )
    return write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=False, default=str) + "\n")


def copy_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """``shutil.copyfile`` that never leaves ``dst`` truncated."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


def confined(out: str | os.PathLike, relative: str, argument: str, what: str) -> Path:
    """``out / relative`` when it stays inside ``out``; a ConfigError naming ``argument`` when a
    name taken from a file (``../x``, ``/abs``, ``a/../../b``, a symlink out) would leave it."""
    root = Path(out).resolve()
    text = str(relative)
    target = (root / text).resolve()
    if Path(text).is_absolute() or "\x00" in text or not target.is_relative_to(root) or target == root:
        raise ConfigError(
            f"{argument}: {what} {text!r} would write outside --out {out}. "
            "Fix: correct that field in the input file (a plain name, no '..' or absolute path)"
        )
    return target


def _nearest_existing(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _probe_writable(folder: Path, argument: str, shown: str) -> None:
    """Create and delete a file in ``folder`` (os.access says yes to root on read-only places)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".effeval-write-check.", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise ConfigError(
            f"{argument}: cannot write under {shown} ({exc.strerror or type(exc).__name__}). "
            "Fix: pass a path in a folder you can write to"
        ) from None


def check_output_dir(path: str | os.PathLike, argument: str = "--out") -> Path:
    """Fail before any work when ``path`` cannot become an output folder: it is a file, a
    component of it is a file, or it is not writable. Creates nothing."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{argument}: {str(path)!r} is a file, not a folder. Fix: pass a folder path")
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise ConfigError(
            f"{argument}: {str(existing)!r} in {str(path)!r} is a file, so no folder can be made there. "
            "Fix: pass a folder path"
        )
    _probe_writable(existing, argument, repr(str(existing)))
    return path


def check_output_file(path: str | os.PathLike, argument: str = "--out") -> Path:
    """Fail before any work when ``path`` cannot be written as a file: it is a folder, its
    parent is a file, or the place is not writable. Creates nothing."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(
            f"{argument}: {str(path)!r} is a folder; this option names a file. Fix: pass a file path, "
            f"e.g. {str(path / 'comparison.json')!r}"
        )
    check_output_dir(path.parent, argument)
    return path


def check_not_input(
    out: str | os.PathLike, source: str | os.PathLike, argument: str, source_argument: str
) -> None:
    """Writing the output into the input folder would overwrite the model being read."""
    if Path(os.path.expanduser(str(out))).resolve() == Path(os.path.expanduser(str(source))).resolve():
        raise ConfigError(
            f"{argument}: {str(out)!r} is the {source_argument} folder itself; writing there would "
            f"overwrite the input model. Fix: pass a new folder for {argument}"
        )
