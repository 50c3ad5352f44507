"""The examples of the documentation, as written there: a fenced block right after an
``<!-- example: NAME -->`` line. Tests run them; the page stays the one place they are written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_EXAMPLE = re.compile(r"^<!-- example: ([\w-]+) -->\n```(\w+)\n(.*?)^```$", re.M | re.S)


def examples(page: Path) -> dict[str, str]:
    """Name -> code, in the page's order; a name used twice is an error in the page."""
    found: dict[str, str] = {}
    for name, _language, code in _EXAMPLE.findall(page.read_text()):
        assert name not in found, f"{page}: two examples named {name}"
        found[name] = code
    return found


def with_ports(code: str, ports: dict[int, int]) -> str:
    """The example with the documented ports (1812, 8080) replaced by the test's free ones;
    each must be in the example, so a test cannot run something else than what it says."""
    for documented, actual in ports.items():
        pattern = rf"(?<!\d){documented}(?!\d)"
        assert re.search(pattern, code), f"{documented} is not in the example"
        code = re.sub(pattern, str(actual), code)
    return code
