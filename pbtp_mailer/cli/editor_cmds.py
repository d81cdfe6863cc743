"""CLI commands of the editor tools: ``new``, ``check``, ``preview`` and ``archive``."""

from __future__ import annotations

import click

from pbtp_mailer.cli._context import AppContext, pass_app
from pbtp_mailer.cli._echo import echo, echo_json


@click.command()
@click.argument("issue_id")
@click.option("--from", "from_file", type=click.Path(dir_okay=False), default=None,
              help="Start from this issue: structure and settings kept, content cleared.")
@click.option("--issues-dir", default="issues", show_default=True,
              type=click.Path(file_okay=False), help="Folder to write ISSUE_ID.yaml into.")
def new(issue_id: str, from_file: str | None, issues_dir: str) -> None:
    """Start a new issue file, issues/ISSUE_ID.yaml, from a commented template.

    With --from, the previous issue's articles, bylines, references,
    read-more block and schedule lists are kept as a skeleton and every
    piece of content becomes a TODO (which 'check' reports). An existing
    file is never overwritten.
    """
    from pbtp_mailer.issue.new import new_issue

    path = new_issue(issue_id, issues_dir, from_file=from_file)
    echo(f"Wrote {path}")
    echo(f"Next: fill in the TODOs, then 'pbtp-mailer preview {path}' and "
         f"'pbtp-mailer check {path}'.")


@click.command()
@click.argument("issue_file", type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 2); for CI.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--online", is_flag=True,
              help="Also fetch every link and image (HEAD); otherwise no network is used.")
@pass_app
def check(app: AppContext, issue_file: str, strict: bool, as_json: bool, online: bool) -> None:
    """Validate ISSUE_FILE as 'build' does, then lint it before a reviewer has to.

    Prints one line per finding, FILE:LINE: LEVEL: message [code], then a
    summary. Exit status: 0 no findings, 1 warnings only, 2 errors (with
    --strict, any warning is an error). The codes are listed in docs/editor.md.
    """
    import json

    from pbtp_mailer.editor.check import check_issue

    report = check_issue(issue_file, app.config, online=online)
    if strict:
        report = report.strictly()
    if as_json:
        echo_json(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        for finding in report.findings:
            echo(str(finding))
        echo(report.summary())
    click.get_current_context().exit(report.exit_code)


@click.command()
@click.argument("issue_file", type=click.Path(dir_okay=False))
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port on 127.0.0.1 (0: any free port).")
@pass_app
def preview(app: AppContext, issue_file: str, port: int) -> None:
    """Preview ISSUE_FILE in a browser, rebuilt each time it is saved.

    Serves http://127.0.0.1:PORT/ (this computer only): the e-mail at phone
    (375 px) and desktop (680 px) widths, a dark-mode view, the plain-text
    part, the headers and check's warnings. Saving the issue, a layout or
    the config rebuilds it and the page reloads itself; a broken file shows
    its errors in the page. Stop with Ctrl+C.
    """
    from pbtp_mailer.editor.preview import PreviewServer

    server = PreviewServer(issue_file, port=port, config_path=app.config_path)
    echo(f"Previewing {issue_file} at {server.url} (Ctrl+C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        echo("Stopped.")
    finally:
        server.close()


@click.command()
@click.option("-o", "--output", "out_dir", default="site", show_default=True,
              type=click.Path(file_okay=False), help="Folder to write the site into.")
@click.option("--all", "include_all", is_flag=True,
              help="Include every valid issue, not only those sent.")
@click.option("--issues-dir", default=None, type=click.Path(file_okay=False),
              help="Folder of issue files (default: issues/ next to the config).")
@pass_app
def archive(app: AppContext, out_dir: str, include_all: bool, issues_dir: str | None) -> None:
    """Write the web archive: a page per sent issue, an index and an Atom feed.

    OUTPUT/<id>/index.html is the browser version each e-mail links to
    ("View this issue in your browser": archive_url + id + '/'), with the
    per-recipient parts removed; OUTPUT/index.html lists the issues by date;
    OUTPUT/feed.xml is the Atom feed. Links between pages are relative, so
    the folder can be served from any path. Sent means the delivery ledger
    has at least one 'sent' message of the issue.
    """
    from pbtp_mailer.editor.archive import FEED_NAME, build_archive

    result = build_archive(app.config, out_dir, issues_dir=issues_dir, include_all=include_all)
    for line in result.skipped:
        echo(f"warning: {line}", err=True)
    n = len(result.entries)
    echo(f"Wrote {result.folder}/: {n} issue{'s' * (n != 1)}, index.html, {FEED_NAME}")
    for e in result.entries:
        echo(f"  {e.href}  {e.issue.date.isoformat()}  {e.issue.title}")
    if not n and not include_all:
        echo("No issue has been sent yet (use --all to include unsent issues).")


COMMANDS = [new, check, preview, archive]
