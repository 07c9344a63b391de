"""Build configuration beyond pyproject.toml: the optional native Apple Health scanner.

``optional=True``: without a C compiler the install still succeeds and the importer
uses its pure-Python scanner (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "healthspace.sources._apple_fast",
            ["src/healthspace/sources/_apple_fast.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
