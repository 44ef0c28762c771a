import pytest

from sparse_align.integrations.settings import SIASettingsError, check_sampling_compatible, parse_request_settings


def test_parse_settings():
    assert parse_request_settings(None) is None
    assert parse_request_settings({"other": 1}) is None
    cfg = parse_request_settings({"sia_mode": "sia", "sia_tau": 1.2, "sia_weight": 4}, greedy=True)
    assert cfg.mode == "sia" and cfg.tau == 1.2 and cfg.weight == 4 and cfg.greedy


@pytest.mark.parametrize("extra,match", [
    ({"sia_mode": "bogus"}, "sia_mode"),
    ({"sia_tau": -1}, "sia_tau"),
    ({"sia_top_k": 1}, "sia_top_k"),
    ({"sia_typo": 3}, "unknown SIA setting"),
])
def test_bad_settings_are_clear_errors(extra, match):
    with pytest.raises(SIASettingsError, match=match):
        parse_request_settings(extra)
    assert issubclass(SIASettingsError, ValueError)  # vLLM maps ValueError to HTTP 400


def test_sampling_compatibility():
    check_sampling_compatible(1.0, 1.0, 0, {"repetition_penalty": 1.0, "presence_penalty": 0.0})
    check_sampling_compatible(0.0, 1.0, -1, {})
    with pytest.raises(SIASettingsError, match="temperature"):
        check_sampling_compatible(0.7, 1.0, 0, {})
    with pytest.raises(SIASettingsError, match="penalties"):
        check_sampling_compatible(1.0, 1.0, 0, {"repetition_penalty": 1.2})
    with pytest.raises(SIASettingsError, match="top_p"):
        check_sampling_compatible(1.0, 0.9, 0, {})


def test_per_prompt_rate_settings():
    cfg = parse_request_settings({"sia_mode": "sia", "sia_tau": 1.5, "sia_target_rate": 0.3})
    assert cfg.target_rate == 0.3 and cfg.rate_warmup == 4
    with pytest.raises(SIASettingsError, match="sia_target_rate"):
        parse_request_settings({"sia_target_rate": 1.5})
