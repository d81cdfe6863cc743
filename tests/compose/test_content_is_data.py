"""Issue content is data, never a template: what an editor types is printed."""

from __future__ import annotations

from click.testing import CliRunner

from pbtp_mailer.cli import main


def test_template_syntax_in_content_appears_literally(project):
    issue = project / "issues" / "2024-03.yaml"
    src = issue.read_text(encoding="utf-8")
    src = src.replace('title: "Spotlight on New Alliance Program"',
                      'title: "Spotlight {{ 7*7 }} {% if true %}x{% endif %}"')
    src = src.replace("Surgical extirpation", "{{ 7*7 }} <script>alert(1)</script> Surgical extirpation")
    issue.write_text(src, encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(issue), "-o", "out"])
    assert result.exit_code == 0, result.output
    html = (project / "out" / "2024-03" / "email.html").read_text(encoding="utf-8")
    text = (project / "out" / "2024-03" / "email.txt").read_text(encoding="utf-8")
    assert "{{ 7*7 }}" in html and "{{ 7*7 }}" in text
    assert "{% if true %}x{% endif %}" in html
    import lxml.html

    h1 = lxml.html.document_fromstring(html).xpath("//h1")[0].text_content()
    assert h1 == "Spotlight {{ 7*7 }} {% if true %}x{% endif %}"
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<script>alert(1)</script>" in text


def test_markdown_cannot_inject_javascript_links(project):
    issue = project / "issues" / "2024-03.yaml"
    src = issue.read_text(encoding="utf-8").replace(
        "Surgical extirpation", "[click](javascript:alert(1)) Surgical extirpation")
    issue.write_text(src, encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(issue), "-o", "out"])
    assert result.exit_code == 0, result.output
    html = (project / "out" / "2024-03" / "email.html").read_text(encoding="utf-8")
    assert "javascript:" not in html.replace("[click](javascript:alert(1))", "")
