"""The README's first two commands are the set-up; CI runs the second one."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands():
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_first_command_runs_the_study():
    assert readme_commands()[0] == "pip install -e . && snakemake --cores all"


def test_ci_runs_the_readme_test_command():
    test_command = readme_commands()[1]
    assert "pytest" in test_command
    assert test_command in (REPO / ".ci" / "run").read_text()


def test_readme_lists_the_default_studys_digests_as_the_repository_has_them():
    text = (REPO / "README.md").read_text()
    rows = (REPO / "digests" / "default.sha256").read_text().splitlines()
    listed = [line for line in rows if line and not line.startswith("#")]
    assert len(listed) >= 12
    assert "\n".join(listed) in text
