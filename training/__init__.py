"""Training code for the diabetes ridge model: data, validation, model, metrics.

Pure functions over data frames and arrays; the only I/O lives in `training.data` readers
and in the thin `python -m training.train` entry point.
"""
