"""Where content comes from: feeds, Markdown folders and calendars → Items and Events.

Fetching, the item cache and sanitising live here: everything from outside is cleaned before a later stage sees it.
"""
