"""A tiny real X11 client for the recorder tests: its window colour changes on every key press.

Run as ``python colour_app.py [--title T] [--geometry WxH+X+Y] [--animate]``. It prints ``ready <id>``
(the id of its top-level X window, the one a window manager would name in ``_NET_ACTIVE_WINDOW``) once
the window is mapped. The colour after the n-th key press is ``PALETTE[n % len(PALETTE)]``, so a test can
tell from the video which press a frame already reflects. ``--animate`` moves a bar across the window
(moving content for the benchmark's compression figures).
"""

from __future__ import annotations

import argparse
import sys
import tkinter as tk

PALETTE = ["#202020", "#e03030", "#30c030", "#3050e0", "#e0e030", "#30e0e0", "#e030e0", "#f0f0f0"]
RGB = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in PALETTE]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--title", default="d2e colour app")
    ap.add_argument("--geometry", default="320x240+0+0")
    ap.add_argument("--animate", action="store_true")
    args = ap.parse_args()

    root = tk.Tk()
    root.title(args.title)
    root.geometry(args.geometry)
    canvas = tk.Canvas(root, highlightthickness=0, background=PALETTE[0])
    canvas.pack(fill="both", expand=True)
    count = [0]

    def on_key(_event: tk.Event) -> None:
        count[0] += 1
        canvas.configure(background=PALETTE[count[0] % len(PALETTE)])
        # draw now: the test measures key-to-frame latency, not Tk's idle scheduling
        canvas.update_idletasks()

    root.bind_all("<KeyPress>", on_key)
    if args.animate:
        w = int(args.geometry.split("x")[0])
        bar = canvas.create_rectangle(0, 0, 40, 4000, fill="#808080", outline="")
        text = canvas.create_text(10, 10, anchor="nw", fill="white", font=("TkFixedFont", 14))
        pos = [0]

        def step() -> None:
            pos[0] = (pos[0] + 7) % max(1, w)
            canvas.coords(bar, pos[0], 0, pos[0] + 40, 4000)
            canvas.itemconfigure(text, text=f"frame {pos[0]:5d} keys {count[0]}")
            root.after(16, step)

        step()

    def announce() -> None:
        root.update_idletasks()
        print(f"ready {int(root.wm_frame(), 16)}", flush=True)

    root.after(100, announce)
    root.mainloop()


if __name__ == "__main__":
    sys.exit(main())
