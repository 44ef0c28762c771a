import pytest

from sparse_align.rewards import make_reward
from sparse_align.rewards.llm_judge import LLMJudgeReward, default_judge_model


def test_vader_orders_sentiment():
    r = make_reward("vader")
    good, bad, neutral = r.score(["p"] * 3, ["What a wonderful, lovely day!", "This is awful and I hate it.",
                                             "The bus leaves at nine."])
    assert good > 0.5 and bad < -0.5 and abs(neutral) < 0.2
    with pytest.raises(ValueError, match="2 prompts but 1"):
        r.score(["a", "b"], ["x"])


class FakeBackend:
    """log p('yes') high when the response says 'great', else low: the judge must turn it into P(yes)."""

    name = "fake"

    def __init__(self):
        self.calls = []

    def score(self, prompts, continuations):
        self.calls.append(continuations)
        out = []
        for p, c in zip(prompts, continuations):
            positive = "great" in p[0]["content"]
            out.append(-0.1 if (c == "yes") == positive else -3.0)
        return out


def test_llm_judge_is_two_way_softmax():
    backend = FakeBackend()
    judge = LLMJudgeReward("sentiment", backend=backend)
    pos, neg = judge.score(["q", "q"], ["great stuff", "meh"])
    assert pos == pytest.approx(1 / (1 + pow(2.718281828, -2.9)), rel=1e-4)
    assert neg == pytest.approx(1 - pos, rel=1e-4)
    assert backend.calls == [["yes", "yes"], ["no", "no"]]


def test_judge_real_smollm2_backend_runs(smollm2_model, tokenizer):
    from runtime.llm.hf import HFBackend

    judge = LLMJudgeReward("sentiment", backend=HFBackend(smollm2_model, tokenizer))
    scores = judge.score(["Describe your day."] * 2, ["I had a wonderful, happy day!", "It was terrible."])
    assert all(0.0 < s < 1.0 for s in scores)


def test_reward_factory_errors():
    with pytest.raises(ValueError, match="unknown reward"):
        make_reward("nope")
    with pytest.raises(ValueError, match="unknown rubric"):
        LLMJudgeReward("nope", backend=FakeBackend())
    assert default_judge_model() in ("qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct")


def test_judge_fast_path_equals_two_scores(smollm2_model, tokenizer):
    """One forward (next-token yes/no logits) gives the slow path's two-way softmax of two scores."""
    from runtime.llm.hf import HFBackend

    judge = LLMJudgeReward("sentiment", backend=HFBackend(smollm2_model, tokenizer))
    args = (["Describe your day."] * 2, ["I had a wonderful, happy day!", "It was terrible."])
    assert judge._answer_ids() is not None
    fast = judge.score(*args)
    judge._fast = None  # force the generic backend.score path
    slow = judge.score(*args)
    assert fast == pytest.approx(slow, abs=1e-4)
    assert fast[0] != pytest.approx(fast[1], abs=1e-3)
