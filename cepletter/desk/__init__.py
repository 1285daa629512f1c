"""The editorial desk: a local web app over one issue file (``cepletter desk``).

``summary`` shows item summaries as Markdown, ``document`` is the issue being
edited and the edits a page can make, ``session`` keeps it and the file on
disk in step and builds the preview, ``server`` serves the page on 127.0.0.1.
"""
