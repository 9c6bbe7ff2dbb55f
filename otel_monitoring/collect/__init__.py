"""Collect: once per interval, on the reader thread: the SDK's batch -> store and exporters."""
