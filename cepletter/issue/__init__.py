"""The issue file (``issues/<ID>/issue.md``): load, save, list, and drafting one from items.
"""
