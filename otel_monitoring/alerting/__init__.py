"""Alerting: rules -> findings -> alert lifecycle -> notifications."""
