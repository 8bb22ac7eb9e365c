"""One base class for user mistakes: the CLI prints their message as one sentence, no traceback."""


class EdgeEdetError(Exception):
    """A user-facing error: bad input, missing file, unsupported combination."""
