"""Training: TTT unroll + loss + metrics (ttt.py), typed config (config.py), trainer with resume (trainer.py)."""
