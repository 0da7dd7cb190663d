"""The ``d2e`` command: one thin entry point over the stages' own commands."""
