"""The command line's one error type, raised by every command and printed by main.py."""


class CommandError(Exception):
    """An expected failure: printed as one clear line, never as a traceback."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
