"""pbtp_mailer: the newsletter tool of the Alliance Procedure-Based Therapy Program.

Data flows one way: issue YAML -> ``Issue`` -> ``Rendition`` (HTML, text) ->
per-recipient message bytes -> sender -> ledger.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
