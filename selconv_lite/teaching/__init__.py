"""The notebook layer: notebook helpers and records, the series and sweep runners,
the widget explorer, exercise checkers. Nothing below this layer imports it.
"""
