"""The one error type the local stack reports to a person, as a single clear line."""


class StackError(RuntimeError):
    """Something the user must fix (a missing binary, model or free port); no stack trace needed."""
