"""MkDocs hooks: the parts of the docs the code already says, filled in at build time.

``<!-- settings-table -->`` becomes the table of every setting, made from
``mockstatus.settings.SETTINGS`` (the table that also makes the flags, the env
vars, the config keys and ``--help``), so the docs cannot drift from the code.
``<!-- security-policy -->`` becomes SECURITY.md, kept at the top level where
GitHub shows it.
"""

from __future__ import annotations

from pathlib import Path

from mockstatus.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def settings_table() -> str:
    lines = ["| flag | env var | config key | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for setting in SETTINGS:
        flag = f"`{setting.flag}`"
        if setting.flag_kind == "switch":
            flag += f" / `--no-{setting.flag[2:]}`"
        default = setting.shown_default
        default = "(none)" if default == "none" else f"`{default}`"
        lines.append(f"| {flag} | `{setting.env}` | `{setting.name}` | {default} | {_cell(setting.help)} |")
    return "\n".join(lines)


def security_policy() -> str:
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    # The page has its own title; the policy's headings move one level down.
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    body = body.replace("](docs/", "](")  # its links into the docs, from the docs
    return "\n".join("#" + line if line.startswith("#") else line for line in body.splitlines())


def on_page_markdown(markdown: str, page, config, files) -> str:
    if "<!-- settings-table -->" in markdown:
        markdown = markdown.replace("<!-- settings-table -->", settings_table())
    if "<!-- security-policy -->" in markdown:
        markdown = markdown.replace("<!-- security-policy -->", security_policy())
    return markdown
