"""Issues: one YAML file per newsletter issue, read into a validated ``Issue``.

- ``model``: the pydantic model (``Issue``, ``Article``, ``Reference`` …) and
  ``load_issue``, whose errors name ``FILE:LINE:COL: field.path``;
- ``yamlsource``: the YAML reader that keeps every value's line and column;
- ``new``: ``pbtp-mailer new`` (an issue from the template or a previous one).
"""

from pbtp_mailer.issue.model import (
    Article,
    Brief,
    Briefs,
    Byline,
    Image,
    Issue,
    ReadMore,
    Reference,
    Schedule,
    load_issue,
)

__all__ = ["Article", "Brief", "Briefs", "Byline", "Image", "Issue", "ReadMore", "Reference",
           "Schedule", "load_issue"]
