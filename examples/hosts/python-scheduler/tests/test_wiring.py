"""The README says how many lines wire Lookout into the host: the lines ending in `# lookout`."""

import re

from conftest import HOST_DIR


def test_the_readme_counts_the_lines_that_wire_lookout():
    tagged = [line for path in sorted((HOST_DIR / "minipynchy").glob("*.py"))
              for line in path.read_text().splitlines() if line.rstrip().endswith("# lookout")]
    said = re.search(r"\*\*(\d+) lines\*\*", (HOST_DIR / "README.md").read_text())
    assert said, "README.md should say **N lines**"
    assert int(said.group(1)) == len(tagged), tagged
