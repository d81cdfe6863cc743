"""Keep it fixed: the three parsers people feed, under hypothesis.

For any input, an issue YAML (``build``), a subscriber CSV (``lists import
--strict``) and a ``pbtp-mailer.toml`` (``senders``): exit 0 or 2, never a
traceback, under 2 s (hypothesis's deadline), nothing written on failure.
About 100 derandomized examples each by default; ``-m fuzz`` runs 2,000
random ones (see tests/hardening/conftest.py and docs/security.md).
"""

from __future__ import annotations

import csv
import io
import shutil
import tomllib
import traceback
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import event, given
from hypothesis import strategies as st

from pbtp_mailer.cli import main
from tests.hardening.fuzzing import BASES, hostile_text, mutated, toml_dump

ROOT = Path(__file__).resolve().parents[2]
BASES["issue"] = yaml.safe_load((ROOT / "issues" / "2024-03.yaml").read_text(encoding="utf-8"))
BASES["config"] = tomllib.loads((ROOT / "pbtp-mailer.toml").read_text(encoding="utf-8"))

pytestmark = pytest.mark.fuzz


def _dump_yaml(data: object) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


def _clean(result: Result, allowed: set[int]) -> None:
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        trace = "".join(traceback.format_exception(exc))
        raise AssertionError(f"traceback escaped:\n{trace}")
    assert result.exit_code in allowed, result.output
    event(f"exit {result.exit_code}")
    assert "Traceback" not in result.output


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# -- issue YAML ------------------------------------------------------------------

issue_texts = st.one_of(
    mutated("issue", _dump_yaml),
    mutated("issue", _dump_yaml),
    hostile_text,
    st.binary(max_size=200),
)


@given(text=issue_texts)
def test_fuzz_issue_yaml(project: Path, text: str | bytes) -> None:
    path = project / "issues" / "fuzz.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    out = project / "fuzz-out"
    try:
        result = CliRunner().invoke(main, ["build", str(path), "-o", str(out)])
        _clean(result, {0, 2})
        if result.exit_code == 2:
            assert not out.exists()
    finally:
        shutil.rmtree(out, ignore_errors=True)


# -- subscriber CSV --------------------------------------------------------------

COLUMNS = ["email", "Email", "E-Mail", "name", "Name", "institution", "status", "changed_at",
           "", "email "]
addresses = st.one_of(
    st.emails(),
    st.builds(lambda local, domain: f"{local}@{domain}", hostile_text,
              st.sampled_from(["example.org", "exämple.org", "x", "", "[127.0.0.1]",
                               "xn--bcher-kva.example"])),
    hostile_text,
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    header = draw(st.lists(st.sampled_from(COLUMNS) | hostile_text, min_size=1, max_size=5))
    rows = [[draw(addresses) if h.strip().lower().startswith("e") else draw(hostile_text)
             for h in header] for _ in range(draw(st.integers(0, 6)))]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=draw(st.sampled_from([",", ";", "\t"])),
                        lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))
    writer.writerow(header)
    writer.writerows(rows)
    text = buf.getvalue()
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(hostile_text) + text[at:]
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + text).encode("utf-8")


@pytest.fixture()
def members(project: Path) -> Path:
    assert CliRunner().invoke(main, ["lists", "create", "members"]).exit_code == 0
    return project


def _memberships(project: Path) -> tuple[int, int]:
    from pbtp_mailer.config import load_config
    from pbtp_mailer.store import Store

    with Store.open(load_config(project / "pbtp-mailer.toml")) as store:
        (c,) = [c for c in store.list_counts() if c.name == "members"]
        return c.active, c.unsubscribed + c.bounced + c.complained


@given(data=csv_files())
def test_fuzz_subscriber_csv(members: Path, data: bytes) -> None:
    path = members / "fuzz.csv"
    path.write_bytes(data)
    before = _memberships(members)
    result = CliRunner().invoke(main, ["lists", "import", "members", str(path), "--strict"])
    _clean(result, {0, 2})
    if result.exit_code == 2:
        assert _memberships(members) == before


# -- pbtp-mailer.toml ------------------------------------------------------------

config_texts = st.one_of(
    mutated("config", toml_dump),
    mutated("config", toml_dump),
    hostile_text,
    st.binary(max_size=200),
)


@given(text=config_texts)
def test_fuzz_config_toml(project: Path, text: str | bytes) -> None:
    path = project / "fuzz.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    before = _files(project)
    result = CliRunner().invoke(main, ["--config", str(path), "senders"])
    _clean(result, {0, 2})
    assert _files(project) == before
