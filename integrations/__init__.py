"""LangChain integrations of FIPO: a wrapping chat model and LangChain v1 agent middleware.

``FIPOMiddleware`` needs the ``langchain`` package (``pip install fipo[agents]``); it is
imported on first use so that ``FIPOChatModel`` works with ``langchain-core`` alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from integrations.chat_model import METADATA_KEY, FIPOChatModel

if TYPE_CHECKING:
    from integrations.agent_middleware import FIPOMiddleware, FIPOState

__all__ = ["METADATA_KEY", "FIPOChatModel", "FIPOMiddleware", "FIPOState"]


def __getattr__(name: str) -> Any:
    if name in ("FIPOMiddleware", "FIPOState"):
        from integrations import agent_middleware

        return getattr(agent_middleware, name)
    raise AttributeError(f"module 'integrations' has no attribute {name!r}")
