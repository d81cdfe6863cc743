"""Finding 3 (bounded YAML) and finding 10 (error locations) through the real CLI.

The hostile files run in a child process with a 1 GiB address-space limit
and a timeout, so that the code before the fix (an alias bomb ran 26 s to a
MemoryError) fails the test instead of eating the machine. The time taken
is printed, not asserted.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.schedule.test_bad_files import BOMB

HOSTILE = {
    "alias-bomb": BOMB,
    "self-alias": 'id: "x"\nloop: &a [*a]\n',
    "deep-nesting": 'id: "x"\ndeep: ' + "[" * 600 + "]" * 600 + "\n",
    "deep-mapping-1000": 'id: "x"\n' + "".join(" " * i + f"k{i}:\n" for i in range(1000)),
    "binary-tag": 'id: "x"\nsubject: !!binary aGVsbG8=\n',
    "set-tag": 'id: "x"\ntitle: !!set {a, b}\n',
    "huge-integer": 'id: "x"\nmasthead: ' + "7" * 5000 + "\n",
}


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PBTP_MAILER_")}
    return subprocess.run([sys.executable, "-m", "pbtp_mailer", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, preexec_fn=_limited,
                          check=False)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_finding3_hostile_yaml_exits_2_with_its_place(project, name):
    path = project / "issues" / f"{name}.yaml"
    path.write_text(HOSTILE[name], encoding="utf-8")
    started = time.monotonic()
    done = _cli(project, "build", f"issues/{name}.yaml", "-o", "out")
    print(f"\n{name}: exit {done.returncode} in {time.monotonic() - started:.2f} s (process)")
    assert done.returncode == 2, done.stderr[-500:]
    assert "Traceback" not in done.stderr
    assert re.match(rf"^Error: issues/{re.escape(name)}\.yaml:\d+:\d+: ", done.stderr), done.stderr
    assert not (project / "out").exists()


def test_finding3_binary_is_refused_not_decoded(project):
    from pbtp_mailer.errors import IssueError
    from pbtp_mailer.issue.model import parse_issue

    text = (project / "issues" / "2024-03.yaml").read_text(encoding="utf-8")
    text = re.sub(r"^subject: .*$", "subject: !!binary UEJUUCBuZXdz", text, count=1, flags=re.M)
    with pytest.raises(IssueError) as caught:
        parse_issue(text, "x.yaml")
    assert [str(p) for p in caught.value.problems] == [
        f"x.yaml:{_line(text, 'subject:')}:10: subject: the tag !!binary is not accepted: "
        "write plain text, numbers, dates, lists and mappings"]


def test_finding3_preview_watcher_survives_hostile_saves(project):
    from pbtp_mailer.editor.preview import PreviewServer, page

    issue = project / "issues" / "watched.yaml"
    issue.write_text(HOSTILE["alias-bomb"], encoding="utf-8")
    with PreviewServer("issues/watched.yaml", port=0) as server:
        built = server.state.built
        assert re.match(r"^issues/watched\.yaml:2:\d+: aliases \(\*a\) are not supported",
                        built.errors[0]), built.errors
        for name in ("deep-nesting", "self-alias"):
            issue.write_text(HOSTILE[name], encoding="utf-8")
            built = server.state.rebuild()
            assert re.match(r"^issues/watched\.yaml:\d+:\d+: ", built.errors[0]), built.errors
            assert re.search(r"issues/watched\.yaml:\d+:\d+: ", page(built, issue))


def _line(text: str, start: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith(start))


def test_finding10_encoded_word_subject_names_the_yaml_line(project):
    path = project / "issues" / "2024-03.yaml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^subject: .*$", 'subject: "News =?utf-8?q?a=0D=0ABcc:_x@example.org?="',
                  text, count=1, flags=re.M)
    path.write_text(text, encoding="utf-8")
    done = _cli(project, "build", "issues/2024-03.yaml", "-o", "out")
    assert done.returncode == 2
    assert done.stderr == (f"Error: issues/2024-03.yaml:{_line(text, 'subject:')}:10: subject: "
                           "an encoded-word (=?...?=) hides a line break or control character\n")


def test_finding10_not_utf8_gives_line_and_column(project):
    path = project / "issues" / "latin1.yaml"
    path.write_bytes(b'id: "x"\ntitle: "Caf\xe9"\n')
    done = _cli(project, "build", "issues/latin1.yaml")
    assert done.stderr == ("Error: issues/latin1.yaml:2:12: not UTF-8 (byte 0xe9); save the "
                           "file as UTF-8\n")


def test_finding10_preview_error_page_shows_file_line(project):
    from pbtp_mailer.editor.preview import PreviewServer, page

    path = project / "issues" / "p.yaml"
    path.write_text('id: "x"\ndate: 2024-02-30\n', encoding="utf-8")
    with PreviewServer("issues/p.yaml", port=0) as server:
        html = page(server.state.built, path)
    assert "issues/p.yaml:2:7: date: not a valid date: &#x27;2024-02-30&#x27;" in html


def test_finding10_full_outbox_leaves_no_partial_files(tmp_path):
    from pbtp_mailer.errors import SendTransientError
    from pbtp_mailer.senders.base import Outgoing, SenderSpec
    from pbtp_mailer.senders.outbox import OutboxSender
    from tests.support.tinyfs import fill, tiny_fs

    with tiny_fs(tmp_path / "tiny", "256k") as where:
        sender = OutboxSender(SenderSpec(name="box", kind="outbox",
                                         options={"path": str(where / "box")}))
        sender.open()
        fill(where, leave=8 * 1024)
        data = b"Subject: x\r\n\r\n" + b"y" * 64 * 1024 + b"\r\n"
        with pytest.raises(SendTransientError, match="No space left on device"):
            sender.send([Outgoing("a@example.org", ("b@example.org",), data)])
        assert list((where / "box" / "tmp").iterdir()) == []
        assert list((where / "box" / "new").iterdir()) == []
