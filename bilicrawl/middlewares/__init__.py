"""Downloader middlewares: headers, Bilibili's JSON envelope, signing."""
