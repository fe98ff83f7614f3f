"""h4tracks: human-in-the-loop analysis of 2D cell migration.

The Qt-free library lives in :mod:`h4tracks.core`; the napari plugin in :mod:`h4tracks.ui`.
"""

from importlib.metadata import PackageNotFoundError, version

from h4tracks.errors import H4TracksError

try:
    # one version everywhere (--version, reports, provenance): the installed package's
    __version__ = version("h4tracks")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
__all__ = ["H4TracksError", "__version__"]
