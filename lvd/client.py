"""`lvd.client`, the client's old name: everything lvd_client exports, from the server package.

The client lives in lvd_client (clients/python/lvd_client), which the server's distribution
ships too and which installs on its own as `lvd-client`. Code written against this module
keeps working.
"""

from lvd_client import *  # noqa: F403  (the whole public API, under its old name)
from lvd_client import __all__ as __all__
