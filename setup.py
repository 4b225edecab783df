"""Package discovery lives here only because pyproject.toml cannot add a folder outside the
package tree: the top-level `templates/` ships inside the wheel as `conduit.templates`."""
from setuptools import find_packages, setup

setup(packages=find_packages("toolchain", include=["conduit", "conduit.*"]) + ["conduit.templates"])
