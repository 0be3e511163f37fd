"""The lvd command line and its helpers (dev services, client, load test)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("live-validation-dashboard")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"
