"""Exception types shared by the core, the CLI and the plugin."""


class H4TracksError(Exception):
    """A problem the user can act on (bad input, missing file, ...).

    The message is one readable sentence naming the problem; the CLI prints it without a
    traceback and the plugin shows it in a notification.
    """


class InputError(H4TracksError, ValueError):
    """Input data has the wrong shape, type or content."""


class ProjectFormatError(H4TracksError):
    """A path is not a readable h4tracks project."""


class ProjectDamagedError(ProjectFormatError):
    """Files of a saved project are missing or corrupt (``h4tracks check`` says which)."""
