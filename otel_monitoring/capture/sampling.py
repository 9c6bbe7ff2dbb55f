"""Server spans the trace sampler drops are still recorded, for the findings only.

The statistics come from metrics and do not depend on sampling, but what only spans know
(slowest traces, error samples, N+1 patterns: :mod:`otel_monitoring.capture.spans`) came
only from sampled requests: with ``OTEL_TRACES_SAMPLER=parentbased_traceidratio`` at 0.1,
nine N+1 requests in ten went unseen, and with ``always_off`` every one (and their
statements waited in the bounded buffer for a span that never ended).

:class:`RecordUnsampledServerSpans` wraps the sampler of the contrib ASGI middleware's tracer
in zero-code mode (no other tracer of the app; in code mode our middleware feeds the findings
of a dropped request itself, which costs less): a server span the sampler drops becomes
``RECORD_ONLY``, the OTel decision for spans that are recorded in process but not sampled.
Exporters skip it (the SDK's span processors export sampled spans only), its context keeps
the sampled flag off, so what it propagates is unchanged, and the span processor offers no
trace id for it (none was exported). Other kinds (the middleware's internal send/receive
spans) keep the sampler's decision. Cost: an unsampled request's server span is a real span,
as a sampled one, but not exported.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

__all__ = ["RecordUnsampledServerSpans", "record_unsampled_server_spans"]


class RecordUnsampledServerSpans(Sampler):
    """``delegate``'s decisions, except that a server span it drops is ``RECORD_ONLY``."""

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        result = self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if kind is not SpanKind.SERVER or result.decision is not Decision.DROP:
            return result
        # a dropped result carries no attributes: the span keeps the ones it started with
        return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state)

    def get_description(self) -> str:
        return f"RecordUnsampledServerSpans{{{self.delegate.get_description()}}}"


def record_unsampled_server_spans(tracer: object) -> bool:
    """Wrap an SDK tracer's sampler (idempotent; O(1)); ``False`` for another tracer (a
    no-op or proxy tracer creates no SDK spans)."""
    if not isinstance(tracer, SdkTracer):
        return False
    if not isinstance(tracer.sampler, RecordUnsampledServerSpans):
        tracer.sampler = RecordUnsampledServerSpans(tracer.sampler)
    return True
