"""The chains name their strategies by module and function: every entry must resolve, and
take the parameters its question passes (the ``Where`` last), which no tool checks."""

from __future__ import annotations

import inspect

import pytest

from mountprobe import chain

pytestmark = pytest.mark.host_only  # asks no kernel: not run in the real-kernel guests


def test_every_question_has_a_chain_and_a_parameter_list() -> None:
    assert set(chain.CHAINS) == set(chain.PARAMETERS)
    assert all(chain.CHAINS.values())
    assert all(params[-1] == "where" for params in chain.PARAMETERS.values())


@pytest.mark.parametrize(
    "question, module, name",
    [(q, module, name) for q, entries in chain.CHAINS.items() for module, name in entries],
)
def test_every_chain_entry_is_a_function_taking_its_questions_parameters(question: str, module: str, name: str) -> None:
    function = dict(chain.strategies(question))[module]
    assert function.__name__ == name and function.__module__ == f"mountprobe.strategies.{module}"
    parameters = inspect.signature(function).parameters.values()
    assert tuple(p.name for p in parameters) == chain.PARAMETERS[question]
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters)
    # the caller's own namespace (None) is the default, so a strategy is called as before
    assert [p.default for p in parameters][-1] is None
