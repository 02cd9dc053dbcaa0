"""The judge client: the disk cache, one retry on an unreadable reply, failures as judgements, cost by hand."""

from __future__ import annotations

import pytest

from judging.scripted import ScriptedJudge, grades_reply
from longscope.backends import parse_uri
from longscope.core import UsageError
from longscope.judging.cost import Prices, prices_of
from longscope.judging.judge import GradingRequest, Judge, JudgeWindowError, reply_budget
from longscope.judging.prompts import CHECKLIST

ITEMS = ("Is it on topic?", "Is it correct?", "Is it long enough?")


def request(response: str = "A response.") -> GradingRequest:
    return GradingRequest(CHECKLIST, "Write about rivers.", response, ITEMS)


def test_a_second_grading_of_the_same_input_makes_no_call():
    backend = ScriptedJudge(lambda m: grades_reply(1, 0.5, 0))
    judge = Judge(backend)
    first = judge.grade(request())
    assert first.ok and first.grades == (1.0, 0.5, 0.0) and first.score == pytest.approx(0.5)
    assert not first.cached and first.usage.calls == 1 and len(backend.requests) == 1
    again = Judge(ScriptedJudge(lambda m: pytest.fail("asked again"))).grade(request())
    assert again.cached and again.grades == first.grades and again.usage.calls == 0
    # Another response, another judge or another prompt version is another key: asked.
    judge.grade(request("Another response."))
    Judge(ScriptedJudge(lambda m: grades_reply(1, 1, 1), name="judge-b")).grade(request())
    assert len(backend.requests) == 2


def test_an_unreadable_reply_is_asked_once_more_with_the_problem_then_kept():
    replies = iter(["1: 1\n2: 0.5", grades_reply(0.25, 0.25, 1)])
    backend = ScriptedJudge(lambda m: next(replies))
    judgement = Judge(backend).grade(request())
    assert judgement.ok and judgement.grades == (0.25, 0.25, 1.0)
    assert judgement.replies == ["1: 1\n2: 0.5", grades_reply(0.25, 0.25, 1)]
    follow_up = backend.requests[1].messages
    assert follow_up[-2] == {"role": "assistant", "content": "1: 1\n2: 0.5"}
    assert "item 3 not graded" in follow_up[-1]["content"]
    assert judgement.usage.calls == 2


def test_twice_unreadable_is_a_failed_judgement_with_both_replies_and_is_not_cached():
    backend = ScriptedJudge(lambda m: "Looks great!")
    judgement = Judge(backend).grade(request())
    assert not judgement.ok and judgement.score is None
    assert judgement.replies == ["Looks great!", "Looks great!"]
    assert (
        judgement.error
        == "unreadable judge reply, twice: no graded items found; expected 3 lines such as '1: 0.75 - reason'"
    )
    Judge(backend).grade(request())
    assert len(backend.requests) == 4  # asked again: a failure is never served from the cache


def test_a_judge_that_raises_mid_run_is_a_failed_judgement_with_the_reason():
    def down(messages):
        raise ConnectionError("server went away")

    judgement = Judge(ScriptedJudge(down)).grade(request())
    assert not judgement.ok and judgement.error == "judge failed: ConnectionError: server went away"


def test_cost_by_hand():
    # 2.0 per million input tokens and 10.0 per million output tokens.
    prices = prices_of(parse_uri("openai:http://127.0.0.1:1/v1#judge?price_in=2&price_out=10"))
    assert prices == Prices(2.0, 10.0)
    backend = ScriptedJudge(lambda m: grades_reply(1, 1, 1))
    judgement = Judge(backend, prices=prices).grade(request())
    words_in = len(backend.render(request().messages()).split())
    words_out = len(grades_reply(1, 1, 1).split())  # "1: 1 - reason" three times
    assert judgement.usage.input_tokens == words_in and judgement.usage.output_tokens == words_out == 12
    assert judgement.usage.cost == pytest.approx((words_in * 2.0 + 12 * 10.0) / 1e6)
    assert Prices().cost(1000, 1000) is None  # no prices: unknown, not free


def test_a_bad_price_is_one_line():
    with pytest.raises(UsageError, match=r"^option price_in='-1' in the model URI is not a valid value$"):
        parse_uri("openai:http://127.0.0.1:1/v1#judge?price_in=-1")


def test_a_window_too_small_for_the_answer_is_refused():
    judge = Judge(ScriptedJudge(window=400))
    need = judge.prompt_tokens(request("")) + 300 + reply_budget(3)
    with pytest.raises(JudgeWindowError, match=f"grading needs {need} tokens"):
        judge.check_window(request(""), 300)
    judge.check_window(request(""), 400 - need + 300)
