"""``pbtp-mailer report``: a self-contained page, checked in Chromium (charts, console, 375 px, dark)."""

from __future__ import annotations

import pytest

from pbtp_mailer.feedback import record_events
from tests.feedback.conftest import event, run_cli


@pytest.fixture()
def report_file(fworld, memory_sender):
    emails = fworld.make_list(30)
    store = fworld.store()
    others = [f"reader{i}@uni.example.ac.uk" for i in range(12)]
    for e in others:
        store.add_subscriber("members", e)
    fworld.send_issue(store, "2024-03", sender=memory_sender(
        fail={emails[5]: [550, f"5.1.1 <{emails[5]}> no such user"]}))
    record_events(store, [
        event(emails[0], "hard", status="5.1.1", diagnostic=f"550 5.1.1 <{emails[0]}> unknown"),
        event(emails[1], "hard", status="5.1.1", diagnostic=f"550 5.1.1 <{emails[1]}> unknown"),
        event(others[0], "soft", status="4.2.2", diagnostic="mailbox full"),
        event(emails[2], "complaint", source="arf", status="abuse"),
    ])
    store.unsubscribe(emails[3], "members", source="one-click")
    out = fworld.root / "report.html"
    r = run_cli(fworld, "report", str(fworld.issue), "-o", str(out))
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"Wrote {out}"
    return out, emails


def test_report_content_has_no_addresses(report_file):
    out, emails = report_file
    html = out.read_text(encoding="utf-8")
    assert "<svg" in html and "http://" not in html.split("</title>", 1)[1].replace(
        "http://www.w3.org", "")
    assert not any(e in html for e in emails)  # domains and counts only
    for heading in ("Deliveries over time", "Bounces and complaints over time",
                    "Outcomes by recipient domain", "Top bounce reasons",
                    "Unsubscribes after this issue"):
        assert heading in html
    assert "uni.example.ac.uk" in html and "5.1.1" in html


def _look(browser, out, scheme):
    page = browser.new_page(viewport={"width": 375, "height": 800})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.emulate_media(color_scheme=scheme)
    page.goto(out.as_uri())
    facts = page.evaluate("""() => {
      const charts = [...document.querySelectorAll('svg.chart')];
      const drawn = charts.filter(s => [...s.querySelectorAll('polyline, rect')]
          .some(e => e.getBoundingClientRect().width > 0));
      const label = document.querySelector('svg .lbl');
      return {charts: charts.length, drawn: drawn.length,
              overflow: document.documentElement.scrollWidth - window.innerWidth,
              wide: charts.filter(s => s.getBoundingClientRect().right > window.innerWidth).length,
              bg: getComputedStyle(document.body).backgroundColor,
              label: getComputedStyle(label).fill};
    }""")
    page.close()
    return errors, requests, facts


@pytest.mark.slow
def test_report_in_chromium(report_file, browser):
    out, _ = report_file
    for scheme, bg, fg in (("light", "rgb(255, 255, 255)", "rgb(26, 26, 26)"),
                           ("dark", "rgb(13, 17, 23)", "rgb(230, 237, 243)")):
        errors, requests, facts = _look(browser, out, scheme)
        assert errors == [], errors
        assert requests == [out.as_uri()]  # the page asks for nothing else
        assert facts["charts"] >= 5 and facts["drawn"] == facts["charts"], facts
        assert facts["overflow"] <= 0 and facts["wide"] == 0, facts
        assert (facts["bg"], facts["label"]) == (bg, fg), scheme


@pytest.mark.slow
def test_report_passes_axe_core(report_file, browser):
    axe = pytest.importorskip("axe_playwright_python")
    from pathlib import Path

    source = (Path(axe.__file__).parent / "axe.min.js").read_text(encoding="utf-8")
    out, _ = report_file
    for scheme in ("light", "dark"):
        page = browser.new_page(viewport={"width": 375, "height": 800})
        page.emulate_media(color_scheme=scheme)
        page.goto(out.as_uri())
        page.evaluate(source)  # evaluate is not subject to the page's CSP
        result = page.evaluate("async () => (await axe.run(document)).violations.map("
                               "v => v.id + ': ' + v.nodes.length)")
        page.close()
        assert result == [], (scheme, result)


def test_report_before_any_dispatch(fworld):
    out = fworld.root / "r.html"
    r = run_cli(fworld, "report", str(fworld.issue), "-o", str(out))
    assert r.exit_code == 0 and "has not been dispatched yet" in r.output
    assert "No recipients yet." in out.read_text(encoding="utf-8")
