"""effeval: evaluate efficiency methods (quality and cost side by side) inside lm-eval.

Importing this package must stay cheap: it runs at every interpreter start through the
lm-eval plugin hook, so nothing heavy is imported here.
"""

__version__ = "0.1.0"
