"""Layouts: an issue may name another one; layout mistakes name the file and line."""

from __future__ import annotations

import shutil

from click.testing import CliRunner

from pbtp_mailer.cli import main


def use_layout(project, name):
    issue = project / "issues" / "2024-03.yaml"
    issue.write_text(issue.read_text(encoding="utf-8").replace("layout: default", f"layout: {name}"),
                     encoding="utf-8")
    return issue


def test_issue_names_another_layout(project):
    custom = project / "layouts" / "plain"
    shutil.copytree(project / "layouts" / "default", custom)
    header = custom / "_header.mjml.j2"
    header.write_text(header.read_text(encoding="utf-8").replace(
        "{{ issue.title }}</h1>", "{{ issue.title }} (plain layout)</h1>"), encoding="utf-8")
    issue = use_layout(project, "plain")
    result = CliRunner().invoke(main, ["build", str(issue), "-o", "out"])
    assert result.exit_code == 0, result.output
    html = (project / "out" / "2024-03" / "email.html").read_text(encoding="utf-8")
    assert "Spotlight on New Alliance Program (plain layout)</h1>" in html


def test_undefined_value_in_layout_names_the_file(project):
    custom = project / "layouts" / "typo"
    shutil.copytree(project / "layouts" / "default", custom)
    footer = custom / "_footer.mjml.j2"
    footer.write_text(footer.read_text(encoding="utf-8").replace("nl.postal_address", "nl.postal_adress"),
                      encoding="utf-8")
    issue = use_layout(project, "typo")
    result = CliRunner().invoke(main, ["build", str(issue), "-o", "out"])
    assert result.exit_code == 2
    assert "_footer.mjml.j2:" in result.stderr and "postal_adress" in result.stderr
    assert "Traceback" not in result.output


def test_template_syntax_error_in_layout_names_file_and_line(project):
    custom = project / "layouts" / "broken"
    shutil.copytree(project / "layouts" / "default", custom)
    (custom / "_header.mjml.j2").write_text("<mj-section>{% if %}</mj-section>\n", encoding="utf-8")
    issue = use_layout(project, "broken")
    result = CliRunner().invoke(main, ["build", str(issue), "-o", "out"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {custom / '_header.mjml.j2'}:1: layout syntax error:")


def _text_part(project) -> str:
    return (project / "out" / "2024-03" / "email.txt").read_text(encoding="utf-8")


def test_a_layout_controls_its_own_text_part(project):
    custom = project / "layouts" / "plain"
    shutil.copytree(project / "layouts" / "default", custom)
    text = custom / "email.txt.j2"
    text.write_text(text.read_text(encoding="utf-8").replace(
        "View this issue in your browser:", "Read it on the web:"), encoding="utf-8")
    issue = use_layout(project, "plain")
    result = CliRunner().invoke(main, ["build", str(issue), "-o", "out"])
    assert result.exit_code == 0, result.output
    got = _text_part(project)
    assert "Read it on the web:" in got and "View this issue in your browser" not in got
    assert "Alliance PBTP News is the e-newsletter of the Alliance Procedure-Based" in got


def test_a_layout_without_a_text_template_uses_the_default_one(project):
    custom = project / "layouts" / "htmlonly"
    shutil.copytree(project / "layouts" / "default", custom)
    (custom / "email.txt.j2").unlink()
    issue = use_layout(project, "htmlonly")
    result = CliRunner().invoke(main, ["build", str(issue), "-o", "out"])
    assert result.exit_code == 0, result.output
    assert "View this issue in your browser:" in _text_part(project)


def test_description_is_config_not_python(project):
    toml = project / "pbtp-mailer.toml"
    shipped = 'description = "the e-newsletter of the Alliance Procedure-Based Therapy Program"'
    source = toml.read_text(encoding="utf-8")
    assert shipped in source
    toml.write_text(source.replace(shipped, 'description = "a {{ 7*7 }} <b>newsletter</b>"'),
                    encoding="utf-8")
    result = CliRunner().invoke(main, ["build", "issues/2024-03.yaml", "-o", "out"])
    assert result.exit_code == 0, result.output
    assert "Alliance PBTP News is a {{ 7*7 }} <b>newsletter</b>." in _text_part(project)
    html = (project / "out" / "2024-03" / "email.html").read_text(encoding="utf-8")
    assert "Alliance PBTP News is a {{ 7*7 }} &lt;b&gt;newsletter&lt;/b&gt;." in html
    toml.write_text(source.replace(shipped, ""), encoding="utf-8")
    result = CliRunner().invoke(main, ["build", "issues/2024-03.yaml", "-o", "out"])
    assert result.exit_code == 0, result.output
    assert " is the e-newsletter" not in _text_part(project)
    assert "e-newsletter of the Alliance" not in (
        project / "out" / "2024-03" / "email.html").read_text(encoding="utf-8")


def test_text_template_syntax_error_names_file_and_line(project):
    custom = project / "layouts" / "broken"
    shutil.copytree(project / "layouts" / "default", custom)
    (custom / "email.txt.j2").write_text("ok\n{% if %}\n", encoding="utf-8")
    issue = use_layout(project, "broken")
    result = CliRunner().invoke(main, ["build", str(issue), "-o", "out"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {custom / 'email.txt.j2'}:2: layout syntax error:")
