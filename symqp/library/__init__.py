"""SymPy function libraries, gradient maps, constraint matrices and compiled evaluation.

A :class:`Library` is an ordered list of SymPy terms in named variables. It derives its own
gradient maps D_k (d/dx_k theta_j = sum_i theta_i (D_k)_ij), checks closure under
differentiation, builds the constraint matrix C of the decomposition f = -grad V + g, and
evaluates Theta(X) through Numba kernels generated from the terms and cached on disk.

Examples
--------
>>> from symqp.library import poly, trig, parse_library
>>> lib = poly(["x", "y"], 2) + trig(["x"], 1)
>>> len(lib), lib.is_closed()
(8, True)
>>> parse_library("poly(1), sin(x)", ["x", "y"]).names
('1', 'x', 'y', 'sin(x)')
"""

from ._constraints import constraint_matrix as constraint_matrix
from ._constraints import gradient_library_matrix as gradient_library_matrix
from ._library import Library as Library
from ._presets import custom as custom
from ._presets import poly as poly
from ._presets import product as product
from ._presets import rational as rational
from ._presets import trig as trig
from ._spec import parse_library as parse_library

__all__ = [
    "Library",
    "constraint_matrix",
    "custom",
    "gradient_library_matrix",
    "parse_library",
    "poly",
    "product",
    "rational",
    "trig",
]
