"""Writes the script-tag build the exporter serves (exporter/static/promflux-fetch.js) from
the package's ES module (browser/core.js): the same code, its exports made a global.

    python browser/build_script.py

tests/test_browser_package.py checks the served file is current.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "browser" / "core.js"
SCRIPT = ROOT / "exporter" / "static" / "promflux-fetch.js"

HEADER = """\
/* promflux-fetch.js: the script-tag build of the promflux-browser package (browser/),
 * generated from browser/core.js by browser/build_script.py; edit core.js, not this file.
 *
 *   <script src="/metrics/promflux-fetch.js"></script>
 *   <script>promflux.install({routes: ["/api/devices/{device_id}"]});</script>
 */
"""


def build() -> str:
    core = CORE.read_text()
    body = re.sub(r"^export (const|function) ", r"\1 ", core, flags=re.M)
    if re.search(r"^\s*(export|import)\b", body, flags=re.M):
        raise ValueError("core.js may only export consts and functions (no imports)")
    indented = "".join(f"  {line}" if line.strip() else line
                       for line in body.splitlines(keepends=True))
    return (f'{HEADER}(function () {{\n  "use strict";\n{indented}\n'
            "  window.promflux = { install: install, UNMATCHED: UNMATCHED };\n})();\n")


def main() -> None:
    SCRIPT.write_text(build())
    print(f"wrote {SCRIPT}")


if __name__ == "__main__":
    main()
