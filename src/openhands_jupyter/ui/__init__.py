"""Widgets, magics and text fallbacks for notebooks."""
