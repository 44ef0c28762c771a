"""SIA: sparse inference-time alignment at high-entropy junction tokens."""
