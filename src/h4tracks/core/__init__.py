"""Qt-free core of h4tracks: project model, store, graph and algorithms.

Nothing under this package imports Qt or napari.
"""
