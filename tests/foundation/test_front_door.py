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
