"""Evaluation harness: rubric, triage, grounding and topic-detection suites."""
