"""The notebook layer: notebook helpers and records, the series and sweep runners,
the widget explorer, the landing page of a run. Nothing below this layer imports it.
"""
