"""The `mlops` command groups, one module each: thin layers over `pipelines.lifecycle`."""
