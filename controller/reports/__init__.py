"""Pharmacy reports over the store: controlled-substance activity, discrepancies, override rates, expiring and
quarantined stock, par compliance and stock-outs, the DEA biennial inventory and theft/loss facts.

Each report module is a pure query and aggregation over one store session, returning a typed ``model.Report``;
``registry`` names them; ``csv_output``, ``html_output`` (with ``plots``) and ``pdf_output`` render one. The CLI
(``adc report``) and the API (``/api/v1/reports``) are the only callers; nothing here writes a file or talks to
a device.
"""
