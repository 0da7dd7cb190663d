"""VAPT: vision-action pretraining of a policy on human and pseudo-labeled recordings."""
