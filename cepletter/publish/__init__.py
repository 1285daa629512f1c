"""After sending: hand-off exports and the static web archive.
"""
