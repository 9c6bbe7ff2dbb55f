"""Capture: per request, on the app's threads. Cheap, and never raises into the app."""
