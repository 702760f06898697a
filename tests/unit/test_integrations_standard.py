"""langchain-tests' standard unit suite for ``FIPOChatModel``: a scripted langchain-core fake
chat model with ``bind_tools`` behind a deterministic optimizer (no model load). The standard
integration suite, on the real local models, is in
``tests/integration/test_integrations_standard.py``."""

from __future__ import annotations

import itertools
from typing import Any

from langchain_core.language_models import BaseChatModel, FakeListLLM
from langchain_core.messages import AIMessage
from langchain_tests.unit_tests import ChatModelUnitTests

from fipo_middleware import FIPOOptimizer
from integrations import FIPOChatModel
from tests.fakes import ToolFakeChatModel


def _fake_optimizer() -> FIPOOptimizer:
    return FIPOOptimizer.from_llm(
        FakeListLLM(responses=["Write a short, friendly reply that greets the user."])
    )


_UNIT_PARAMS: dict[str, Any] = {
    "optimizer": _fake_optimizer(),
    "model": ToolFakeChatModel(messages=itertools.cycle([AIMessage("hello there")])),
}


class TestFIPOChatModelUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return FIPOChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return dict(_UNIT_PARAMS)

    # test_init_from_env: skipped by the suite itself (no init_from_env_params). FIPO reads
    # no environment variables and holds no credentials; the wrapped model does.
    # test_serdes: skipped by the suite itself (not lc-serializable): the wrapper holds a live
    # optimizer backend and a live chat model, neither of which has a serialized form.
