"""Data: records -> chat rendering with assistant loss masks -> tokenized examples -> batches; vocab map."""
