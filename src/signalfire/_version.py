"""The version of signalfire: the one place it is written (pyproject.toml reads it from here, see [tool.hatch.version]).

A literal rather than importlib.metadata.version("signalfire"), which searches every distribution on sys.path at each
start-up.
"""

__version__ = "0.1.0"
