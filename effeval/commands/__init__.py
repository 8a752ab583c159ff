"""Front-door commands (``effeval <command>``) and ``make demo`` steps.

Algorithms live in ``effeval/methods/`` and import nothing from here; this package wires them to
files, models, results and the command line.
"""
