"""The notebook layer: the series' settings (``settings``), notebook helpers and records
(``notebook_utils``), the series and sweep runners (``series``, ``sweep``), regression checks of
the notebooks (``regression``), notebook text checks (``nbcheck``), functions the notebooks save
(``saved``, ``saved_export``), the widget explorer (``explorer``), the landing page of a run
(``landing``). Nothing below this layer imports it.
"""
