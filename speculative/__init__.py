"""SpecForge-style EAGLE-3 draft training, export and speculative decoding."""
