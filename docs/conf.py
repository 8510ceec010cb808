"""Sphinx configuration for the robustfetch documentation.

Build (warnings are errors): ``python -m sphinx -W --keep-going -b html docs OUTDIR``.
Only Sphinx's built-in extensions are used and nothing is fetched from the
network (no intersphinx), so the build works offline.
"""

import os
import sys

# The package is documented from the source tree, importable without installing.
sys.path.insert(0, os.path.abspath("../src"))

import robustfetch  # after the path is set

project = "robustfetch"
author = "robustfetch developers"
copyright = "robustfetch developers"
release = robustfetch.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

# autodoc: public names only, documented where the top-level package exports them.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_class_signature = "mixed"
add_module_names = True

exclude_patterns = ["_build", "check.sh"]
root_doc = "index"
language = "en"
default_role = "literal"

html_theme = "alabaster"
html_title = f"robustfetch {release}"
html_theme_options = {
    "description": "Download files robustly: ordered sources, streaming hash checks, "
    "atomic writes, and failures explained.",
    "fixed_sidebar": False,
}
html_static_path: list = []
