"""`effeval lm` decides when lm-eval's built-in task index can be skipped."""

from effeval.cli import check_lm_argv


def test_skips_builtin_index_only_when_every_task_is_ours():
    assert check_lm_argv(["--model", "hf", "--tasks", "effeval_smoke"]) is True
    assert check_lm_argv(["--model", "hf", "--tasks", "effeval_smoke_mc,effeval_smoke_gen"]) is True
    # a group of ours whose members are lm-eval built-ins needs the built-in index
    assert check_lm_argv(["--model", "hf", "--tasks", "pruned_ssm"]) is False
    # a built-in task by name
    assert check_lm_argv(["--model", "hf", "--tasks", "effeval_smoke_mc,hellaswag"]) is False
    assert check_lm_argv(["--model", "hf"]) is False


def test_each_task_folder_is_indexed_once(caplog, repo_root):
    """An --include_path inside effeval's task folder (or the folder itself, or one holding it) adds
    no second copy: lm-eval would otherwise warn, for every task, that it overrides itself."""
    from effeval.cli import _include_paths

    ours = str((repo_root / "task_configs").resolve())
    for given in ("task_configs/smoke", "task_configs", str(repo_root / "task_configs")):
        assert _include_paths(["--include_path", str(repo_root / given)])[1] == [ours]
    assert _include_paths(["--include_path", str(repo_root)])[1] == [str(repo_root.resolve())]
    caplog.set_level("WARNING")
    argv = [
        "--model",
        "hf",
        "--tasks",
        "effeval_smoke",
        "--include_path",
        str(repo_root / "task_configs/smoke"),
    ]
    assert check_lm_argv(argv) is True
    assert not [r for r in caplog.records if "overrides existing task" in r.getMessage()]
