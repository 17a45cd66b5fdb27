"""Built-in program plugins, one module per program variant."""
