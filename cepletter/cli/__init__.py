"""The command line: click commands that read options, call one core function and print.

``main`` builds the group and registers the commands; ``env`` is what every
command is handed. This is the only place where errors become exit codes.
"""
