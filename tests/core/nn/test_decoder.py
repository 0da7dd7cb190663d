"""Our decoder block computes what torch's TransformerDecoderLayer computes, and its cached steps match it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from core.nn.decoder import Decoder  # noqa: E402


def test_matches_torchs_decoder_exactly_in_training_and_loads_its_weights() -> None:
    torch.manual_seed(0)
    layer = torch.nn.TransformerDecoderLayer(32, 4, 128, 0.1, batch_first=True, norm_first=True, activation="gelu")
    reference = torch.nn.TransformerDecoder(layer, 2)
    ours = Decoder(32, 4, 2, 0.1)
    ours.load_state_dict(reference.state_dict())  # same parameter names: checkpoints of either load
    x, memory = torch.randn(3, 9, 32), torch.randn(3, 12, 32)
    padding = torch.zeros(3, 9, dtype=torch.bool)
    padding[1, 6:] = True
    bias = torch.randn(3 * 4, 9, 12)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(9)
    pad = torch.zeros(3, 9).masked_fill_(padding, float("-inf"))
    for mode in ("train", "eval"):
        getattr(reference, mode)()
        getattr(ours, mode)()
        torch.manual_seed(1)  # the same dropout draws: bit-identical training
        want = reference(x, memory, tgt_mask=mask, tgt_is_causal=True, tgt_key_padding_mask=pad, memory_mask=bias)
        torch.manual_seed(1)
        got = ours(x, memory, padding=padding, memory_mask=bias)
        assert torch.equal(got, want), mode


def test_cached_steps_match_the_full_sequence() -> None:
    torch.manual_seed(0)
    for cross in (True, False):
        ours = Decoder(32, 4, 2, 0.0, cross=cross).eval()
        x, memory = torch.randn(2, 7, 32), torch.randn(2, 5, 32) if cross else None
        with torch.no_grad():
            full = ours(x, memory)
            cache = ours.start_cache(2, 16, memory)
            steps = torch.cat([ours.step(x[:, i:i + 1], i, cache) for i in range(7)], 1)
        torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-5)


def test_layers_start_as_copies_of_the_first_as_torch_does() -> None:
    ours = Decoder(16, 2, 3, 0.0)
    first = ours.layers[0].state_dict()
    assert all(torch.equal(first[k], layer.state_dict()[k]) for layer in ours.layers[1:] for k in first)
