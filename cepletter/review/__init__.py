"""Looking before sending: preview, checks, email-client compatibility, screenshots, the preview server, sign-off.
"""
