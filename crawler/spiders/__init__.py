"""Spiders of the crawler project (``products``: the generic shop spider)."""
