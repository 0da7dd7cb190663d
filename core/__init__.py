"""The shared ML core: what the IDM, pretraining and transfer stages all learn from, owned once.

Imports run one way: ``capture`` (recording I/O, no torch) <- ``core`` <- the stages ``idm``, ``pretrain``,
``transfer`` <- ``d2e`` (the CLI and the demo). Here live the 20 Hz grid, the input events a model learns
from, per-tick labels, the event-token codec and its grammar, the window dataset and loader, the network
parts, the run folder and the training entry. A stage that needs another stage's part moves it down here.
Modules import torch only where they hold networks or training (``core.nn``, ``core.train``).
"""
