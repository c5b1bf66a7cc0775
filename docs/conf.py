"""Sphinx configuration of the symqp documentation (``make docs``; warnings are errors)."""

from __future__ import annotations

import os

import symqp

project = "symqp"
author = "symqp developers"
release = version = symqp.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax", "myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme = "alabaster"
html_title = f"symqp {release}"

# numpydoc-style docstrings, read by napoleon
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_typehints = "none"  # the signatures speak; the docstrings describe the types
napoleon_use_param = False  # types such as "array (n, d)" stay text, not cross-references
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}

# The notebooks are executed at every build: at reduced sizes with SYMQP_EXAMPLES_QUICK=1
# (CI), at full size otherwise. An error in a cell fails the build.
nb_execution_mode = os.environ.get("SYMQP_DOCS_EXECUTE", "force")
nb_execution_timeout = 1800
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["dollarmath"]

# Attribute types such as "ndarray (d,)" name d, which many classes have as a property: the
# resolver's "more than one target" for those words is not a broken link.
suppress_warnings = ["ref.python"]
