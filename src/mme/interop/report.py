"""What a checkpoint import did, by name: loaded, newly initialised and dropped tensors, and why."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadReport:
    """What a checkpoint load did: tensors ``new`` (initialised fresh), ``dropped``, and ``notes``."""

    source: str
    layout: str
    kind: str
    loaded: int = 0
    new: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def new_head(self) -> bool:
        return any(name.startswith(("head.", "heads.")) for name in self.new)

    def summary(self) -> str:
        """A few human-readable lines (tensor names grouped by their block)."""
        lines = [f"loaded {self.loaded} tensors from {self.source} ({self.layout}) into a {self.kind} model"]
        if self.new:
            lines.append(f"newly initialised ({len(self.new)}): {group_names(self.new)}")
        if self.dropped:
            lines.append(f"not used from the checkpoint ({len(self.dropped)}): {group_names(self.dropped)}")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "layout": self.layout,
            "kind": self.kind,
            "loaded": self.loaded,
            "new": list(self.new),
            "dropped": list(self.dropped),
            "notes": list(self.notes),
            "config": dict(self.config),
        }


def group_names(names: list[str], limit: int = 12) -> str:
    """``decoder.blocks.0.attn.qkv.weight, ...`` -> ``decoder.blocks.0.* (13)``, grouped by block."""
    groups: OrderedDict[str, list[str]] = OrderedDict()
    for name in names:
        match = re.match(r"^(.*?\.\d+)\.", name)
        key = f"{match.group(1)}.*" if match else (name.rsplit(".", 1)[0] + ".*" if "." in name else name)
        groups.setdefault(key, []).append(name)
    shown = [f"{key} ({len(members)})" if len(members) > 1 else members[0] for key, members in groups.items()]
    if len(shown) > limit:
        shown = [*shown[:limit], f"... {len(shown) - limit} more groups"]
    return ", ".join(shown)
