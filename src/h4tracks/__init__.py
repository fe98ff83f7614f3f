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
__all__ = ["H4TracksError", "__version__", "run"]


def __getattr__(name: str):
    # ``h4tracks.run`` loads the pipeline (and dask) only when used: ``import h4tracks``
    # stays light for the plugin and the command line. import_module, not an import
    # statement: every core module imports this package (for __version__), and the layering
    # check would read a static import here as all of them depending on the pipeline
    if name == "run":
        import importlib

        return importlib.import_module("h4tracks.core.pipeline").run_pipeline
    raise AttributeError(f"module 'h4tracks' has no attribute {name!r}")
