"""Rendered issue + recipient → the bytes of one message: the subscriber values, unsubscribe links, headers.
"""
