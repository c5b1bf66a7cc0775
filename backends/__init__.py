"""Regression backends: from decomposition targets to exact symbolic V, g and f.

Every backend takes the same :class:`Problem` (points, targets ``[f, V, g]`` of an
orthogonal decomposition, a function library); ``backend.fit(problem)`` returns the
backend with a :class:`Fit` in ``fit_`` (SymPy expressions with ``U = 2V``, a Pareto front
of :class:`Candidate` models, diagnostics), and :func:`fit_problem` returns that Fit.
Backends are scikit-learn style estimators (``get_params``, ``set_params``,
``sklearn.base.clone``), registered by name and imported only when asked for: ``sr3``
(constrained sparse relaxed regression), ``stlsq`` (sequentially thresholded least
squares), ``operon`` (pyoperon genetic programming), ``pysr`` (PySR, needs Julia) and
``pysindy`` (any pysindy optimizer with equality constraints, such as ``ConstrainedSR3``);
third-party packages add theirs through the ``symqp.backends`` entry-point group.
:func:`compare_fits` runs several backends on one problem and :func:`plot_pareto` draws
Pareto fronts.

Examples
--------
>>> from symqp.backends import available_backends, get_backend
>>> sorted(available_backends())
['operon', 'pysindy', 'pysr', 'sr3', 'stlsq']
>>> get_backend("sr3", threshold=0.1).threshold
0.1
"""

from ._base import Backend as Backend
from ._base import Search as Search
from ._base import fit_problem as fit_problem
from ._base import pareto_front as pareto_front
from ._base import select_candidate as select_candidate
from ._compare import Comparison as Comparison
from ._compare import compare_fits as compare_fits
from ._plot import plot_pareto as plot_pareto
from ._problem import Candidate as Candidate
from ._problem import Fit as Fit
from ._problem import Problem as Problem
from ._problem import relative_error as relative_error
from ._registry import available_backends as available_backends
from ._registry import get_backend as get_backend
from ._registry import register_backend as register_backend
from ._stlsq import stlsq as stlsq
from ._stlsq import tune_threshold as tune_threshold

__all__ = [
    "Backend",
    "Candidate",
    "Comparison",
    "Fit",
    "Problem",
    "Search",
    "available_backends",
    "compare_fits",
    "fit_problem",
    "get_backend",
    "pareto_front",
    "plot_pareto",
    "register_backend",
    "relative_error",
    "select_candidate",
    "stlsq",
    "tune_threshold",
]
