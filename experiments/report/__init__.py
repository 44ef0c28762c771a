"""REPORT.md from experiments/results/*.json and the paper claims in experiments/claims.yaml."""
