"""The example model definitions (`training.spec.ModelSpec`), one module each."""
