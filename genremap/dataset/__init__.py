"""From labels to a dataset folder: labels → dedupe → balance → splits → export."""
