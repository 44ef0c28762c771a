import pytest
import torch
from scipy.stats import chisquare

from speculative.decode import DecodeConfig, LMDrafter, SpeculativeEngine, TargetRunner
from speculative.decode.eagle3_drafter import Eagle3Drafter
from speculative.export import export_draft, load_exported_draft
from speculative.model import Eagle3Draft, Eagle3DraftConfig

from .helpers import naive_greedy, noisy_copy, tiny_target

CONFIGS = {
    "chain": DecodeConfig(mode="chain", depth=4, max_new_tokens=16),
    "tree": DecodeConfig(mode="tree", depth=4, topk=3, num_draft_tokens=10, max_new_tokens=16),
    # confidence cut-off (dynamic draft length): some rounds verify the root alone
    "chain-cut": DecodeConfig(mode="chain", depth=4, max_new_tokens=16, min_draft_prob=0.1),
    "tree-cut": DecodeConfig(mode="tree", depth=4, topk=3, num_draft_tokens=10, max_new_tokens=16,
                             min_draft_prob=0.05),
}


@pytest.fixture(scope="module")
def target():
    return tiny_target()


@pytest.mark.parametrize("mode", list(CONFIGS))
def test_greedy_is_exact_on_many_prompts(target, mode):
    drafter = LMDrafter(noisy_copy(target, noise=0.3))
    engine = SpeculativeEngine(TargetRunner(target), drafter, CONFIGS[mode])
    g = torch.Generator().manual_seed(0)
    accepted = []
    for i in range(12):
        prompt = torch.randint(0, 256, (int(torch.randint(1, 20, (), generator=g)),), generator=g)
        res = engine.generate(prompt)
        assert res.token_ids == naive_greedy(target, prompt, 16), f"prompt {i} diverged"
        assert res.stats.new_tokens == 16 and res.finish_reason == "length"
        accepted += res.stats.accepted
    assert engine.generate_autoregressive(prompt).token_ids == res.token_ids
    # the noisy draft must be partly right and partly wrong, or the test exercised nothing
    assert 0 < sum(accepted) < 4 * len(accepted)
    assert min(accepted) == 0


def test_perfect_draft_accepts_everything_and_eos_stops(target):
    engine = SpeculativeEngine(TargetRunner(target), LMDrafter(target), CONFIGS["chain"], eos_ids=())
    prompt = torch.tensor([1, 2, 3, 4])
    res = engine.generate(prompt)
    assert res.stats.accepted[:-1] == [4] * (len(res.stats.accepted) - 1)
    assert res.stats.tau > 4
    eos = res.token_ids[7]
    stop = SpeculativeEngine(TargetRunner(target), LMDrafter(target), CONFIGS["chain"], eos_ids=[eos])
    out = stop.generate(prompt)
    assert out.finish_reason == "stop" and out.token_ids == res.token_ids[: res.token_ids.index(eos) + 1]


def random_eagle3(target, tmp_path, draft_vocab=200):
    cfg = Eagle3DraftConfig.from_target(target.config, draft_vocab_size=draft_vocab)
    torch.manual_seed(0)
    emb = target.get_input_embeddings().weight.detach()
    export_draft(Eagle3Draft(cfg, embed_weight=emb), tmp_path / "draft")
    return load_exported_draft(tmp_path / "draft", embed_weight=emb)


@pytest.mark.parametrize("mode", list(CONFIGS))
def test_greedy_exact_with_exported_eagle3_draft(target, tmp_path, mode):
    draft = random_eagle3(target, tmp_path)
    drafter = Eagle3Drafter(draft)
    engine = SpeculativeEngine(TargetRunner(target, draft.config.aux_layer_ids), drafter, CONFIGS[mode])
    g = torch.Generator().manual_seed(1)
    rounds = 0
    for _ in range(4):
        prompt = torch.randint(0, 256, (9,), generator=g)
        res = engine.generate(prompt)
        assert res.token_ids == naive_greedy(target, prompt, 16)
        rounds += len(res.stats.accepted)
    expansions = drafter.forwards - 4 - rounds  # one sync per prompt start and per round (minus the last)
    if mode.endswith("-cut"):  # a random draft is unsure: the cut-off must skip most deeper drafting
        assert expansions < (CONFIGS[mode].depth - 1) * rounds


def test_sampling_preserves_the_target_distribution_end_to_end():
    """x2 is produced by draft+verify; its law given x1 must be the target's p(x2 | prompt, x1)."""
    target = tiny_target(vocab=12, layers=4)
    drafter = LMDrafter(noisy_copy(target, noise=0.1))
    cfg = DecodeConfig(mode="tree", depth=2, topk=2, num_draft_tokens=3, max_new_tokens=2, temperature=1.0, seed=0)
    engine = SpeculativeEngine(TargetRunner(target), drafter, cfg)
    prompt = torch.tensor([3, 1, 4, 1, 5])
    with torch.no_grad():
        p1 = torch.softmax(target(prompt[None]).logits[0, -1], -1)
        x1 = int(p1.argmax())  # condition on the likeliest first token
        p2 = torch.softmax(target(torch.cat([prompt, torch.tensor([x1])])[None]).logits[0, -1], -1)
    counts, drafted_hits = torch.zeros(12), 0
    for _ in range(500):
        res = engine.generate(prompt)
        if res.token_ids[0] == x1:
            counts[res.token_ids[1]] += 1
            drafted_hits += res.stats.accepted[0] > 0
    assert counts.sum() > 150 and drafted_hits > 50  # the accept path was exercised, not only resampling
    exp = p2 * counts.sum()
    keep = exp >= 5
    obs_k = torch.cat([counts[keep], counts[~keep].sum()[None]]).double()
    exp_k = torch.cat([exp[keep], exp[~keep].sum()[None]]).double()
    exp_k = exp_k * obs_k.sum() / exp_k.sum()
    assert chisquare(obs_k.numpy(), exp_k.numpy()).pvalue > 1e-3
