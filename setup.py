"""Only the optional compiled twin of ``pygwire._hotpath``; everything else
is configured in pyproject.toml.

``optional=True``: where no C compiler is found or the build fails, the
package installs without the extension and runs the pure-Python reference
(``pygwire._hotpath.implementation()`` then reports ``"python"``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pygwire._chotpath",
            sources=["src/pygwire/_chotpath.c"],
            optional=True,
        )
    ],
)
