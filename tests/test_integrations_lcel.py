"""The LCEL recipes of docs/INTEGRATIONS.md, one test each, on the real local models
(SmolLM2 over llama.cpp as optimizer and as answerer) plus a recording model where the test
must see what the answerer received."""

from __future__ import annotations

import itertools
from typing import Any

from fakes import RewriteTableLLM
from langchain_core.language_models import BaseChatModel, GenericFakeChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField, RunnableParallel, RunnablePassthrough
from pydantic import Field

from fipo_middleware import FIPOOptimizer

QUESTION = "name two planets"
REWRITE = "List the names of two planets in our solar system, one per line."

prompt = ChatPromptTemplate.from_messages(
    [("system", "You answer in one short line."), ("human", "{question}")]
)




class RecordingChatModel(GenericFakeChatModel):
    received: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.received.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kw)


def recording() -> RecordingChatModel:
    return RecordingChatModel(messages=itertools.cycle(["Mars, Venus"]))


def table_optimizer(**kwargs: Any) -> FIPOOptimizer:
    return FIPOOptimizer.from_llm(RewriteTableLLM(table={QUESTION: REWRITE}), **kwargs)


def last_human(messages: list[BaseMessage]) -> str:
    return next(m.text for m in reversed(messages) if m.type == "human")


# ------------------------------------------------------------------ recipe 1
def test_prompt_fipo_llm_parser(
    base_optimizer: FIPOOptimizer, downstream_chat: BaseChatModel
) -> None:
    chain = prompt | base_optimizer | downstream_chat | StrOutputParser()
    answer = chain.invoke({"question": QUESTION})
    assert isinstance(answer, str) and answer.strip()

    # What the answerer receives: the prompt's messages, last human message optimized.
    sent = (prompt | base_optimizer).invoke({"question": QUESTION}).to_messages()
    assert sent[0].text == "You answer in one short line."
    assert sent[1].text == base_optimizer.optimize(QUESTION).optimized_prompt


def test_prompt_fipo_llm_parser_rewrites() -> None:
    llm = recording()
    chain = prompt | table_optimizer() | llm | StrOutputParser()
    assert chain.invoke({"question": QUESTION}) == "Mars, Venus"
    assert last_human(llm.received[0]) == REWRITE


# ------------------------------------------------------------------ recipe 2
def side_by_side(fipo: Any, llm: Any) -> Any:
    return RunnableParallel(
        naive=prompt | llm | StrOutputParser(),
        optimized=prompt | fipo | llm | StrOutputParser(),
    )


def test_parallel_naive_and_optimized(
    base_optimizer: FIPOOptimizer, downstream_chat: BaseChatModel
) -> None:
    # max_concurrency=1: one llama.cpp context must not serve two branches at once.
    out = side_by_side(base_optimizer, downstream_chat).invoke(
        {"question": QUESTION}, config={"max_concurrency": 1}
    )
    assert set(out) == {"naive", "optimized"}
    assert all(isinstance(v, str) and v.strip() for v in out.values())


def test_parallel_sends_both_prompts() -> None:
    llm = recording()
    out = side_by_side(table_optimizer(), llm).invoke({"question": QUESTION})
    assert out == {"naive": "Mars, Venus", "optimized": "Mars, Venus"}
    assert sorted(last_human(m) for m in llm.received) == sorted([QUESTION, REWRITE])


# ------------------------------------------------------------------ recipe 3
def test_with_fallbacks_to_the_naive_prompt() -> None:
    # on_failure="raise": a rejected rewrite raises, and the fallback sends the naive prompt.
    strict = FIPOOptimizer.from_llm(RewriteTableLLM(table={}), on_failure="raise")
    llm = recording()
    chain = prompt | strict.with_fallbacks([RunnablePassthrough()]) | llm | StrOutputParser()
    assert chain.invoke({"question": QUESTION}) == "Mars, Venus"
    assert last_human(llm.received[0]) == QUESTION


def test_with_fallbacks_real_models(
    base_optimizer: FIPOOptimizer, downstream_chat: BaseChatModel
) -> None:
    # The whole optimized chain falls back to the plain one on any error.
    chain = (prompt | base_optimizer | downstream_chat).with_fallbacks(
        [prompt | downstream_chat]
    ) | StrOutputParser()
    assert chain.invoke({"question": QUESTION}).strip()


# ------------------------------------------------------------------ recipe 4
def test_configurable_alternatives_switch() -> None:
    fipo = table_optimizer().configurable_alternatives(
        ConfigurableField(id="optimizer"), default_key="fipo", off=RunnablePassthrough()
    )
    llm = recording()
    chain = prompt | fipo | llm | StrOutputParser()
    chain.invoke({"question": QUESTION})
    chain.invoke({"question": QUESTION}, config={"configurable": {"optimizer": "off"}})
    chain.invoke({"question": QUESTION}, config={"configurable": {"optimizer": "fipo"}})
    assert [last_human(m) for m in llm.received] == [REWRITE, QUESTION, REWRITE]


def test_configurable_alternatives_real_models(
    base_optimizer: FIPOOptimizer, downstream_chat: BaseChatModel
) -> None:
    fipo = base_optimizer.configurable_alternatives(
        ConfigurableField(id="optimizer"), default_key="fipo", off=RunnablePassthrough()
    )
    chain = prompt | fipo | downstream_chat | StrOutputParser()
    for choice in ("fipo", "off"):
        out = chain.invoke({"question": QUESTION}, config={"configurable": {"optimizer": choice}})
        assert isinstance(out, str) and out.strip()
