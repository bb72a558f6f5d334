"""Errors a user can act on: each names the file (and row) and what was expected."""


class InputError(ValueError):
    """Bad user input (data, labels, config, weights, maps). The message names the file/row."""


class ShardError(InputError):
    """A shard or map file that is missing keys, truncated or corrupt."""
