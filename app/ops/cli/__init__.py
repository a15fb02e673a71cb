"""The ``flask`` commands, one module per group of commands (pypi/warehouse's shape)."""
