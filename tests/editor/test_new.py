"""pbtp-mailer new: from the template, from the previous issue, never overwriting."""

from __future__ import annotations

import datetime as dt

from click.testing import CliRunner

from pbtp_mailer.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_new_from_template_is_a_valid_issue_full_of_todos(project):
    from pbtp_mailer.issue.model import load_issue

    result = run("new", "2024-04")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Wrote issues/2024-04.yaml\n"
        "Next: fill in the TODOs, then 'pbtp-mailer preview issues/2024-04.yaml' and "
        "'pbtp-mailer check issues/2024-04.yaml'.\n")
    text = (project / "issues" / "2024-04.yaml").read_text(encoding="utf-8")
    # the project has no docs/, so the schema is written next to the issues
    assert text.startswith("# yaml-language-server: $schema=./issue.schema.json\n")
    assert (project / "issues" / "issue.schema.json").is_file()
    issue = load_issue(project / "issues" / "2024-04.yaml")
    assert issue.id == "2024-04" and issue.date == dt.date.today()
    assert issue.title.startswith("TODO") and len(issue.articles) == 1
    assert issue.articles[0].byline is not None and issue.articles[0].references
    assert issue.schedule is None


def test_new_points_at_docs_schema_when_the_project_has_it(project):
    (project / "docs").mkdir()
    (project / "docs" / "issue.schema.json").write_text("{}", encoding="utf-8")
    assert run("new", "2024-04").exit_code == 0
    text = (project / "issues" / "2024-04.yaml").read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../docs/issue.schema.json\n")
    assert not (project / "issues" / "issue.schema.json").exists()


def test_new_from_previous_keeps_structure_and_clears_content(project):
    from pbtp_mailer.issue.model import load_issue

    result = run("new", "2024-04", "--from", "issues/2024-03.yaml")
    assert result.exit_code == 0, result.output
    old = load_issue(project / "issues" / "2024-03.yaml")
    new = load_issue(project / "issues" / "2024-04.yaml")
    assert (new.masthead, new.layout) == (old.masthead, old.layout)
    assert len(new.articles) == len(old.articles)
    assert len(new.articles[0].byline.titles) == len(old.articles[0].byline.titles)
    assert new.read_more.heading == old.read_more.heading
    assert new.read_more.link_text == old.read_more.link_text
    text = (project / "issues" / "2024-04.yaml").read_text(encoding="utf-8")
    assert "Breaking New Ground" not in text and "Bedrosian" not in text
    assert "10.1200/JCO.22.02553" not in text
    assert "# Newsletter issue 2024-04. Started from issues/2024-03.yaml" in text


def test_new_from_previous_comments_out_its_schedule(project):
    src = project / "issues" / "2024-03.yaml"
    src.write_text(src.read_text(encoding="utf-8") + (
        "schedule:\n  send_at: 2024-03-05T09:00:00\n  lists: [\"members\", \"board\"]\n"
        "  sender: relay\n"), encoding="utf-8")
    assert run("new", "2024-04", "--from", str(src)).exit_code == 0
    text = (project / "issues" / "2024-04.yaml").read_text(encoding="utf-8")
    assert "# schedule:\n" in text
    assert '#   lists: ["members", "board"]\n#   sender: "relay"\n' in text
    assert "\nschedule:" not in text


def test_new_refuses_to_overwrite(project):
    before = (project / "issues" / "2024-03.yaml").read_bytes()
    result = run("new", "2024-03")
    assert result.exit_code == 1
    assert result.stderr == ("Error: issues/2024-03.yaml: already exists; not overwriting it\n"
                             "Hint: pick another ID, or delete the file first\n")
    assert (project / "issues" / "2024-03.yaml").read_bytes() == before


def test_new_rejects_a_bad_id(project):
    result = run("new", "March 2024")
    assert result.exit_code == 1
    assert result.stderr == ("Error: 'March 2024' is not a valid issue ID: use lowercase letters, "
                             "digits, '.', '_' or '-' (such as '2024-04')\n")


def test_new_from_a_missing_or_broken_file(project):
    result = run("new", "2024-04", "--from", "issues/nope.yaml")
    assert result.exit_code == 2
    assert result.stderr == "Error: issues/nope.yaml:1: file not found\n"
    (project / "issues" / "bad.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    result = run("new", "2024-04", "--from", "issues/bad.yaml")
    assert result.exit_code == 2 and result.stderr.startswith("Error: issues/bad.yaml:2:1: YAML")
    assert not (project / "issues" / "2024-04.yaml").exists()


def test_new_then_check_lists_the_todos(project):
    run("new", "2024-04")
    result = run("check", "issues/2024-04.yaml")
    assert result.exit_code == 1
    assert "issues/2024-04.yaml:11: warning: title: still says TODO [content-todo]" in result.output


def test_new_from_previous_carries_images_and_briefs(project):
    from pbtp_mailer.issue.model import load_issue
    from tests.compose.content_issue import write_issue

    write_issue(project / "issues")
    assert run("new", "2024-06", "--from", "issues/2024-05.yaml").exit_code == 0
    new = load_issue(project / "issues" / "2024-06.yaml")
    assert new.hero is not None and new.hero.decorative and new.hero.alt == ""
    first, second = new.articles
    assert first.image is not None and first.image.src == "images/TODO.png"
    assert first.image.alt.startswith("TODO") and first.image.link and first.image.caption
    assert second.image is not None and not second.image.link and not second.image.caption
    assert new.briefs is not None and new.briefs.heading == "News briefs"
    assert [bool(b.url) for b in new.briefs.items] == [True, False]
    assert all(b.title.startswith("TODO") for b in new.briefs.items)
    result = run("check", "issues/2024-06.yaml")
    assert "images/TODO.png: no such file" in result.output


def test_new_template_shows_hero_and_briefs_commented(project):
    assert run("new", "2024-04").exit_code == 0
    text = (project / "issues" / "2024-04.yaml").read_text(encoding="utf-8")
    assert "# hero:\n#   src: images/hero.png" in text
    assert "# briefs:\n#   heading: \"News briefs\"" in text
