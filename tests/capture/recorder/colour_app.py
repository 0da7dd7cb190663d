"""A tiny real X11 client for the recorder tests: its window colour changes on every key press.

Run as ``python colour_app.py [--title T] [--geometry WxH+X+Y] [--animate] [--log-keys]``. It prints
``ready <id>`` (the id of its top-level X window, the one a window manager would name in
``_NET_ACTIVE_WINDOW``) once the window is mapped. The colour after the n-th key press is
``PALETTE[n % len(PALETTE)]``, so a test can tell from the video which press a frame already reflects.
``--animate`` moves a bar across the window (moving content for the benchmark's compression figures).
``--log-keys`` prints ``key press F9`` (the X keysym name) for every key event the window receives, so a
test can tell what reached the application.
"""

from __future__ import annotations

import argparse
import sys
import tkinter as tk

PALETTE = ["#202020", "#e03030", "#30c030", "#3050e0", "#e0e030", "#30e0e0", "#e030e0", "#f0f0f0"]
RGB = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in PALETTE]


def _texture(w: int, h: int) -> bytes:
    """A PPM picture with the statistics of a game scene rather than flat colour: smooth gradients,
    8-px tiles of varying brightness and a little pixel noise (so compression figures mean something)."""
    import numpy as np

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([128 + 70 * np.sin(x / 37 + c) * np.cos(y / 23 - c) for c in (0.0, 2.0, 4.0)], axis=-1)
    tiles = rng.normal(0, 25, (h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:h, :w]
    img = np.clip(base + tiles + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)
    return f"P6 {w} {h} 255\n".encode() + img.tobytes()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--title", default="d2e colour app")
    ap.add_argument("--geometry", default="320x240+0+0")
    ap.add_argument("--animate", action="store_true")
    ap.add_argument("--log-keys", action="store_true")
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
    if args.log_keys:
        root.bind_all("<KeyPress>", lambda e: print(f"key press {e.keysym}", flush=True), add="+")
        root.bind_all("<KeyRelease>", lambda e: print(f"key release {e.keysym}", flush=True), add="+")
    if args.animate:
        w, h = (int(v) for v in args.geometry.split("+")[0].split("x"))
        # game-like moving content in the top three quarters (the bottom shows only the key colour):
        # a scrolling textured picture (gradients, tiles, fine noise), a moving bar and a changing text
        picture = tk.PhotoImage(data=_texture(2 * w, h * 3 // 4), format="PPM")
        image = canvas.create_image(0, 0, image=picture, anchor="nw")
        bar = canvas.create_rectangle(0, 0, 40, h * 3 // 4, fill="#808080", outline="")
        text = canvas.create_text(10, 10, anchor="nw", fill="white", font=("TkFixedFont", 14))
        pos = [0]

        def step() -> None:
            pos[0] = (pos[0] + 7) % max(1, w)
            canvas.coords(image, -pos[0], 0)
            canvas.coords(bar, pos[0], 0, pos[0] + 40, h * 3 // 4)
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
