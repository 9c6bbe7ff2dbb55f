"""The HTML dashboard served beside the monitoring API (``<prefix>/ui``).

Static assets ship in ``static/``; the page reads only the JSON API. See ``docs/dashboard.md``.
"""

from otel_monitoring.dashboard.ui import make_ui_router

__all__ = ["make_ui_router"]
