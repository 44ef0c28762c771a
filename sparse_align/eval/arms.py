"""The arms of the powered evaluation, in run order. Each decoded arm has a SteerConfig, a guide (value
model, exact teacher, or none) and a seed count; Best-of-N arms decode nothing (they rank another arm's
samples, by the teacher or by V). random@r runs at SIA@r's REALISED rate, known only after SIA@r ran.
The pre-registered pairs (SIA and random at `primary_rates`) run first: a long run that is cut short, or
resumed across sessions, has its primary comparisons before the costlier base pool and dense arms."""

from __future__ import annotations

from dataclasses import dataclass

from sparse_align.config import SteerConfig, SteerEvalConfig


@dataclass
class Arm:
    name: str
    family: str  # base dense sia random dense-w0 sia-w0 dense-exact sia-exact posttrained bon sia+bon
    steer: SteerConfig | None = None  # None: a Best-of-N arm
    guide: str = "value"  # value | exact | none
    seeds: int = 1
    rate: float | None = None  # target steering rate (sia*, random)
    pool: str = ""  # Best-of-N: the arm whose samples are ranked
    n: int = 0  # Best-of-N: subset size
    ranker: str = ""  # Best-of-N: teacher | value

    def info(self) -> dict[str, object]:
        out: dict[str, object] = {"method": self.name, "family": self.family, "guide": self.guide,
                                  "target_rate": self.rate}
        if self.steer is not None:
            out.update(mode=self.steer.mode, weight=self.steer.weight, tau=self.steer.tau,
                       random_rate=self.steer.random_rate if self.steer.mode == "random" else None)
        else:
            out.update(pool=self.pool, n=self.n, ranker=self.ranker)
        return out


def rate_name(rate: float) -> str:
    return f"{rate:.0%}"


def plan_arms(cfg: SteerEvalConfig, taus: dict[float, float]) -> list[Arm]:
    def steer(**kw: object) -> SteerConfig:
        base = dict(top_k=cfg.top_k, weight=cfg.weight, max_new_tokens=cfg.max_new_tokens, detector=cfg.detector)
        return SteerConfig(**{**base, **kw})

    s = cfg.seeds

    def pair(r: float) -> list[Arm]:  # SIA@r, then random at SIA@r's realised rate
        return [Arm(f"sia@{rate_name(r)}", "sia", steer(mode="sia", tau=taus[r]), seeds=s, rate=r),
                Arm(f"random@{rate_name(r)}", "random", steer(mode="random", random_rate=r), seeds=s, rate=r)]

    arms = [a for r in cfg.sia_rates if r in cfg.primary_rates for a in pair(r)]
    arms += [Arm("base", "base", steer(mode="base"), "none", max(s, cfg.bon_pool if cfg.bon_n else 0)),
             Arm("dense", "dense", steer(mode="dense"), seeds=s)]
    arms += [a for r in cfg.sia_rates if r not in cfg.primary_rates for a in pair(r)]
    arms.append(Arm("dense-w0", "dense-w0", steer(mode="dense", weight=0.0), "none", s))
    arms += [Arm(f"sia-w0@{rate_name(r)}", "sia-w0", steer(mode="sia", tau=taus[r], weight=0.0), "none", s, r)
             for r in cfg.w0_rates]
    if cfg.exact_rates:
        arms.append(Arm("dense-exact", "dense-exact", steer(mode="dense"), "exact", s))
    arms += [Arm(f"sia-exact@{rate_name(r)}", "sia-exact", steer(mode="sia", tau=taus[r]), "exact", s, r)
             for r in cfg.exact_rates]
    if cfg.posttrained:
        arms.append(Arm("posttrained", "posttrained", steer(mode="base"), "none", s))
    for ranker in ("teacher", "value"):
        arms += [Arm(f"bon-{n}[{ranker}]", "bon", pool="base", n=n, ranker=ranker) for n in cfg.bon_n]
        if cfg.sia_bon_n <= s and cfg.sia_bon_rate in cfg.sia_rates:
            sia = f"sia@{rate_name(cfg.sia_bon_rate)}"
            arms.append(Arm(f"{sia}+bon-{cfg.sia_bon_n}[{ranker}]", "sia+bon", pool=sia, n=cfg.sia_bon_n,
                            ranker=ranker, rate=cfg.sia_bon_rate))
    return arms


def calibration_rates(cfg: SteerEvalConfig) -> list[float]:
    return sorted(set(cfg.sia_rates) | set(cfg.w0_rates) | set(cfg.exact_rates))
