"""Generate the process reference pages from the declared parameters of the installed processes.

Usage: python docs/gen_reference.py SOURCE_DOCS OUTPUT_DOCS

Copies the documentation sources to OUTPUT_DOCS and writes ``reference/index.md`` and one
page per process and monitor element there (never into the source tree).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from waders.core.plugins import monitor_registry, process_registry

DOMAINS = {
    "ana": "Analysis (`waders ana`)",
    "sim": "Simulation (`waders sim`)",
    None: "Monitor elements (`waders dqm`)",
}


def _default(value: object) -> str:
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    """Text for a Markdown table cell: pipes and square brackets (read as links) escaped."""
    return text.replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")


def page(key: str, cls: type, distribution: str) -> str:
    """Markdown page of one process: its docstring and a table of its declared parameters."""
    name = key.split("@")[0]
    doc = (cls.__doc__ or "").strip()
    lines = [
        f"# {name}",
        "",
        f"*Package:* `{distribution}`" + (f" *(simulation variant `{key}`)*" if "@" in key else ""),
        "",
    ]
    if doc:
        lines += [doc, ""]
    lines += ["| parameter | default | unit | kind | description |", "|---|---|---|---|---|"]
    for param in cls.params():
        info = param.info()
        aliases = f" (also {', '.join(info.aliases)})" if info.aliases else ""
        description = _cell(info.doc or "")
        kind = info.kind.replace("|", "\\|")
        lines.append(
            f"| `{info.name}`{aliases} | {_default(info.default)} | {info.unit or ''} | {kind} | {description} |"
        )
    products = getattr(cls, "products", ())
    if products:
        lines += ["", "Products (what it makes; the writers of `waders ana` follow these declarations):", ""]
        lines += ["| product | kind | unit | per amplifier | description |", "|---|---|---|---|---|"]
        for product in products:
            doc = _cell(product.doc)
            if product.switch:
                doc += f" (written with `{product.switch}`)"
            where = "yes" if product.per_amplifier else "no"
            lines.append(f"| `{product.name}` | {product.kind} | {product.unit} | {where} | {doc} |")
    ignored = getattr(cls, "ignored_keys", {})
    if ignored:
        lines += ["", "Accepted for compatibility and ignored:", ""]
        lines += [f"* `{k}`: {v}" for k, v in sorted(ignored.items())]
    return "\n".join(lines) + "\n"


def main(source: Path, output: Path) -> None:
    """Copy the sources to ``output`` and write the reference pages there."""
    if output.exists():
        shutil.rmtree(output)
    shutil.copytree(source, output, ignore=shutil.ignore_patterns("gen_reference.py"))
    reference = output / "reference"
    sections: dict[object, list[str]] = {domain: [] for domain in DOMAINS}
    for registry, monitors in ((process_registry(), False), (monitor_registry(), True)):
        loaded = registry.load_all()
        missing = sorted(set(registry.names()) - set(loaded))
        if missing:
            raise SystemExit(f"error: cannot document {', '.join(missing)}: failed to load (see above)")
        for key, cls in sorted(loaded.items()):
            domain = None if monitors else getattr(cls, "domain", "ana")
            slug = key.replace("@", "-")
            (reference / f"{slug}.md").write_text(page(key, cls, registry.distribution(key)))
            summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            sections.setdefault(domain, []).append(f"| [{key.split('@')[0]}]({slug}.md) | {summary} |")
    index = ["# Process reference", "", "Generated from the declared parameters of the installed packages.", ""]
    for domain, title in DOMAINS.items():
        if sections.get(domain):
            index += [f"## {title}", "", "| name | what it does |", "|---|---|", *sections[domain], ""]
    (reference / "index.md").write_text("\n".join(index))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
