"""Platform-neutral key names and their Windows virtual-key (VK) codes.

Recordings store both: the name keeps files readable and portable across X11/macOS/Windows, the VK
code is what D2E's tokenizer (``<VK_0..255>``) and OWA's ``desktop/KeyboardEvent`` use, so datasets from
both worlds share one key space. Names follow pynput's ``Key`` enum where one exists.
"""

from __future__ import annotations

_NAMED: dict[str, int] = {
    "backspace": 0x08, "tab": 0x09, "clear": 0x0C, "enter": 0x0D, "pause": 0x13, "caps_lock": 0x14,
    "esc": 0x1B, "space": 0x20, "page_up": 0x21, "page_down": 0x22, "end": 0x23, "home": 0x24,
    "left": 0x25, "up": 0x26, "right": 0x27, "down": 0x28, "print_screen": 0x2C, "insert": 0x2D,
    "delete": 0x2E, "cmd": 0x5B, "cmd_r": 0x5C, "menu": 0x5D,
    "num_0": 0x60, "num_1": 0x61, "num_2": 0x62, "num_3": 0x63, "num_4": 0x64, "num_5": 0x65,
    "num_6": 0x66, "num_7": 0x67, "num_8": 0x68, "num_9": 0x69, "num_multiply": 0x6A, "num_add": 0x6B,
    "num_subtract": 0x6D, "num_decimal": 0x6E, "num_divide": 0x6F,
    "num_lock": 0x90, "scroll_lock": 0x91,
    "shift": 0xA0, "shift_r": 0xA1, "ctrl": 0xA2, "ctrl_r": 0xA3, "alt": 0xA4, "alt_r": 0xA5,
    "media_volume_mute": 0xAD, "media_volume_down": 0xAE, "media_volume_up": 0xAF,
    "media_next": 0xB0, "media_previous": 0xB1, "media_play_pause": 0xB3,
    ";": 0xBA, "=": 0xBB, ",": 0xBC, "-": 0xBD, ".": 0xBE, "/": 0xBF, "`": 0xC0,
    "[": 0xDB, "\\": 0xDC, "]": 0xDD, "'": 0xDE,
}
_NAMED.update({f"f{i}": 0x6F + i for i in range(1, 25)})
_NAMED.update({chr(c): c for c in range(ord("0"), ord("9") + 1)})
_NAMED.update({chr(c).lower(): c for c in range(ord("A"), ord("Z") + 1)})

# Characters that a US layout produces with shift, mapped to the unshifted key they live on.
_SHIFTED = dict(zip('!@#$%^&*()_+{}|:"<>?~', "1234567890-=[]\\;',./`", strict=True))

NAME_TO_VK: dict[str, int] = dict(_NAMED)
VK_TO_NAME: dict[int, str] = {vk: name for name, vk in _NAMED.items()}
# Generic modifier VKs (VK_SHIFT/VK_CONTROL/VK_MENU) fold into the left-hand names.
VK_TO_NAME.update({0x10: "shift", 0x11: "ctrl", 0x12: "alt"})

# Aliases users and other tools write; all resolve to the canonical names above.
_ALIASES = {
    "return": "enter", "escape": "esc", "control": "ctrl", "control_l": "ctrl", "ctrl_l": "ctrl",
    "control_r": "ctrl_r", "shift_l": "shift", "alt_l": "alt", "alt_gr": "alt_r", "super": "cmd",
    "super_l": "cmd", "super_r": "cmd_r", "cmd_l": "cmd", "win": "cmd", "prior": "page_up",
    "next": "page_down", "del": "delete", "ins": "insert", "bksp": "backspace",
}


def canonical_key_name(name: str) -> str:
    """Return the canonical name for a key name or alias ("Return" -> "enter", "A" -> "a")."""
    low = name.lower()
    if len(name) == 1:
        return _SHIFTED.get(name, low)
    return _ALIASES.get(low, low)


def vk_for(name: str) -> int:
    """Windows VK code of a key name; 0 when the key has none (VK 0 is reserved as 'unknown')."""
    return NAME_TO_VK.get(canonical_key_name(name), 0)


def name_for(vk: int) -> str:
    """Key name of a VK code; unknown codes become ``vk_<n>`` so nothing is lost."""
    return VK_TO_NAME.get(vk, f"vk_{vk}")
