"""Prompts per task, split into disjoint train (distillation) and eval parts (the teacher per task: config.TEACHER)."""

from __future__ import annotations

import random
from typing import Any

from runtime.assets import load_dataset
from sparse_align.steer.decode import render_prompt

SUBJECTS = ["the weather this week", "a train journey", "my new neighbour", "the local library", "a rainy Monday",
            "the office kitchen", "a city bus", "grocery shopping", "a museum visit", "the school term",
            "a board game night", "an old bicycle", "the garden", "a phone upgrade", "the morning commute",
            "a family dinner", "a hotel stay", "the football match", "a cooking class", "a river walk",
            "moving house", "a concert", "the dentist appointment", "a mountain hike", "a job interview",
            "the coffee shop", "a long flight", "the town market", "a software update", "a birthday party",
            "the laundry room", "a parking garage", "the evening news", "a tax form", "the bus station",
            "a spreadsheet", "the hardware store", "a ferry crossing", "the post office", "a power cut"]
TEMPLATES = ["Write two sentences about {s}.", "Describe {s}.", "Tell me a short story about {s}.",
             "Write a short review of {s}.", "What do you think about {s}?", "Write a diary entry about {s}.",
             "Give me a quick summary of {s}.", "Write a message to a friend about {s}."]

# completion prompts for base models (the paper's setting): the model continues the text
COMPLETION_TEMPLATES = ["Here is what I think about {s}:", "My diary, about {s}:", "A short review of {s}.",
                        "Let me tell you about {s}.", "Dear friend, I have to tell you about {s}.",
                        "Two sentences about {s}:", "So, {s}.", "Yesterday it was all about {s}, and"]

COMPLETION_TASKS = {"sentiment-completion"}


def neutral_prompts() -> list[str]:
    """320 neutral, topic-diverse requests (fixed order) for the positive-sentiment task: 213 train, 107 eval."""
    prompts = [t.format(s=s) for s in SUBJECTS for t in TEMPLATES]
    random.Random(0).shuffle(prompts)
    return prompts


def completion_prompts() -> list[str]:
    """320 neutral text openings (fixed order), the completion-style counterpart of `neutral_prompts`."""
    prompts = [t.format(s=s) for s in SUBJECTS for t in COMPLETION_TEMPLATES]
    random.Random(0).shuffle(prompts)
    return prompts


def prompt_ids(tokenizer: Any, prompt: str, task: str) -> list[int]:
    """Token ids the model sees for a task prompt: chat-templated, or raw text for completion tasks."""
    return render_prompt(tokenizer, prompt, completion=task in COMPLETION_TASKS)


def task_prompts(task: str) -> list[str]:
    if task == "sentiment":
        return neutral_prompts()
    if task == "sentiment-completion":
        return completion_prompts()
    if task == "harmless":
        rows = load_dataset("harmbench") + load_dataset("strongreject")
        return [r["prompt"] for r in rows]
    if task == "helpful":
        rows = load_dataset("mtbench")
        return [r["turns"][0] if "turns" in r else r["prompt"] for r in rows]
    raise ValueError(f"unknown task '{task}'; choose sentiment | harmless | helpful")


def split_prompts(task: str, split: str, n: int | None, *, eval_fraction: float = 1 / 3) -> list[str]:
    """`train` prompts come from the front, `eval` from the back: never the same prompt in both.
    n None: the whole split."""
    prompts = task_prompts(task)
    cut = int(len(prompts) * (1 - eval_fraction))
    pool = prompts[:cut] if split == "train" else prompts[cut:]
    if split not in ("train", "eval"):
        raise ValueError(f"split must be train or eval, got '{split}'")
    n = len(pool) if n is None else n
    if n > len(pool):
        raise ValueError(f"task '{task}' has only {len(pool)} {split} prompts, {n} requested")
    return pool[:n]
