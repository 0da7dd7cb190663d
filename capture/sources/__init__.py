"""Real games played by a policy, recorded as a desktop recorder would: ground truth for IDMs."""
