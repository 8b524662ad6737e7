"""Crawler extensions: throttling and risk-control handling."""
