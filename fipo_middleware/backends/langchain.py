"""Any LangChain language model as the optimizer: the ad-hoc APO baseline (an API model told
to rewrite prompts), or a local chat model you already have."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel, BaseLanguageModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from fipo_middleware.backends.base import DecodingParams, MetaPrompt
from fipo_middleware.errors import BackendError
from fipo_middleware.template import TULU_ASSISTANT, TULU_USER


def _to_messages(prompt: MetaPrompt) -> list[BaseMessage]:
    if isinstance(prompt, str):
        # A chat model gets the fipo-original text without the Tulu turn markers.
        text = prompt.removeprefix(TULU_USER).removesuffix(TULU_ASSISTANT)
        return [HumanMessage(content=text)]
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](content=m["content"]) for m in prompt]


def _to_text(prompt: MetaPrompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(m["content"] for m in prompt)


class LangChainBackend:
    """Wraps a ``BaseLanguageModel``. Decoding parameters are the model's own: LangChain
    models fix temperature etc. at construction, so only ``stop`` is passed through."""

    def __init__(self, model: BaseLanguageModel, *, context_length: int | None = None) -> None:
        if not isinstance(model, BaseLanguageModel):
            raise TypeError(
                f"from_llm expects a LangChain LLM or chat model, got {type(model).__name__}"
            )
        self.model = model
        self._context_length = context_length

    @property
    def identity(self) -> str:
        params: dict[str, Any] = {}
        try:
            params = dict(self.model._identifying_params)
        except Exception:  # some models compute these lazily; the class name still identifies
            params = {}
        return f"langchain:{type(self.model).__name__}:{sorted(params.items())!r}"

    @property
    def context_length(self) -> int | None:
        return self._context_length

    def count_tokens(self, prompt: MetaPrompt) -> int:
        if isinstance(self.model, BaseChatModel):
            return self.model.get_num_tokens_from_messages(_to_messages(prompt))
        return self.model.get_num_tokens(_to_text(prompt))

    def _input(self, prompt: MetaPrompt) -> Any:
        if isinstance(self.model, BaseChatModel):
            return _to_messages(prompt)
        return _to_text(prompt)

    @staticmethod
    def _text(result: Any) -> str:
        if isinstance(result, BaseMessage):
            return result.text if isinstance(result.text, str) else result.text()
        return str(result)

    def generate(self, prompt: MetaPrompt, params: DecodingParams) -> str:
        try:
            result = self.model.invoke(self._input(prompt), stop=list(params.stop) or None)
        except Exception as e:
            raise BackendError(f"{type(self.model).__name__} failed: {e}") from e
        return self._text(result)
