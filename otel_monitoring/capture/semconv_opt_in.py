"""``OTEL_SEMCONV_STABILITY_OPT_IN``: the contrib HTTP instrumentations on the stable conventions.

The monitor reads the stable HTTP metrics: ``http.server.request.duration`` (seconds, with
``http.route``, ``http.request.method``, ``http.response.status_code``) and
``http.client.request.duration``. On the old conventions the contrib instrumentations record
``http.server.duration`` instead, in whole milliseconds and without a route, and
``http.client.duration``: no route's statistics can be made of them, and none were (a team's
``OTEL_SEMCONV_STABILITY_OPT_IN=database``, set for its DB conventions' migration, left the
monitoring API with no request at all).

The variable is a comma list of per-signal opt-ins (``http``, ``http/dup``, ``database``,
``database/dup``, ``gen_ai_latest_experimental``), read once per process by the first
contrib instrumentation that loads. So the package's default applies to the HTTP signal
alone: ``http`` is added when no HTTP mode is named, and a team's ``http`` or ``http/dup``
(old and new names both; the monitor reads the new ones only, so nothing is counted twice)
is left as it is.
"""

from __future__ import annotations

from collections.abc import MutableMapping

__all__ = ["VARIABLE", "opt_in_stable_http"]

VARIABLE = "OTEL_SEMCONV_STABILITY_OPT_IN"
_HTTP_MODES = frozenset(("http", "http/dup"))


def opt_in_stable_http(environ: MutableMapping[str, str]) -> str | None:
    """Make ``environ``'s :data:`VARIABLE` name an HTTP mode: ``http`` when it is unset,
    ``http`` added to the modes it names otherwise (``database`` -> ``database,http``).

    Returns the team's value when it was changed (empty or naming no HTTP mode), for the
    caller to say so; ``None`` when it was unset or already named ``http`` or ``http/dup``.
    Contrib instrumentations already loaded in the process keep the conventions they read.
    """
    raw = environ.get(VARIABLE)
    if raw is None:
        environ[VARIABLE] = "http"
        return None
    modes = [mode.strip() for mode in raw.split(",") if mode.strip()]
    if _HTTP_MODES.intersection(modes):
        return None
    environ[VARIABLE] = ",".join([*modes, "http"])
    return raw
