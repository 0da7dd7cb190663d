"""D2E's event tokens: the vocabulary, the codec (encoder + decoder) and the decoding grammar, owned once.

Layout (so a D2E model's output can be scored by our tools)::

    <EVENT_START> <KEYBOARD> <t> <t> <t> <VK_n> <press|release> <EVENT_END>
    <EVENT_START> <MOUSE> <t> <t> <t> <+|-> <d>x4 <+|-> <d>x4 <h><h><h> [<SCROLL> <+|-> <d>x4] <EVENT_END>
    <EVENT_START> <SCREEN> <t> <t> <t> <img> ...image tokens... </img> <EVENT_END>

``codec.BODY`` states each event body once, slot by slot; the encoder, the parser and the grammar all read it.
"""

from .codec import decode_tokens, encode_window, id_tables, time_tokens, unwrap_time
from .grammar import Grammar
from .vocab import Vocabulary

__all__ = ["Grammar", "Vocabulary", "decode_tokens", "encode_window", "id_tables", "time_tokens", "unwrap_time"]
