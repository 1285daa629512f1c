"""Sending: the send job, transports (Maildir, SMTP), the sending engine and the delivery journal.
"""
