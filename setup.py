"""Build hook: the wheel carries the data roots (catalog, stacks, roles, templates).

stackctl.resources looks for them beside the source checkout first and then in the installed
package as stackctl/_data, which this hook fills at build time from the top-level folders (the
sdist carries them through MANIFEST.in).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_DIRS = ("catalog", "stacks", "roles", "templates")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "stackctl" / "_data"
        shutil.rmtree(target, ignore_errors=True)
        for name in DATA_DIRS:
            shutil.copytree(
                Path(name), target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )


setup(cmdclass={"build_py": BuildWithData})
