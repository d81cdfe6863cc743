"""Composition: an ``Issue`` becomes a ``Rendition``, then message bytes.

- ``pipeline``: Jinja2 → MJML → mjml-python → premailer, plus the text part;
- ``layouts``, ``markdown``, ``text``, ``plaintext``, ``inline``: its stages;
- ``images``: local image files resolved (size, content-hashed name, URL);
  ``textparts``: the text of images and news briefs;
- ``message``: the ``MessageTemplate`` encoded once, personalised per recipient;
- ``build``: ``pbtp-mailer build`` (the files of one issue in ``build/``).
"""

from pbtp_mailer.compose.pipeline import Rendition, compose, issue_urls

__all__ = ["Rendition", "compose", "issue_urls"]
