"""`lists import` / `lists export`: good files, bad files, and the exact messages."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from pbtp_mailer.errors import ImportFileError
from pbtp_mailer.store import Store
from pbtp_mailer.store.schema import metadata

UTF8_HINT = 'save the file as UTF-8 (in Excel: "CSV UTF-8")'


def snapshot(store: Store) -> dict[str, list[tuple]]:
    out = {}
    with store.engine.connect() as conn:
        for name, table in metadata.tables.items():
            out[name] = sorted(tuple(map(repr, r)) for r in conn.execute(select(table)))
    return out



def write(tmp_path: Path, text: str | bytes, name: str = "members.csv") -> str:
    p = tmp_path / name
    if isinstance(text, str):
        p.write_text(text, encoding="utf-8", newline="")
    else:
        p.write_bytes(text)
    return name


GOOD = (
    "email,name,institution,role\r\n"
    "ann@example.org,Ann Lee,Example University,nurse\r\n"
    "Bob.Roe@Example.COM,Bob Roe,Example Hospital,surgeon\r\n"
    "\r\n"
    "cy@example.net,,,\r\n"
)


def test_import_good_file_then_reimport_changes_nothing(db, cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    f = write(tmp_path, GOOD)
    r = cli("lists", "import", "news", f)
    assert (r.exit_code, r.output) == (
        0, "members.csv: 3 rows: 3 added, 0 updated, 0 unchanged, 0 skipped, 0 rejected.\n")
    with db() as s:
        before = snapshot(s)
        got = {x.email: x for x in s.recipients("news")}
    assert set(got) == {"ann@example.org", "Bob.Roe@example.com", "cy@example.net"}
    assert got["ann@example.org"].attrs == {"institution": "Example University",
                                            "role": "nurse"}
    assert got["cy@example.net"].name is None and got["cy@example.net"].attrs == {}
    r = cli("lists", "import", "news", f)
    assert r.output == (
        "members.csv: 3 rows: 0 added, 0 updated, 3 unchanged, 0 skipped, 0 rejected.\n")
    with db() as s:
        assert snapshot(s) == before


def test_bom_semicolons_and_case_insensitive_header(db, cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    text = "\ufeffEmail;Name;Institution\r\nzoe@example.org;Zoé Martin;Université Exemple\r\n"
    r = cli("lists", "import", "news", write(tmp_path, text))
    assert r.exit_code == 0, r.output
    with db() as s:
        (rec,) = list(s.recipients("news"))
    assert (rec.email, rec.name, rec.attrs) == (
        "zoe@example.org", "Zoé Martin", {"institution": "Université Exemple"})


def test_tab_delimited(cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    r = cli("lists", "import", "news", write(tmp_path, "name\temail\nAnn\tann@example.org\n"))
    assert r.output.startswith("members.csv: 1 row: 1 added")


def test_rejected_rows_reported_and_good_rows_applied(db, cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    text = (
        "email,name\n"
        "ann@example.org,Ann\n"
        "foo@,Foo\n"
        "ANN@example.org,Ann again\n"
        '"bob@example.org\r\nBcc: all@example.org",Bob\n'
        ",No address\n"
        "cy@example.org,Cy,extra\n"
        "dee@example.org,Dee\n"
    )
    r = cli("lists", "import", "news", write(tmp_path, text))
    assert r.exit_code == 1
    assert r.stderr == (
        "members.csv:3: invalid address 'foo@': There must be something after the @-sign.\n"
        "members.csv:4: duplicate of line 2 (ANN@example.org)\n"
        "members.csv:5: address 'bob@example.org\\r\\nBcc: all@example.org' contains a line "
        "break (CR/LF)\n"
        "members.csv:7: no address\n"
        "members.csv:8: 3 fields, but the header has 2\n"
    )
    assert r.stdout == (
        "members.csv: 7 rows: 2 added, 0 updated, 0 unchanged, 0 skipped, 5 rejected.\n")
    with db() as s:
        assert [x.email for x in s.recipients("news")] == ["ann@example.org", "dee@example.org"]


def test_strict_applies_nothing(db, cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    r = cli("lists", "import", "news", "--strict",
            write(tmp_path, "email\nann@example.org\nfoo@\n"))
    assert r.exit_code == 2
    assert r.output == (
        "Error: members.csv:3: invalid address 'foo@': There must be something after the "
        "@-sign.\n"
        "Hint: nothing was imported (--strict); fix the rows and import again\n")
    with db() as s:
        assert list(s.recipients("news")) == []


def test_dry_run_applies_nothing_but_counts(db, cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    r = cli("lists", "import", "news", "--dry-run", write(tmp_path, GOOD))
    assert r.output == ("members.csv: 3 rows: 3 added, 0 updated, 0 unchanged, 0 skipped, "
                        "0 rejected. Dry run: nothing was changed.\n")
    with db() as s:
        assert list(s.recipients("news")) == []


def test_import_never_resubscribes(db, cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    cli("lists", "create", "other")
    cli("subscribers", "add", "news", "ann@example.org")
    cli("unsubscribe", "ann@example.org", "--list", "news")
    cli("unsubscribe", "bob@example.org")
    with db() as s:
        s.suppress("cy@example.org", "bounced", source="dispatch")
        s.suppress("dee@example.org", "complained", source="dispatch")
        s.suppress("eve@example.org", "unsubscribed", list_id=s.get_list("other").id)
    text = "email\nann@example.org\nbob@example.org\ncy@example.org\ndee@example.org\n" \
           "eve@example.org\n"
    r = cli("lists", "import", "news", write(tmp_path, text))
    assert r.exit_code == 0
    assert r.output == (
        "members.csv:2: skipped ann@example.org: unsubscribed from 'news'\n"
        "members.csv:3: skipped bob@example.org: unsubscribed from all lists\n"
        "members.csv:4: skipped cy@example.org: bounced\n"
        "members.csv:5: skipped dee@example.org: complained\n"
        "members.csv: 5 rows: 1 added, 0 updated, 0 unchanged, 4 skipped, 0 rejected.\n")
    with db() as s:
        assert [x.email for x in s.recipients("news")] == ["eve@example.org"]


def test_profile_update_is_counted(cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    cli("lists", "import", "news", write(tmp_path, "email,name,role\nann@example.org,Ann,a\n"))
    r = cli("lists", "import", "news", write(tmp_path, "email,name,role\nann@example.org,Ann,b\n"))
    assert r.output == (
        "members.csv: 1 row: 0 added, 1 updated, 0 unchanged, 0 skipped, 0 rejected.\n")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "members.csv: empty file"),
        (b"\xef\xbb\xbf\r\n \r\n", "members.csv: empty file"),
        (b"mail,name\nann@example.org,Ann\n",
         "members.csv:1: no 'email' column (found: mail, name)"),
        (b"email,name\nann@example.org,Ann\nbob@example.org,Bob\ncy@example.org,Ren\xe9e\n",
         f"members.csv:4: not UTF-8 (byte 0xe9 at position 19); {UTF8_HINT}"),
        (b"\xff\xfee\x00m\x00", f"members.csv:1: is UTF-16; {UTF8_HINT}"),
        (b"email,email\nann@example.org,x\n", "members.csv:1: column 'email' appears twice"),
        (b"email,,name\nann@example.org,x,y\n", "members.csv:1: column 2 has no name"),
        (b'email,name\nann@example.org,"Ann\nbob@example.org,Bob\n',
         'members.csv:2: a quoted field starting on this line is never closed (a missing ")'),
    ],
    ids=["empty", "bom-and-blank", "no-email-column", "latin-1", "utf-16", "dup-column",
         "unnamed-column", "unclosed-quote"],
)
def test_refused_files_apply_nothing(db, cli, tmp_path: Path, content: bytes,
                                    message: str) -> None:
    cli("lists", "create", "news")
    r = cli("lists", "import", "news", write(tmp_path, content))
    assert r.exit_code == 2
    assert r.output == f"Error: {message}\n"
    with db() as s:
        assert list(s.recipients("news")) == []


def test_ten_megabyte_single_line_is_refused_quickly(cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    f = write(tmp_path, b"email\n" + b"a" * (10 * 1024 * 1024) + b"\n")
    t = time.perf_counter()
    r = cli("lists", "import", "news", f)
    assert time.perf_counter() - t < 5
    assert r.exit_code == 2
    assert r.output == ("Error: members.csv:2: line is 10,485,760 bytes long (limit 1,048,576); "
                        "is this really a CSV file?\n")


def test_huge_quoted_field_is_refused(cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    lines = b"\n".join([b"x" * 1000] * 1100)
    f = write(tmp_path, b'email,name\nann@example.org,"' + lines + b'"\n')
    r = cli("lists", "import", "news", f)
    assert r.exit_code == 2
    assert r.output == ("Error: members.csv:2: a field is longer than 1,048,576 characters "
                        "(an unclosed quote?); is this really a CSV file?\n")


def test_unknown_list_is_checked_first(cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    r = cli("lists", "import", "nope", write(tmp_path, GOOD))
    assert r.exit_code == 2
    assert r.output == ("Error: unknown list 'nope' (known: news)\n"
                        "Hint: create it with: pbtp-mailer lists create nope\n")


def test_missing_file(cli) -> None:
    cli("lists", "create", "news")
    r = cli("lists", "import", "news", "nothere.csv")
    assert r.exit_code == 2
    assert r.output == "Error: nothere.csv: cannot read (No such file or directory)\n"


def test_export_round_trip(db, cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    cli("lists", "create", "copy")
    cli("lists", "import", "news", write(tmp_path, GOOD))
    cli("unsubscribe", "cy@example.net", "--list", "news")
    r = cli("lists", "export", "news", "-o", "out.csv")
    assert r.output == "Exported 3 members of 'news' to out.csv.\n"
    text = (tmp_path / "out.csv").read_bytes().decode("utf-8")
    lines = text.split("\r\n")
    assert lines[0] == "email,name,status,changed_at,institution,role"
    assert lines[1].startswith("ann@example.org,Ann Lee,subscribed,20")
    assert lines[1].endswith("Z,Example University,nurse")
    assert lines[3].startswith("cy@example.net,,unsubscribed,")
    r = cli("lists", "export", "news")
    assert r.stdout == text.replace("\r\n", "\n")  # CliRunner normalises line ends
    r = cli("lists", "import", "copy", "out.csv")
    assert r.output == "out.csv: 3 rows: 3 added, 0 updated, 0 unchanged, 0 skipped, 0 rejected.\n"
    with db() as s:
        ann = next(x for x in s.recipients("copy") if x.email == "ann@example.org")
        assert ann.attrs == {"institution": "Example University", "role": "nurse"}


def test_library_error_carries_problems(store: Store, tmp_path: Path) -> None:
    store.create_list("news")
    (tmp_path / "m.csv").write_text("email\nfoo@\n", encoding="utf-8")
    with pytest.raises(ImportFileError) as exc:
        store.import_csv("news", tmp_path / "m.csv", strict=True)
    assert [p.line for p in exc.value.problems] == [2]


def test_sample_list_imports_cleanly(db, cli, tmp_path: Path) -> None:
    import shutil

    shutil.copy(Path(__file__).parents[2] / "samples" / "subscribers-sample.csv",
                tmp_path / "subscribers-sample.csv")
    cli("lists", "create", "news")
    r = cli("lists", "import", "news", "subscribers-sample.csv")
    assert (r.exit_code, r.output) == (0, "subscribers-sample.csv: 20 rows: 20 added, 0 updated, "
                                          "0 unchanged, 0 skipped, 0 rejected.\n")
    with db() as s:
        recs = list(s.recipients("news"))
    assert all(r.email.rsplit("@", 1)[1] in ("example.org", "example.com", "example.net")
               for r in recs)
    assert recs[2].attrs == {"institution": "Université Exemple", "role": "Researcher"}


def test_oversized_file_is_refused(store: Store, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from pbtp_mailer.store import csvfile

    monkeypatch.setattr(csvfile, "MAX_FILE_BYTES", 100)
    store.create_list("news")
    (tmp_path / "big.csv").write_text("email\n" + "a@example.org\n" * 10, encoding="utf-8")
    with pytest.raises(ImportFileError) as exc:
        store.import_csv("news", tmp_path / "big.csv")
    assert str(exc.value) == (f"{tmp_path / 'big.csv'}: 146 bytes is more than the 100 a list "
                              "may have; split the file")


def test_export_for_spreadsheet_defuses_formulas(cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    csv_text = ("email,name,note\r\nann@example.org,=HYPERLINK(\"http://x\"),+1 call\r\n"
                "bob@example.org,Bob,plain\r\n")
    (tmp_path / "f.csv").write_text(csv_text, encoding="utf-8")
    cli("lists", "import", "news", "f.csv")
    plain = cli("lists", "export", "news").stdout
    assert 'ann@example.org,"=HYPERLINK(""http://x"")",subscribed,' in plain
    safe = cli("lists", "export", "news", "--for-spreadsheet").stdout
    assert 'ann@example.org,"\'=HYPERLINK(""http://x"")",subscribed,' in safe
    assert safe.splitlines()[1].endswith(",'+1 call")
    assert "bob@example.org,Bob,subscribed," in safe and safe.splitlines()[2].endswith(",plain")
