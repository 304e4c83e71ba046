"""Only the optional compiled twin of ``pygwire._framing``; everything else
is configured in pyproject.toml.

``optional=True``: where no C compiler is found or the build fails, the
package installs without the extension and runs the pure-Python reference
(``pygwire._framing.implementation()`` then reports ``"python"``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pygwire._cframing",
            sources=["src/pygwire/_cframing.c"],
            optional=True,
        )
    ],
)
