"""cepletter: compose, preview and send an email newsletter from a website's feed."""

__version__ = "0.1.0"
