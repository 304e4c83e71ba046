"""Every protocol message, in one flat namespace.

One class per message; each has ``to_wire()``, ``encode_into(buf)`` and the
classmethod ``decode(payload)``, compares by value and has a readable repr.
The submodules group them by protocol family; each declares its messages
once (see ``CONTRIBUTING.md``), and this namespace exports what they export.
"""

from . import auth, copy, errors, extended_query, misc, simple_query, startup, status
from ._base import (
    BackendMessage,
    CommonMessage,
    FrontendMessage,
    PGMessage,
    SpecialMessage,
    encode_messages,
)
from .auth import *  # noqa: F403
from .copy import *  # noqa: F403
from .errors import *  # noqa: F403
from .extended_query import *  # noqa: F403
from .misc import *  # noqa: F403
from .simple_query import *  # noqa: F403
from .startup import *  # noqa: F403
from .status import *  # noqa: F403

__all__ = [
    "BackendMessage",
    "CommonMessage",
    "FrontendMessage",
    "PGMessage",
    "SpecialMessage",
    "encode_messages",
]
__all__ += auth.__all__
__all__ += copy.__all__
__all__ += errors.__all__
__all__ += extended_query.__all__
__all__ += misc.__all__
__all__ += simple_query.__all__
__all__ += startup.__all__
__all__ += status.__all__
