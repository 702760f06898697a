"""The LCEL recipes of docs/INTEGRATIONS.md on the real local models: SmolLM2 over llama.cpp as
optimizer and as answerer. A callback handler on the chain records what the answerer (a real
``ChatLlamaCpp``) received and returned, so each test checks that the optimizer's output is
exactly what reached it. The scripted versions are in ``tests/unit/test_integrations_lcel.py``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import LLMResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField, RunnableParallel, RunnablePassthrough

from fipo_middleware import FIPOOptimizer

QUESTION = "name two planets"
SYSTEM = "You answer in one short line."

prompt = ChatPromptTemplate.from_messages([("system", SYSTEM), ("human", "{question}")])


class AnswererRecorder(BaseCallbackHandler):
    """Every chat-model run in the chain: the messages it was sent and the text it returned."""

    def __init__(self) -> None:
        self.sent: dict[UUID, list[BaseMessage]] = {}
        self.answers: dict[UUID, str] = {}

    def on_chat_model_start(self, serialized: Any, messages: list[list[BaseMessage]], *,
                            run_id: UUID, **kwargs: Any) -> None:
        [self.sent[run_id]] = messages

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self.answers[run_id] = response.generations[0][0].text

    def runs(self) -> list[tuple[str, str]]:
        """(last human message, answer) of each finished run, in start order."""
        return [(next(m.text for m in reversed(msgs) if m.type == "human"), self.answers[rid])
                for rid, msgs in self.sent.items()]


def optimized(optimizer: FIPOOptimizer) -> str:
    """What the optimizer serves for QUESTION (cached, greedy: the text the chain sends)."""
    return optimizer.optimize(QUESTION).optimized_prompt


# ------------------------------------------------------------------ recipe 1
def test_prompt_fipo_llm_parser(
    base_optimizer: FIPOOptimizer, downstream_chat: BaseChatModel
) -> None:
    rec = AnswererRecorder()
    chain = prompt | base_optimizer | downstream_chat | StrOutputParser()
    answer = chain.invoke({"question": QUESTION}, config={"callbacks": [rec]})

    # The answerer got the prompt's messages with the last human message optimized, and the
    # parser returned exactly its answer.
    [sent] = rec.sent.values()
    assert [(m.type, m.text) for m in sent] == [("system", SYSTEM),
                                                ("human", optimized(base_optimizer))]
    assert rec.runs() == [(optimized(base_optimizer), answer)]
    assert answer.strip()


# ------------------------------------------------------------------ recipe 2
def side_by_side(fipo: Any, llm: Any) -> Any:
    return RunnableParallel(
        naive=prompt | llm | StrOutputParser(),
        optimized=prompt | fipo | llm | StrOutputParser(),
    )


def test_parallel_naive_and_optimized(
    base_optimizer: FIPOOptimizer, downstream_chat: BaseChatModel
) -> None:
    rec = AnswererRecorder()
    # max_concurrency=1: one llama.cpp context must not serve two branches at once.
    out = side_by_side(base_optimizer, downstream_chat).invoke(
        {"question": QUESTION}, config={"max_concurrency": 1, "callbacks": [rec]}
    )
    assert set(out) == {"naive", "optimized"}
    # One answerer run per branch: the naive question and the optimized one, each branch
    # returning the answer to its own prompt.
    assert sorted(rec.runs()) == sorted([(QUESTION, out["naive"]),
                                         (optimized(base_optimizer), out["optimized"])])


# ------------------------------------------------------------------ recipe 3
def test_with_fallbacks_real_models(
    base_optimizer: FIPOOptimizer, downstream_chat: BaseChatModel
) -> None:
    # The whole optimized chain falls back to the plain one on any error.
    rec = AnswererRecorder()
    chain = (prompt | base_optimizer | downstream_chat).with_fallbacks(
        [prompt | downstream_chat]
    ) | StrOutputParser()
    answer = chain.invoke({"question": QUESTION}, config={"callbacks": [rec]})
    # Nothing failed, so the fallback never ran: one answerer run, on the optimized prompt.
    assert rec.runs() == [(optimized(base_optimizer), answer)]


# ------------------------------------------------------------------ recipe 4
def test_configurable_alternatives_real_models(
    base_optimizer: FIPOOptimizer, downstream_chat: BaseChatModel
) -> None:
    fipo = base_optimizer.configurable_alternatives(
        ConfigurableField(id="optimizer"), default_key="fipo", off=RunnablePassthrough()
    )
    chain = prompt | fipo | downstream_chat | StrOutputParser()
    rec = AnswererRecorder()
    answers = [chain.invoke({"question": QUESTION},
                            config={"configurable": {"optimizer": choice}, "callbacks": [rec]})
               for choice in ("fipo", "off")]
    assert rec.runs() == [(optimized(base_optimizer), answers[0]), (QUESTION, answers[1])]
