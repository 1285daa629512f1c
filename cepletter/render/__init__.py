"""Issue → the email as HTML (CSS inlined) and text, with per-recipient slots. Pure: no network, no subscriber.
"""
