"""Generate src/firth/kafka/protocol/_flexible_versions.py from kio's Kafka schemas.

For every API key kio knows: its name and the first request version that is flexible (compact
encodings, tagged fields, request header v2). Run from the repository root:

    python tools/generate_kafka_flexible_versions.py
"""

from __future__ import annotations

from pathlib import Path

from kio.index import load_request_schema
from kio.schema.index import api_key_map, schema_name_map

TARGET = Path("src/firth/kafka/protocol/_flexible_versions.py")


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def main() -> None:
    lines = [
        '"""First flexible request version per Kafka API key. Generated, do not edit.',
        "",
        "Source: kio's classes generated from Kafka's JSON message schemas (flexibleVersions).",
        "Regenerate with `python tools/generate_kafka_flexible_versions.py`.",
        '"""',
        "",
        "FIRST_FLEXIBLE_VERSION: dict[int, int] = {",
    ]
    never = []
    for key, name in sorted(api_key_map.items()):
        versions = sorted(schema_name_map[name])
        flexible = [v for v in versions if load_request_schema(key, v).__flexible__]
        if flexible:
            lines.append(f"    {key}: {flexible[0]},  # {camel(name)}")
        else:
            never.append(f"{key} {camel(name)}")
    lines.append("}")
    lines.append(f'"""Never flexible (absent above): {", ".join(never)}."""')
    TARGET.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
