"""Data the product itself makes: synthetic time-lapse movies with exact ground truth, used by
``h4tracks demo``, ``h4tracks synth``, napari's *Open Sample* and the tutorial.

Only :mod:`h4tracks.datasets.synthetic` is public; the agent model and the rendering behind it
are private modules.
"""
