"""QA scenarios: a cabinet, its people and stock, and a timeline of steps with expectations, written in YAML
(``schema.json``, documented in ``docs/scenarios.md``) and run on a virtual clock (``adc scenario run``).

``loader`` reads a file (``yaml_source``, the schema, ``references``) into the records of ``model``; ``runner``
runs each on a fresh ``simulated_cabinet`` through ``local_steps`` (or on a running ``adc serve`` through
``remote``) and checks ``expectations`` after every step; ``junit`` and ``html_report`` write the results.
"""
