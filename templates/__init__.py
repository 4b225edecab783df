"""Jinja2 templates (glue only); installed as `conduit.templates` so the wheel carries them."""
