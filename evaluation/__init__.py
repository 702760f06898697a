"""Evaluation of prompt optimizers: downstream accuracy on tasks (``run_eval``) and intrinsic
metrics on prompt pairs (``run_prompt_eval``). See docs/EVALUATION.md.

Heavy dependencies (numpy, matplotlib, rouge-score, llama.cpp, transformers) load inside the
functions that need them.
"""

from evaluation.downstream import (
    Downstream,
    HFDownstream,
    LangChainDownstream,
    LlamaCppDownstream,
    parse_downstream,
)
from evaluation.intrinsic import run_prompt_eval
from evaluation.optimizers import OptimizerSpec, parse_optimizer
from evaluation.runner import EvalResults, run_eval
from evaluation.stats import paired_bootstrap
from evaluation.tasks import Example, Task, load_task

__all__ = [
    "Downstream",
    "EvalResults",
    "Example",
    "HFDownstream",
    "LangChainDownstream",
    "LlamaCppDownstream",
    "OptimizerSpec",
    "Task",
    "load_task",
    "paired_bootstrap",
    "parse_downstream",
    "parse_optimizer",
    "run_eval",
    "run_prompt_eval",
]
