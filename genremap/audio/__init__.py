"""Stages that work on a dataset folder alone: previews (audio/), features, evaluation."""
