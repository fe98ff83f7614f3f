"""h4tracks: human-in-the-loop analysis of 2D cell migration.

The Qt-free library lives in :mod:`h4tracks.core`; the napari plugin in :mod:`h4tracks.ui`.
"""

from h4tracks.errors import H4TracksError

__version__ = "0.1.0"
__all__ = ["H4TracksError", "__version__"]
