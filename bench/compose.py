"""Compose benchmark for the March 2024 issue: median time of each stage, of the whole
in-process compose, and of a whole `pbtp-mailer build` process.

    python bench/compose.py [--runs 50] [--process-runs 7]

Goals (issue 2): in-process compose <= 15 ms median; build process <= 0.45 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--process-runs", type=int, default=7)
    args = ap.parse_args()

    t0 = time.perf_counter()
    from pbtp_mailer.compose import compose, inline
    from pbtp_mailer.compose.build import sample_personal
    from pbtp_mailer.compose.layouts import find_layout, render_mjml
    from pbtp_mailer.compose.message import MessageTemplate
    from pbtp_mailer.compose.pipeline import layout_context
    from pbtp_mailer.compose.plaintext import issue_text
    from pbtp_mailer.config import load_config
    from pbtp_mailer.issue.model import Issue, load_issue
    from pbtp_mailer.issue.yamlsource import load_located
    import_ms = (time.perf_counter() - t0) * 1000

    config = load_config(ROOT / "pbtp-mailer.toml")
    path = ROOT / "issues" / "2024-03.yaml"
    text = path.read_text(encoding="utf-8")
    issue = load_issue(path)
    t0 = time.perf_counter()
    first = compose(issue, config, web=False)
    first_ms = (time.perf_counter() - t0) * 1000

    folder = find_layout(issue.layout, config.base_dir)
    located = load_located(text, str(path))
    # the layout's context as compose() builds it (content, images, urls), so the stage
    # timings below measure exactly what a build does
    ctx = layout_context(issue, config, personal=True)
    mjml_src = render_mjml(folder, ctx)
    raw_html = inline.mjml_to_html(mjml_src)
    personal = sample_personal(config)
    template = MessageTemplate(first, config.newsletter)

    stages = {
        "YAML load (CSafeLoader + positions)": lambda: load_located(text, str(path)),
        "validation (pydantic)": lambda: Issue.model_validate(located.data),
        "Jinja2 (layout -> MJML)": lambda: render_mjml(folder, ctx),
        "MJML (mjml-python)": lambda: inline.mjml_to_html(mjml_src),
        "premailer (inline CSS)": lambda: inline.inline_css(raw_html),
        "text part": lambda: issue_text(issue, config.newsletter, ctx["urls"], personal=True, banner=None,
                                         layout=folder),
        "message template (encode once)": lambda: MessageTemplate(first, config.newsletter),
        "per-recipient message bytes": lambda: template.render(personal),
    }
    print(f"imports: {import_ms:.1f} ms; first compose in this process: {first_ms:.1f} ms")
    print(f"{'stage':<40} {'median':>10}")
    for name, fn in stages.items():
        ms = median_ms(fn, args.runs)
        unit = f"{ms * 1000:.1f} us" if ms < 0.1 else f"{ms:.2f} ms"
        print(f"{name:<40} {unit:>10}")

    def whole():
        i = load_issue(path)
        MessageTemplate(compose(i, config, web=False), config.newsletter).render(personal)

    whole_ms = median_ms(whole, args.runs)
    print(f"{'whole compose (load..message)':<40} {whole_ms:>7.2f} ms   goal <= 15 ms")

    exe = Path(sys.executable).with_name("pbtp-mailer")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pbtp_mailer"]
    with tempfile.TemporaryDirectory() as out:
        times = []
        for _ in range(args.process_runs):
            t0 = time.perf_counter()
            subprocess.run([*cmd, "--config", str(ROOT / "pbtp-mailer.toml"), "build", str(path),
                            "-o", out], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
    print(f"{'pbtp-mailer build (whole process)':<40} {statistics.median(times):>7.3f} s    goal <= 0.45 s")


if __name__ == "__main__":
    main()
