"""Generators of hard test data that the product itself never uses: dense dividing colonies
(:mod:`~h4tracks.testing.colony`) and segmentation errors injected into perfect masks
(:mod:`~h4tracks.testing.degrade`). The tests and the benchmarks use them; they ship with the
package so that a user can reproduce a benchmark.
"""
