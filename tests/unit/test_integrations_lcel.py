"""The LCEL recipes of docs/INTEGRATIONS.md, one test each, with a deterministic optimizer and a
recording answerer, so each test sees exactly what the answerer received. The same recipes on
the real local models are in ``tests/integration/test_integrations_lcel.py``."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField, RunnableParallel, RunnablePassthrough

from fipo_middleware import FIPOOptimizer
from tests.fakes import RewriteTableLLM, recording

QUESTION = "name two planets"
REWRITE = "List the names of two planets in our solar system, one per line."
ANSWER = "Mars, Venus"

prompt = ChatPromptTemplate.from_messages(
    [("system", "You answer in one short line."), ("human", "{question}")]
)


def table_optimizer(**kwargs: Any) -> FIPOOptimizer:
    return FIPOOptimizer.from_llm(RewriteTableLLM(table={QUESTION: REWRITE}), **kwargs)


def last_human(messages: list[BaseMessage]) -> str:
    return next(m.text for m in reversed(messages) if m.type == "human")


# ------------------------------------------------------------------ recipe 1
def test_prompt_fipo_llm_parser_rewrites() -> None:
    llm = recording(ANSWER)
    chain = prompt | table_optimizer() | llm | StrOutputParser()
    assert chain.invoke({"question": QUESTION}) == ANSWER
    assert last_human(llm.received[0]) == REWRITE


# ------------------------------------------------------------------ recipe 2
def side_by_side(fipo: Any, llm: Any) -> Any:
    return RunnableParallel(
        naive=prompt | llm | StrOutputParser(),
        optimized=prompt | fipo | llm | StrOutputParser(),
    )


def test_parallel_sends_both_prompts() -> None:
    llm = recording(ANSWER)
    out = side_by_side(table_optimizer(), llm).invoke({"question": QUESTION})
    assert out == {"naive": ANSWER, "optimized": ANSWER}
    assert sorted(last_human(m) for m in llm.received) == sorted([QUESTION, REWRITE])


# ------------------------------------------------------------------ recipe 3
def test_with_fallbacks_to_the_naive_prompt() -> None:
    # on_failure="raise": a rejected rewrite raises, and the fallback sends the naive prompt.
    strict = FIPOOptimizer.from_llm(RewriteTableLLM(table={}), on_failure="raise")
    llm = recording(ANSWER)
    chain = prompt | strict.with_fallbacks([RunnablePassthrough()]) | llm | StrOutputParser()
    assert chain.invoke({"question": QUESTION}) == ANSWER
    assert last_human(llm.received[0]) == QUESTION


# ------------------------------------------------------------------ recipe 4
def test_configurable_alternatives_switch() -> None:
    fipo = table_optimizer().configurable_alternatives(
        ConfigurableField(id="optimizer"), default_key="fipo", off=RunnablePassthrough()
    )
    llm = recording(ANSWER)
    chain = prompt | fipo | llm | StrOutputParser()
    chain.invoke({"question": QUESTION})
    chain.invoke({"question": QUESTION}, config={"configurable": {"optimizer": "off"}})
    chain.invoke({"question": QUESTION}, config={"configurable": {"optimizer": "fipo"}})
    assert [last_human(m) for m in llm.received] == [REWRITE, QUESTION, REWRITE]
