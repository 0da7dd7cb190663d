"""Network parts every stage builds from: frame stems, the motion cue, the window encoder, a decoder block
with a KV cache, and per-tick heads."""
