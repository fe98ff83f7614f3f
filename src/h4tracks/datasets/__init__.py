"""Data the product itself makes: synthetic time-lapse movies with exact ground truth, used by
``h4tracks demo``, ``h4tracks synth``, napari's *Open Sample* and the tutorial.

:mod:`h4tracks.datasets.synthetic` and its parameters (:mod:`h4tracks.datasets.parameters`, a
light module the command line generates its options from) are public; the agent model and the
rendering behind them are private modules.
"""
