"""Prometheus remote-write messages (``prompb.WriteRequest``) built with the protobuf package.

The subset of Prometheus's ``prompb/types.proto`` and ``remote.proto`` that a remote-write
sender uses: ``WriteRequest`` -> ``TimeSeries`` -> ``Label``, ``Sample`` and the native
``Histogram`` with its ``BucketSpan``. Field numbers and types are the upstream ones (checked
against ``prompb/types.proto`` of Prometheus 2.4x), so the bytes are what the Collector's
``prometheusremotewrite`` exporter sends. Test-only: the package never writes to Prometheus.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED


def _message(
    file: descriptor_pb2.FileDescriptorProto,
    name: str,
    fields: list[tuple[str, int, int, int, str | None, int | None]],
    oneofs: tuple[str, ...] = (),
) -> None:
    """Add ``message name`` with ``(field, number, type, label, message type, oneof index)``."""
    msg = file.message_type.add(name=name)
    for oneof in oneofs:
        msg.oneof_decl.add(name=oneof)
    for field_name, number, kind, label, type_name, oneof_index in fields:
        field = msg.field.add(name=field_name, number=number, type=kind, label=label)
        if type_name is not None:
            field.type_name = f".prometheus.{type_name}"
        if oneof_index is not None:
            field.oneof_index = oneof_index


def _build() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="otel_monitoring_tests/prompb.proto", package="prometheus", syntax="proto3"
    )
    _message(
        file,
        "Label",
        [("name", 1, _F.TYPE_STRING, _OPTIONAL, None, None),
         ("value", 2, _F.TYPE_STRING, _OPTIONAL, None, None)],
    )  # fmt: skip
    _message(
        file,
        "Sample",
        [("value", 1, _F.TYPE_DOUBLE, _OPTIONAL, None, None),
         ("timestamp", 2, _F.TYPE_INT64, _OPTIONAL, None, None)],
    )  # fmt: skip
    _message(
        file,
        "BucketSpan",
        [("offset", 1, _F.TYPE_SINT32, _OPTIONAL, None, None),
         ("length", 2, _F.TYPE_UINT32, _OPTIONAL, None, None)],
    )  # fmt: skip
    _message(
        file,
        "Histogram",
        [
            ("count_int", 1, _F.TYPE_UINT64, _OPTIONAL, None, 0),
            ("count_float", 2, _F.TYPE_DOUBLE, _OPTIONAL, None, 0),
            ("sum", 3, _F.TYPE_DOUBLE, _OPTIONAL, None, None),
            ("schema", 4, _F.TYPE_SINT32, _OPTIONAL, None, None),
            ("zero_threshold", 5, _F.TYPE_DOUBLE, _OPTIONAL, None, None),
            ("zero_count_int", 6, _F.TYPE_UINT64, _OPTIONAL, None, 1),
            ("zero_count_float", 7, _F.TYPE_DOUBLE, _OPTIONAL, None, 1),
            ("negative_spans", 8, _F.TYPE_MESSAGE, _REPEATED, "BucketSpan", None),
            ("negative_deltas", 9, _F.TYPE_SINT64, _REPEATED, None, None),
            ("negative_counts", 10, _F.TYPE_DOUBLE, _REPEATED, None, None),
            ("positive_spans", 11, _F.TYPE_MESSAGE, _REPEATED, "BucketSpan", None),
            ("positive_deltas", 12, _F.TYPE_SINT64, _REPEATED, None, None),
            ("positive_counts", 13, _F.TYPE_DOUBLE, _REPEATED, None, None),
            ("reset_hint", 14, _F.TYPE_INT32, _OPTIONAL, None, None),  # an enum on the wire
            ("timestamp", 15, _F.TYPE_INT64, _OPTIONAL, None, None),
        ],
        oneofs=("count", "zero_count"),
    )
    _message(
        file,
        "TimeSeries",
        [
            ("labels", 1, _F.TYPE_MESSAGE, _REPEATED, "Label", None),
            ("samples", 2, _F.TYPE_MESSAGE, _REPEATED, "Sample", None),
            ("histograms", 4, _F.TYPE_MESSAGE, _REPEATED, "Histogram", None),
        ],
    )
    _message(
        file,
        "WriteRequest",
        [("timeseries", 1, _F.TYPE_MESSAGE, _REPEATED, "TimeSeries", None)],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{name}"))
        for name in ("Label", "Sample", "BucketSpan", "Histogram", "TimeSeries", "WriteRequest")
    }


_CLASSES = _build()
Label: Any = _CLASSES["Label"]
Sample: Any = _CLASSES["Sample"]
BucketSpan: Any = _CLASSES["BucketSpan"]
Histogram: Any = _CLASSES["Histogram"]
TimeSeries: Any = _CLASSES["TimeSeries"]
WriteRequest: Any = _CLASSES["WriteRequest"]
