"""The ``adc`` command line (typer + rich)."""
