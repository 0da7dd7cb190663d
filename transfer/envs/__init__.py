"""Simulators the policy is fine-tuned and evaluated in: LIBERO (manipulation), MiniWorld, habitat-sim."""
